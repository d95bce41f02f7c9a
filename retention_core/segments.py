"""Segments of users: cohort retention, attribute, RFM, risk-tier, buyer-type and custom segments.

:func:`cohort_retention` (in :mod:`retention_core.cohorts`, named here too) groups buyers by the period of their first
qualifying purchase and reports, for each later period, the share of the cohort that bought again in it.

The other segmentations label each user (one row of a per-user table such as a run's validation rows) and return a
``pandas.Series`` aligned with the table:

* :func:`attribute_segments`: the values of one column (rare values grouped, numbers cut into quantile bands);
* :func:`rfm_segments`: the standard RFM groups (champions ... lost) from quintile scores, rules in :func:`rfm_rules`;
* :func:`risk_deciles` and :func:`risk_tiers`: deciles of churn probability (1 = highest risk) and high/medium/low;
* :func:`buyer_type`: one-time vs repeat buyers;
* lifecycle stages (new, active, slipping, lapsed) from :func:`retention_core.lifecycle.assign_stages`, and
  :func:`stage_risk_table`, customers by stage and risk tier;
* :func:`filter_mask` / :func:`custom_segments`: the analyst's own conditions (column, op, value).

:func:`segment_table` compares segments (size, churn, predicted risk, ROC-AUC, recall in the top 10%, reliability,
main drivers) and :func:`segment_shap_heatmap_data` builds the segment x feature matrix of mean |SHAP| against the
whole population.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import numpy as np
import pandas as pd

from .cohorts import PERIOD_LABELS, PERIODS, cohort_label, cohort_retention, observed_periods  # noqa: F401
from .errors import ConfigError
from .explain import feature_label, segment_mean_abs_shap
from .lifecycle import STAGES, StageRules, assign_stages, has_inputs


# ====================================================================================================================
# segments of users (one label per row of a per-user table)
# ====================================================================================================================

MISSING = "(missing)"
OTHER = "(other)"


def _ordered(labels: Sequence[Any], categories: Sequence[str], index: pd.Index, name: str) -> pd.Series:
    """A categorical Series whose categories keep the natural order of the segmentation (best first, tier 1 first)."""
    return pd.Series(pd.Categorical(labels, categories=list(categories), ordered=True), index=index, name=name)


def _require(frame: pd.DataFrame, column: str, what: str) -> None:
    if column not in frame.columns:
        shown = ", ".join(map(str, list(frame.columns)[:15]))
        raise ConfigError(f"{what} needs a column {column!r}, which this table does not have (columns: {shown}).")


def _band(lo: float, hi: float) -> str:
    def f(v: float) -> str:
        if abs(v) >= 100 or abs(v - round(v)) < 1e-9:
            return f"{v:,.0f}"
        return f"{v:,.2f}".rstrip("0").rstrip(".")
    return f"{f(lo)}-{f(hi)}"


def attribute_segments(frame: pd.DataFrame, column: str, *, max_segments: int = 12, bins: int = 5) -> pd.Series:
    """One segment per value of ``column``. Text columns keep their ``max_segments - 1`` most frequent values and
    group the rest under ``(other)``; numeric columns with more distinct values than ``max_segments`` are cut into
    ``bins`` quantile bands ("12-40"); missing values form ``(missing)``."""
    _require(frame, column, "An attribute segment")
    if int(max_segments) < 2:
        raise ConfigError(f"An attribute needs at least 2 segments, got max_segments={max_segments!r}.")
    s = frame[column]
    name = str(column)
    numeric = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
    if numeric and s.nunique(dropna=True) > int(max_segments):
        v = pd.to_numeric(s, errors="coerce").astype("float64")
        edges = np.unique(np.nanquantile(v.to_numpy(), np.linspace(0, 1, int(bins) + 1)))
        if len(edges) < 2:
            edges = np.array([np.nanmin(v), np.nanmax(v)])
        cut = pd.cut(v, edges, include_lowest=True, duplicates="drop")
        cats = [_band(iv.left if i else edges[0], iv.right) for i, iv in enumerate(cut.cat.categories)]
        labels = [cats[c] if c >= 0 else MISSING for c in cut.cat.codes.to_numpy()]
        order = cats + ([MISSING] if (cut.cat.codes.to_numpy() < 0).any() else [])
        return _ordered(labels, order, frame.index, name)
    text = s.astype("string").str.strip()
    text = text.mask(text == "", pd.NA)
    counts = text.value_counts(dropna=True)
    keep = list(counts.index[: int(max_segments) - 1]) if len(counts) > int(max_segments) else list(counts.index)
    out = text.where(text.isin(keep), OTHER).where(text.notna(), MISSING)
    order = [str(k) for k in keep] + [c for c in (OTHER, MISSING) if (out == c).any()]
    return _ordered(out.astype(str).to_numpy(), order, frame.index, name)


# ---------------------------------------------------------------------------------------------------------- RFM
#: The RFM groups, best first: (name, R from, R to, FM from, FM to, who they are, what to do).
#: R scores recency (5 = bought most recently), FM is the rounded mean of the frequency and monetary scores
#: (5 = buys most often and spends most). The first rule that matches wins, so "lost" is taken out of "hibernating".
RFM_RULES: list[tuple[str, int, int, int, int, str, str]] = [
    ("champions", 5, 5, 4, 5, "Bought recently, buy often and spend the most.",
     "Reward them; ask for reviews; early access to new products."),
    ("loyal", 3, 4, 4, 5, "Buy often and spend well; responsive to promotions.",
     "Upsell higher-value products; loyalty programme."),
    ("potential loyalists", 4, 5, 2, 3, "Recent customers with average frequency and spend.",
     "Offer membership or a loyalty programme; recommend products."),
    ("new customers", 5, 5, 1, 1, "Bought very recently, but not often yet.",
     "Onboarding, early support, a reason to come back."),
    ("promising", 4, 4, 1, 1, "Recent shoppers who have not spent much yet.",
     "Build brand awareness; free trials."),
    ("need attention", 3, 3, 3, 3, "Above-average recency, frequency and spend, but slipping.",
     "Limited-time offers based on past purchases."),
    ("about to sleep", 3, 3, 1, 2, "Below-average recency, frequency and spend.",
     "Share popular products and discounts; reconnect them."),
    ("can't lose them", 1, 2, 5, 5, "Used to buy the most and the most often, but not for a long time.",
     "Win them back with renewals or new products; talk to them."),
    ("at risk", 1, 2, 3, 4, "Spent big and bought often, but long ago.",
     "Personal e-mails to reconnect; offer renewals and helpful resources."),
    ("lost", 1, 1, 1, 1, "Lowest recency, frequency and spend.",
     "Revive interest with an outreach campaign, or let them go."),
    ("hibernating", 1, 2, 1, 2, "Last purchase long ago, few orders and low spend.",
     "Offer other relevant products and special discounts."),
]
RFM_SEGMENT_ORDER = ["champions", "loyal", "potential loyalists", "new customers", "promising", "need attention",
                     "about to sleep", "at risk", "can't lose them", "hibernating", "lost"]
RFM_COLUMNS = {"recency": ("recency_days",), "frequency": ("orders_365d", "orders_total"),
               "monetary": ("revenue_365d", "revenue_total")}


def rfm_rules() -> pd.DataFrame:
    """The RFM rules as a table to show on screen: ``segment``, ``recency_score``, ``frequency_monetary_score``,
    ``who`` and ``action``; segments listed best first, each rule applied in the order of :data:`RFM_RULES`."""
    def rng(lo: int, hi: int) -> str:
        return str(lo) if lo == hi else f"{lo}-{hi}"
    rows = {r[0]: {"segment": r[0], "recency_score": rng(r[1], r[2]), "frequency_monetary_score": rng(r[3], r[4]),
                   "who": r[5], "action": r[6]} for r in RFM_RULES}
    rows["hibernating"]["frequency_monetary_score"] += " (not lost)"
    return pd.DataFrame([rows[n] for n in RFM_SEGMENT_ORDER])


def _pick(frame: pd.DataFrame, given: str | None, options: Sequence[str], what: str) -> str:
    if given is not None:
        _require(frame, given, f"The {what} score")
        return given
    for c in options:
        if c in frame.columns:
            return c
    raise ConfigError(f"RFM needs a {what} column ({' or '.join(options)}); this table has none. Build the dataset "
                      "from an event log with purchases, or name the column.")


def quintile_score(values: Any, *, higher_is_better: bool = True, q: int = 5) -> np.ndarray:
    """Scores 1..q by rank (q = best): equal values always get the same score; missing values get 1."""
    v = pd.Series(np.asarray(values, dtype="float64"))
    if not higher_is_better:
        v = -v
    n = int(v.notna().sum())
    score = np.ones(len(v), dtype=int)
    if n:
        pct = v.rank(method="average").to_numpy() / n
        ok = np.isfinite(pct)
        score[ok] = np.clip(np.ceil(pct[ok] * q - 1e-9), 1, q).astype(int)
    return score


def rfm_scores(frame: pd.DataFrame, *, recency: str | None = None, frequency: str | None = None,
               monetary: str | None = None) -> pd.DataFrame:
    """Quintile scores 1..5 (5 = best): ``R`` (fewer days since the last purchase is better), ``F`` (more orders),
    ``M`` (more spend), ``FM`` (rounded mean of F and M, halves up) and ``rfm`` ("545"). Frequency and monetary
    default to the last 365 days (``orders_365d``, ``revenue_365d``), else the totals; missing counts are zero and a
    missing recency (never bought) scores 1."""
    rc = _pick(frame, recency, RFM_COLUMNS["recency"], "recency")
    fc = _pick(frame, frequency, RFM_COLUMNS["frequency"], "frequency")
    mc = _pick(frame, monetary, RFM_COLUMNS["monetary"], "monetary")
    num = lambda c: pd.to_numeric(frame[c], errors="coerce").astype("float64")  # noqa: E731
    r = quintile_score(num(rc), higher_is_better=False)
    f = quintile_score(num(fc).fillna(0.0))
    m = quintile_score(num(mc).fillna(0.0))
    fm = np.floor((f + m) / 2 + 0.5).astype(int)
    out = pd.DataFrame({"R": r, "F": f, "M": m, "FM": fm}, index=frame.index)
    out["rfm"] = [f"{a}{b}{c}" for a, b, c in zip(r, f, m)]
    out.attrs["columns"] = {"recency": rc, "frequency": fc, "monetary": mc}
    return out


def rfm_names(r: Any, fm: Any) -> np.ndarray:
    """The RFM group for each pair of scores (R, FM), by the first matching rule of :data:`RFM_RULES`."""
    r, fm = np.asarray(r, dtype=int).ravel(), np.asarray(fm, dtype=int).ravel()
    labels = np.full(len(r), "", dtype=object)
    for name, rlo, rhi, flo, fhi, _, _ in RFM_RULES:
        hit = (labels == "") & (r >= rlo) & (r <= rhi) & (fm >= flo) & (fm <= fhi)
        labels[hit] = name
    labels[labels == ""] = "hibernating"  # unreachable with scores 1..5; kept so every user has a group
    return labels


def rfm_segments(frame: pd.DataFrame, **columns: str | None) -> pd.Series:
    """The RFM group of each user (see :func:`rfm_rules`), as an ordered categorical, best group first."""
    sc = rfm_scores(frame, **columns)
    out = _ordered(rfm_names(sc["R"], sc["FM"]), RFM_SEGMENT_ORDER, frame.index, "RFM segment")
    out.attrs["columns"] = sc.attrs["columns"]
    return out


# ---------------------------------------------------------------------------------------------------------- risk
TIER_ORDER = ["high", "medium", "low"]


def decile_reference(population: Any) -> np.ndarray:
    """The population a decile is read against: its finite probabilities, sorted (:func:`deciles_against`)."""
    pv = np.asarray(population, dtype="float64").ravel()
    return np.sort(pv[np.isfinite(pv)])


def deciles_against(p: Any, reference: np.ndarray) -> np.ndarray:
    """The one decile rule: 1 + the tenths of the ``reference`` population (:func:`decile_reference`) that score
    strictly higher than each probability (1 = most at risk, 10 = least). Users with the same probability share a
    decile (the best one their tie reaches), whatever their order; against an empty population everyone is decile 1.
    Batch scoring reads it against the users scored (:func:`risk_deciles`), the service against the run's validation
    users."""
    pv = np.asarray(p, dtype="float64").ravel()
    n = len(reference)
    if not n:
        return np.ones(len(pv), dtype=int)
    higher = n - np.searchsorted(reference, pv, side="right")
    return np.minimum(higher * 10 // n + 1, 10).astype(int)


def risk_deciles(p: Any, index: pd.Index | None = None) -> pd.Series:
    """Decile of churn probability per user among the users given (:func:`deciles_against` them), 1 = the 10% most
    at risk; ties share a decile and the riskiest user is always in decile 1; missing probabilities get no decile."""
    pv = np.asarray(p, dtype="float64").ravel()
    out = np.full(len(pv), np.nan)
    ok = np.isfinite(pv)
    if ok.any():
        out[ok] = deciles_against(pv[ok], decile_reference(pv))
    return pd.Series(pd.array(out, dtype="Float64").astype("Int64"), index=index, name="risk decile")


def ranks(v: Any) -> np.ndarray:
    """Rank of each value, 1 = the highest (ties in row order): the ``rank`` column of a scores table, by churn
    probability or by uplift."""
    v = np.asarray(v, dtype="float64")
    out = np.empty(len(v), dtype=np.int64)
    out[np.argsort(-v, kind="stable")] = np.arange(1, len(v) + 1)
    return out


def risk_tiers(p: Any, index: pd.Index | None = None, *, high: int = 2, medium: int = 5) -> pd.Series:
    """Coarse tiers from the deciles: ``high`` (deciles 1..high, the 20% most at risk by default), ``medium`` (up to
    decile ``medium``, the next 30%) and ``low`` (the rest)."""
    if not 1 <= int(high) < int(medium) <= 9:
        raise ConfigError(f"Risk tiers need 1 <= high < medium <= 9 (deciles), got high={high!r}, medium={medium!r}.")
    d = risk_deciles(p, index)
    labels = np.where(d.isna(), None, np.where(d <= high, "high", np.where(d <= medium, "medium", "low")))
    return _ordered(labels, TIER_ORDER, d.index, "risk tier")


def decile_segments(p: Any, index: pd.Index | None = None) -> pd.Series:
    """:func:`risk_deciles` as segment labels ("decile 1" ... "decile 10"), in order."""
    d = risk_deciles(p, index)
    labels = [None if pd.isna(v) else f"decile {int(v)}" for v in d]
    return _ordered(labels, [f"decile {i}" for i in range(1, 11)], d.index, "risk decile")


def buyer_type(frame: pd.DataFrame, column: str = "repeat_purchases") -> pd.Series:
    """``one-time`` (no repeat purchase: ``repeat_purchases == 0``) or ``repeat`` buyers; missing stays missing."""
    _require(frame, column, "One-time vs repeat buyers")
    v = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
    labels = np.where(np.isnan(v), None, np.where(v == 0, "one-time", "repeat"))
    return _ordered(labels, ["one-time", "repeat"], frame.index, "buyer type")


# ---------------------------------------------------------------------------------------------------------- custom
OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "between")


@dataclass(frozen=True)
class Condition:
    """One condition of a custom segment: ``column op value``; ``in`` takes a list of values, ``between`` two bounds
    (both included). Missing values never match."""

    column: str
    op: str
    value: Any

    @classmethod
    def from_text(cls, column: str, op: str, text: str) -> "Condition":
        """A condition from what an analyst typed: ``in`` reads a comma-separated list, ``between`` two values
        separated by a comma or "and"."""
        t = str(text).strip()
        if op == "in":
            return cls(column, op, [v.strip() for v in t.split(",") if v.strip()])
        if op == "between":
            parts = [v.strip() for v in re.split(r",|\band\b", t) if v.strip()]
            return cls(column, op, parts)
        return cls(column, op, t)

    def describe(self) -> str:
        v = self.value
        if self.op == "in":
            return f"{self.column} in ({', '.join(map(str, v))})"
        if self.op == "between":
            return f"{self.column} between {v[0]} and {v[1]}" if len(v) == 2 else f"{self.column} between {v!r}"
        return f"{self.column} {self.op} {v}"


def _as_condition(c: Any) -> Condition:
    if isinstance(c, Condition):
        return c
    if isinstance(c, dict):
        return Condition(c.get("column"), c.get("op"), c.get("value"))
    try:
        column, op, value = c
    except (TypeError, ValueError):
        raise ConfigError(f"A condition is (column, op, value), got {c!r}.") from None
    return Condition(column, op, value)


def _number_for(column: str, v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"Column {column!r} holds numbers; {v!r} is not a number.") from None
    if math.isnan(f):
        raise ConfigError(f"Column {column!r}: compare with a number, not {v!r}.")
    return f


def filter_mask(frame: pd.DataFrame, conditions: Sequence[Any], *, combine: str = "all") -> np.ndarray:
    """Rows of ``frame`` that meet the conditions (``combine="all"``: every one; ``"any"``: at least one), as a
    boolean array. Each condition is ``(column, op, value)`` or a :class:`Condition`; ops are ``== != < <= > >= in
    between``. Numeric columns compare as numbers (``"30"`` is read as 30), text columns as text."""
    if combine not in ("all", "any"):
        raise ConfigError(f"Conditions combine with 'all' or 'any', got {combine!r}.")
    conds = [_as_condition(c) for c in conditions]
    mask = np.ones(len(frame), dtype=bool) if combine == "all" else np.zeros(len(frame), dtype=bool)
    if not conds:
        return np.ones(len(frame), dtype=bool)
    for c in conds:
        if c.op not in OPS:
            raise ConfigError(f"Unknown operator {c.op!r} for column {c.column!r}; use one of {', '.join(OPS)}.")
        if c.column not in frame.columns:
            shown = ", ".join(map(str, list(frame.columns)[:15]))
            raise ConfigError(f"No column {c.column!r} to filter on (columns: {shown}).")
        s = frame[c.column]
        numeric = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
        if numeric:
            x = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64")
            conv = lambda v: _number_for(c.column, v)  # noqa: E731
        else:
            x = s.astype("string").str.strip().to_numpy(dtype=object, na_value=None)
            conv = lambda v: str(v).strip()  # noqa: E731
        present = ~pd.isna(x)
        if c.op in ("in", "between"):
            vals = c.value
            if isinstance(vals, (str, bytes)) or not hasattr(vals, "__iter__"):
                raise ConfigError(f"Operator {c.op!r} on {c.column!r} needs a list of values, got {vals!r}.")
            vals = [conv(v) for v in vals]
            if c.op == "between":
                if len(vals) != 2:
                    raise ConfigError(f"'between' on {c.column!r} needs two bounds (low, high), got {c.value!r}.")
                lo, hi = vals
                if lo > hi:
                    lo, hi = hi, lo
                with np.errstate(invalid="ignore"):
                    hit = np.zeros(len(x), dtype=bool)
                    hit[present] = np.array([lo <= v <= hi for v in x[present]], dtype=bool) if not numeric \
                        else (x[present] >= lo) & (x[present] <= hi)
            else:
                if not vals:
                    raise ConfigError(f"'in' on {c.column!r} needs at least one value, got {c.value!r}.")
                hit = present & pd.Series(x).isin(vals).to_numpy()
        else:
            v = conv(c.value)  # text compares alphabetically, as in a spreadsheet
            hit = np.zeros(len(x), dtype=bool)
            xs = x[present]
            if numeric:
                with np.errstate(invalid="ignore"):
                    r = {"==": xs == v, "!=": xs != v, "<": xs < v, "<=": xs <= v, ">": xs > v, ">=": xs >= v}[c.op]
            else:
                ops = {"==": lambda a: a == v, "!=": lambda a: a != v, "<": lambda a: a < v,
                       "<=": lambda a: a <= v, ">": lambda a: a > v, ">=": lambda a: a >= v}
                r = np.array([ops[c.op](a) for a in xs], dtype=bool)
            hit[present] = r
        mask = (mask & hit) if combine == "all" else (mask | hit)
    return mask


def custom_segments(frame: pd.DataFrame, conditions: Sequence[Any], *, combine: str = "all",
                    name: str = "in the filter", rest: str = "everyone else") -> pd.Series:
    """Two segments: users who meet the conditions (``name``) and the others (``rest``)."""
    m = filter_mask(frame, conditions, combine=combine)
    return _ordered(np.where(m, name, rest), [name, rest], frame.index, "custom filter")


#: The group that segments too small to judge are merged into (:func:`group_small`).
SMALL_GROUP = "Other"
#: Segmentations whose small segments are grouped (the others have few, fixed segments worth keeping apart).
GROUPED_KINDS = ("attribute", "rfm")


def has_rfm(frame: pd.DataFrame) -> bool:
    """Whether RFM groups can be made from the table (it has recency, frequency and monetary columns)."""
    return all(any(c in frame.columns for c in opts) for opts in RFM_COLUMNS.values())


def group_small(labels: pd.Series, y: Any, *, min_users: int = 30, min_class: int = 5) -> pd.Series:
    """``labels`` with the segments too small to judge (fewer than ``min_users`` users, or fewer than ``min_class``
    churners or retained users, the rule of :func:`retention_core.evaluation.segment_metrics`) merged into one
    :data:`SMALL_GROUP` segment, placed last, with the rare values an attribute already grouped as ``(other)``. Only
    when two or more are small: one small segment keeps its name (and stays marked). ``attrs["grouped"]`` lists the
    segments merged."""
    yv = pd.Series(np.asarray(y, dtype="float64").ravel(), index=labels.index)
    text = labels.astype("string").fillna(MISSING)
    stats = pd.DataFrame({"n": yv.notna().groupby(text).sum(), "pos": yv.groupby(text).sum()})
    small = stats.index[(stats["n"] < min_users) | (np.minimum(stats["pos"], stats["n"] - stats["pos"]) < min_class)]
    if len(small) < 2:
        return labels
    small = small.union([OTHER]) if OTHER in stats.index else small  # one group for the rest, not two
    order = [str(c) for c in labels.cat.categories] if isinstance(labels.dtype, pd.CategoricalDtype) \
        else list(text.value_counts().index)
    keep = [c for c in order if c not in set(small) and c in set(stats.index)]
    keep += [c for c in stats.index if c not in set(small) and c not in keep]
    out = _ordered(text.where(~text.isin(small), SMALL_GROUP).to_numpy(), keep + [SMALL_GROUP], labels.index,
                   str(labels.name))
    out.attrs.update(labels.attrs)
    out.attrs["grouped"] = [str(c) for c in order if c in set(small)] + [c for c in small if c not in order]
    return out


SEGMENTATIONS = {"attribute": "Attribute", "rfm": "RFM group", "stage": "Lifecycle stage", "risk_tier": "Risk tier",
                 "risk_decile": "Risk decile", "buyer": "One-time vs repeat", "custom": "Custom filter"}


def stage_segments(frame: pd.DataFrame, rules: StageRules | None = None, *, reference=None) -> pd.Series:
    """Each user's lifecycle stage (:func:`retention_core.lifecycle.assign_stages`), in stage order."""
    if not has_inputs(frame):
        raise ConfigError("Lifecycle stages need purchase dates: they are read from an event log's days since the last "
                          "purchase and usual gap between purchases, which a user table does not have.")
    out = assign_stages(frame, rules, reference=reference)
    return out.rename("lifecycle stage")


