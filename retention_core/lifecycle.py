"""Lifecycle stages: where each customer stands at the scoring date, from their own rhythm.

Every scored customer of an event log gets one stage, from three feature columns every engine computes
(:mod:`retention_core.features`): days since the last purchase (``recency_days``), days since the first purchase
(``tenure_days``) and the usual gap between their purchase days (``gap_mean_days``, missing for a customer who bought
on one day only). The shop's rhythm comes from the usual gaps of its repeat customers (:func:`shop_gaps`): its
*typical gap* (the median) and its *long gap* (a high percentile, 90% by default).

With ``u`` = the customer's usual gap (the shop's typical gap for a customer who bought once) and ``r`` = days since
the last purchase, the rules of :class:`StageRules` are, the first that holds wins:

- ``new``: the first purchase was at most ``new_days`` ago (30), or the customer bought once and is not overdue yet
  (neither of the two rules below holds);
- ``lapsed``: ``r`` is beyond ``lapsed_gaps`` (3) times ``u`` and beyond the shop's long gap: a win-back audience;
- ``slipping``: ``r`` is beyond ``slipping_gaps`` (1.5) times ``u`` and beyond the shop's typical gap: overdue,
  and still a retention audience;
- ``active``: otherwise (a repeat customer buying on their rhythm).

Why these defaults (``python -m bench.bench_stages``, figures in ``bench/published/stages.md``): scored at 4 cutoffs
of Online Retail II and 3 of CDNOW against the shop's rhythm one horizon earlier (what a run trained on the log cut at
the cutoff holds), the realised churn over the next 90 days rises from active to slipping to lapsed at every cutoff,
by at least 6.6 points a step (12.9 on Online Retail II), and so it does for every variant tried (1, 1.5 or 2 usual
gaps for slipping; 2, 3 or 4 for lapsed; the shop's 75th or 90th percentile). Waiting 4 gaps steps wider (9.6
points) but keeps one-time buyers silent for up to 175 days among those who "can still be saved" (up to 131 days
with 3 gaps, on Online Retail II in September 2010); 2 gaps steps narrowest. 3 gaps, the usual win-back rule of
thumb, sits between. The shop's floors matter: on Online Retail II (September 2010), repeat customers 1.5 to 3 of
their own gaps late churned 24-29%, as often as those on their rhythm (22-29%); being late against the shop's rhythm
as well is what tells (a weekly buyer three weeks late is not slipping yet).

One definition, called by every door: the ``score`` command and its CSV (:func:`retention_core.scoring.add_stages`,
whatever engine computed the features), the app (At-risk audiences, Segments), the HTTP service's answer.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from .errors import ConfigError

STAGES = ("new", "active", "slipping", "lapsed")
STAGE_LABELS = {"new": "New", "active": "Active", "slipping": "Slipping", "lapsed": "Lapsed"}
#: The feature columns a stage is read from.
STAGE_INPUTS = ("recency_days", "tenure_days", "gap_mean_days")
#: The shop's gaps when no customer of the reference bought twice (the default horizon).
FALLBACK_GAP_DAYS = 90.0

#: Who a campaign is for: customers a retention offer can still save (everyone but the lapsed), the lapsed
#: (a win-back offer), or everyone. Customers without a stage (a user table) count as savable.
AUDIENCES = {"saveable": "Can still be saved", "winback": "Win-back (lapsed)", "all": "Everyone"}


@dataclass(frozen=True)
class StageRules:
    """The rules that place a customer in a stage (see the module notes); the defaults are measured, not guessed."""

    new_days: int = 30  # a first purchase at most this many days ago: new
    slipping_gaps: float = 1.5  # no purchase for longer than this many usual gaps (and the shop's typical gap)
    lapsed_gaps: float = 3.0  # no purchase for longer than this many usual gaps (and the shop's long gap)
    long_gap_percentile: float = 90.0  # the shop's long gap: this percentile of repeat customers' usual gaps

    def __post_init__(self) -> None:
        try:
            new, slip, lapse, pct = (float(self.new_days), float(self.slipping_gaps), float(self.lapsed_gaps),
                                     float(self.long_gap_percentile))
        except (TypeError, ValueError):
            raise ConfigError(f"The stage rules must be numbers, got {self!r}.") from None
        if not (np.isfinite(new) and 0 <= new <= 3650 and new == int(new)):
            raise ConfigError(f"Days for a new customer must be a whole number from 0 to 3650, got {self.new_days!r}.",
                              field="new_days", value=self.new_days)
        if not (np.isfinite(slip) and 0 < slip <= 50):
            raise ConfigError(f"Slipping after must be a number of usual gaps above 0 (e.g. 1.5), got "
                              f"{self.slipping_gaps!r}.", field="slipping_gaps", value=self.slipping_gaps)
        if not (np.isfinite(lapse) and slip < lapse <= 100):
            raise ConfigError(f"Lapsed after must be more usual gaps than slipping ({slip:g}), got "
                              f"{self.lapsed_gaps!r}.", field="lapsed_gaps", value=self.lapsed_gaps)
        if not (np.isfinite(pct) and 50 <= pct <= 99):
            raise ConfigError(f"The shop's long gap is a percentile from 50 to 99, got {self.long_gap_percentile!r}.",
                              field="long_gap_percentile", value=self.long_gap_percentile)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "StageRules":
        """Rules from a mapping (unknown keys refused, missing ones at their defaults)."""
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        extra = sorted(set(d) - known)
        if extra:
            raise ConfigError(f"Unknown stage rule(s) {', '.join(extra)}; the rules are {', '.join(sorted(known))}.")
        return cls(**d)


DEFAULT_RULES = StageRules()


@dataclass(frozen=True)
class ShopRhythm:
    """The shop's rhythm the stages compare with: the typical and the long usual gap of its repeat customers."""

    typical_gap: float  # days: the median usual gap
    long_gap: float  # days: the rules' percentile of usual gaps
    repeat_customers: int  # how many usual gaps they were measured on (0: the fallback)