def stage_risk_table(stage: Any, p: Any) -> pd.DataFrame:
    """Customers by lifecycle stage and risk tier (:func:`risk_tiers` of the churn probabilities ``p``): ``stage,
    tier, customers``, one row per pair in stage and tier order (empty pairs kept at 0)."""
    st = pd.Series(stage).astype("string").reset_index(drop=True)
    tier = risk_tiers(p).astype("string").reset_index(drop=True)
    counts = pd.crosstab(st, tier).reindex(index=list(STAGES), columns=TIER_ORDER, fill_value=0)
    out = counts.stack().rename("customers").reset_index()
    out.columns = ["stage", "tier", "customers"]
    out["customers"] = out["customers"].astype(int)
    return out


def make_segments(frame: pd.DataFrame, kind: str, *, column: str | None = None, p: Any = None,
                  conditions: Sequence[Any] = (), combine: str = "all", stage_rules: StageRules | None = None,
                  reference=None) -> pd.Series:
    """One call for every segmentation (``kind`` is a key of :data:`SEGMENTATIONS`; ``stage_rules`` and
    ``reference``: see :func:`stage_segments`)."""
    if kind == "stage":
        return stage_segments(frame, stage_rules, reference=reference)
    if kind == "attribute":
        if not column:
            raise ConfigError("Choose the attribute to split users by.")
        return attribute_segments(frame, column)
    if kind == "rfm":
        return rfm_segments(frame)
    if kind in ("risk_tier", "risk_decile"):
        if p is None:
            raise ConfigError("Risk segments need churn probabilities: train a model first.")
        if len(np.asarray(p).ravel()) != len(frame):
            raise ConfigError(f"{len(np.asarray(p).ravel())} probabilities for {len(frame)} users; they must match.")
        return risk_tiers(p, frame.index) if kind == "risk_tier" else decile_segments(p, frame.index)
    if kind == "buyer":
        return buyer_type(frame)
    if kind == "custom":
        if not conditions:
            raise ConfigError("Add at least one condition to build a custom segment.")
        return custom_segments(frame, conditions, combine=combine)
    raise ConfigError(f"Unknown segmentation {kind!r}; use one of {', '.join(SEGMENTATIONS)}.")


# ====================================================================================================================
# comparing segments
# ====================================================================================================================


def _segment_series(frame: pd.DataFrame | None, segment_col: Any, n: int | None = None) -> pd.Series:
    if isinstance(segment_col, pd.Series):
        seg = segment_col
    else:
        if frame is None:
            raise ConfigError("Name the segment column of a table, or pass the segments as a Series.")
        _require(frame, segment_col, "The segment table")
        seg = frame[segment_col]
    if n is not None and len(seg) != n:
        raise ConfigError(f"{len(seg)} segment labels for {n} users; they must match row for row.")
    return seg


def _labels(seg: pd.Series) -> pd.Series:
    return seg.astype("string").fillna(MISSING)


def _order(seg: pd.Series, present: Sequence[str]) -> list[str] | None:
    if isinstance(seg.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in seg.cat.categories]
        return [c for c in cats if c in set(present)] + [c for c in present if c not in set(cats)]
    return None


def segment_table(frame: pd.DataFrame | None, y: Any, p: Any, shap_df: pd.DataFrame | None = None,
                  segment_col: Any = "segment", *, min_users: int = 30, min_class: int = 5,
                  top_drivers: int = 3) -> pd.DataFrame:
    """One row per segment: ``segment``, ``users``, ``share`` (of all users), ``churn_rate``, ``mean_predicted``,
    ``roc_auc``, ``recall_top10`` and ``reliable`` (from :func:`retention_core.evaluation.segment_metrics`: small
    segments are marked, never hidden), then, when SHAP values are given, ``explained_users`` and ``top_drivers``
    (the features whose mean |SHAP| in the segment is most above the population's).

    ``y``, ``p`` and ``segment_col`` (a column of ``frame`` or a Series) are aligned with ``frame``; ``shap_df`` may
    hold only a sample of its rows (aligned by index). Ordered segmentations (RFM, deciles, tiers) keep their order,
    others are sorted by size.
    """
    from .evaluation import segment_metrics  # scikit-learn's metrics: loaded on first use, not at start

    yv = np.asarray(y, dtype="float64").ravel()
    pv = np.asarray(p, dtype="float64").ravel()
    seg = _segment_series(frame, segment_col, len(yv))
    if len(pv) != len(yv):
        raise ConfigError(f"{len(yv)} labels for {len(pv)} probabilities; they must match.")
    labels = _labels(seg)
    table = segment_metrics(yv, pv, labels.reset_index(drop=True), min_users=min_users, min_class=min_class)
    table["segment"] = table["segment"].astype(str)
    table.insert(2, "share", table["users"] / max(len(yv), 1))
    order = _order(seg, table["segment"].tolist())
    if order is not None:
        table = table.set_index("segment").loc[order].reset_index()
    cols = ["segment", "users", "share", "churn_rate", "mean_predicted", "roc_auc", "recall_top10", "reliable"]
    table = table[cols]
    if shap_df is not None:
        sub = labels.loc[shap_df.index] if frame is not None or isinstance(segment_col, pd.Series) else labels
        heat = segment_shap_heatmap_data(shap_df, sub, max_features=None)
        drivers, counts = {}, {}
        for s in table["segment"]:
            if s in heat.matrix.index:
                row = heat.matrix.loc[s].sort_values(ascending=False)
                row = row[row > 0].head(int(top_drivers))
                drivers[s] = ", ".join(feature_label(f) for f in row.index)
                counts[s] = int(heat.users.get(s, 0))
        table["explained_users"] = table["segment"].map(counts).fillna(0).astype(int)
        table["top_drivers"] = table["segment"].map(drivers).fillna("")
    return table.reset_index(drop=True)