def shop_gaps(frame: pd.DataFrame | None) -> np.ndarray | None:
    """The usual gaps (days) of the repeat customers of ``frame``, sorted; None when the rows hold no gap column."""
    if frame is None or "gap_mean_days" not in frame.columns:
        return None
    g = pd.to_numeric(frame["gap_mean_days"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return np.sort(g[np.isfinite(g) & (g > 0)])


def shop_rhythm(gaps, rules: StageRules | None = None) -> ShopRhythm:
    """The typical (median) and long (the rules' percentile) usual gap of ``gaps`` (:func:`shop_gaps`); without any,
    both are ``FALLBACK_GAP_DAYS``."""
    rules = rules or DEFAULT_RULES
    g = np.asarray(gaps if gaps is not None else [], dtype="float64")
    g = g[np.isfinite(g) & (g > 0)]
    if not len(g):
        return ShopRhythm(FALLBACK_GAP_DAYS, FALLBACK_GAP_DAYS, 0)
    return ShopRhythm(float(np.percentile(g, 50)), float(np.percentile(g, rules.long_gap_percentile)), len(g))


def has_inputs(frame: pd.DataFrame | None) -> bool:
    """Whether the rows hold what a stage is read from (event-log features; a user table does not)."""
    return frame is not None and all(c in frame.columns for c in STAGE_INPUTS)


def _numbers(frame: pd.DataFrame, col: str) -> np.ndarray:
    s = frame[col]
    if s.dtype.kind in "fiu":  # plain numbers (every engine's feature rows): no conversion pass
        return s.to_numpy(dtype="float64")
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def assign_stages(frame: pd.DataFrame, rules: StageRules | None = None, *, reference=None) -> pd.Series:
    """The stage of each row of ``frame`` (an ordered categorical of :data:`STAGES`, aligned with ``frame``).

    ``reference``: the usual gaps of the shop's repeat customers (:func:`shop_gaps` of a saved run's validation users,
    so that one customer scored alone gets the same stage as in a batch), a frame to take them from, or their
    :class:`ShopRhythm`; None: from ``frame`` itself. Rows without the inputs (:data:`STAGE_INPUTS`) or without a last
    purchase get no stage.
    """
    dtype = pd.CategoricalDtype(list(STAGES), ordered=True)
    return pd.Series(pd.Categorical(stage_values(frame, rules, reference=reference), dtype=dtype), index=frame.index,
                     name="stage")


def stage_values(frame: pd.DataFrame, rules: StageRules | None = None, *, reference=None) -> np.ndarray:
    """:func:`assign_stages` as an array of text (None: no stage), without building a categorical (one request of
    the scoring service)."""
    rules = rules or DEFAULT_RULES
    if not has_inputs(frame):
        return np.full(len(frame), None, dtype=object)
    if isinstance(reference, ShopRhythm):
        shop = reference
    else:
        gaps = shop_gaps(reference) if isinstance(reference, pd.DataFrame) else reference
        shop = shop_rhythm(shop_gaps(frame) if gaps is None else gaps, rules)
    r, tenure, gap = (_numbers(frame, c) for c in STAGE_INPUTS)
    once = ~(np.isfinite(gap) & (gap > 0))
    usual = np.where(once, shop.typical_gap, gap)
    with np.errstate(invalid="ignore"):
        lapsed = r > np.maximum(rules.lapsed_gaps * usual, shop.long_gap)
        slipping = r > np.maximum(rules.slipping_gaps * usual, shop.typical_gap)
        new = (tenure <= rules.new_days) | (once & ~lapsed & ~slipping)
    out = np.select([new, lapsed, slipping], ["new", "lapsed", "slipping"], "active").astype(object)
    out[~np.isfinite(r)] = None
    return out


def audience_mask(stage, audience: str | None) -> np.ndarray:
    """Which customers belong to an audience of :data:`AUDIENCES` (None or ``all``: everyone)."""
    s = pd.Series(stage).astype("string")
    if audience in (None, "all"):
        return np.ones(len(s), dtype=bool)
    if audience not in AUDIENCES:
        raise ConfigError(f"Unknown audience {audience!r}: use one of {', '.join(AUDIENCES)}.", field="audience",
                          value=audience)
    lapsed = (s == "lapsed").fillna(False).to_numpy(dtype=bool)
    return lapsed if audience == "winback" else ~lapsed


def rules_table(rules: StageRules | None = None, rhythm: ShopRhythm | None = None) -> pd.DataFrame:
    """The rules in words, with the shop's figures when known: one row per stage (``stage``, ``rule``)."""
    rules = rules or StageRules()
    typ = f" ({rhythm.typical_gap:,.0f} days)" if rhythm else ""
    long = f" ({rhythm.long_gap:,.0f} days)" if rhythm else ""
    pct = f"{rules.long_gap_percentile:g}"
    rows = [
        ("New", f"First purchase in the last {rules.new_days} days, or a single purchase that is not overdue yet."),
        ("Active", "A repeat customer buying on their rhythm: none of the other rules holds."),
        ("Slipping", f"No purchase for longer than {rules.slipping_gaps:g} x their usual gap and than the shop's "
                     f"typical gap{typ}; not lapsed."),
        ("Lapsed", f"No purchase for longer than {rules.lapsed_gaps:g} x their usual gap and than the shop's long "
                   f"gap{long}: {pct}% of repeat customers have a shorter usual gap."),
    ]
    out = pd.DataFrame(rows, columns=["stage", "rule"])
    out.attrs["note"] = ("Usual gap: the mean number of days between a customer's purchase days; a customer who bought "
                         "once is measured against the shop's typical gap (the median usual gap of repeat customers).")
    return out


def stage_counts(stage, churned=None) -> pd.DataFrame:
    """Customers per stage (every stage listed, in order): ``stage, customers, share`` and, with labels,
    ``churn_rate`` (the realised churn of each stage)."""
    s = pd.Series(stage).astype("string")
    n = len(s)
    out = pd.DataFrame({"stage": list(STAGES)})
    out["customers"] = [int((s == st).sum()) for st in STAGES]
    out["share"] = out["customers"] / max(n, 1)
    if churned is not None:
        y = pd.Series(np.asarray(churned, dtype="float64"))
        out["churn_rate"] = [float(y[(s == st).fillna(False).to_numpy()].mean()) if c else np.nan
                             for st, c in zip(STAGES, out["customers"])]
    return out