class HeatmapData(NamedTuple):
    """Segment x feature data for a heatmap: ``matrix`` (difference or ratio of mean |SHAP| against the
    population), ``segment_values`` (mean |SHAP| per segment), ``population`` (mean |SHAP| of everyone, per feature),
    ``flags`` (True for each segment's biggest departures), ``users`` (users per segment), ``labels`` (feature ->
    readable name) and ``how``."""

    matrix: pd.DataFrame
    segment_values: pd.DataFrame
    population: pd.Series
    flags: pd.DataFrame
    users: pd.Series
    labels: dict
    how: str


def segment_shap_heatmap_data(shap_df: pd.DataFrame, segments: pd.Series, *, how: str = "difference",
                              max_features: int | None = 12, flag_top: int = 2,
                              min_change: float = 0.2) -> HeatmapData:
    """Mean |SHAP| per segment and feature against the whole population (all rows of ``shap_df``).

    ``how="difference"``: segment minus population (in the units of ``shap_df``); ``"ratio"``: segment / population.
    Features: the ``max_features`` most important in the population (all when None), most important first.
    Flags: per segment, the ``flag_top`` features with the largest change, when it is at least ``min_change``
    (20%) of the population's value. Users with no segment count in the population only.
    """
    if how not in ("difference", "ratio"):
        raise ConfigError(f"Compare segments by 'difference' or 'ratio', got {how!r}.")
    seg = pd.Series(segments)
    if len(seg) != len(shap_df):
        raise ConfigError(f"{len(seg)} segment labels for {len(shap_df)} explained users; they must match.")
    agg = segment_mean_abs_shap(shap_df, seg, sort=False, as_text=True)
    feats = agg.population.sort_values(ascending=False, kind="stable").index.tolist()
    if max_features is not None:
        feats = feats[: int(max_features)]
    means, users, pop = agg.means[feats], agg.users, agg.population[feats]
    order = _order(seg, list(means.index)) or list(users.sort_values(ascending=False, kind="stable").index)
    means, users = means.loc[order], users.loc[order]
    if how == "difference":
        matrix = means - pop
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            matrix = means / pop.replace(0.0, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = ((means - pop).abs() / pop.replace(0.0, np.nan)).fillna(0.0)
    size = (means - pop).abs()
    flags = pd.DataFrame(False, index=matrix.index, columns=matrix.columns)
    for s in matrix.index:
        top = size.loc[s].sort_values(ascending=False, kind="stable").index[: int(flag_top)]
        for f in top:
            if rel.loc[s, f] >= min_change:
                flags.loc[s, f] = True
    matrix.index.name = flags.index.name = means.index.name = "segment"
    return HeatmapData(matrix, means, pop, flags, users, {f: feature_label(f) for f in feats}, how)
