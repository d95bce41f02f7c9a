"""Why a model calls a user at risk: SHAP values for every model family, reasons in plain words, per-segment views.

Computation lives here; the app only asks for DataFrames. An :class:`Explainer` wraps one fitted model, builds its
SHAP explainer on first use and caches every result it computes (keyed by a digest of the rows), so a page that
reruns never recomputes what it already has::

    ex = Explainer(model, "gbm", X_background, numeric, categorical, reference_y=y_background)
    sample = sample_for_explanation(X, y, n=1000)          # bounded and stratified: say so on screen (sample.note)
    sv = ex.shap_values(sample.X)                          # one column per readable unit, rows aligned with X
    global_importance(sv, ex.unit_values(sample.X))        # feature, label, mean_abs_shap, direction
    ex.reasons(X_at_risk, n=3)                             # per user: texts such as "No purchase for 94 days ..."

Readable units: one per original input column (the one-hot columns of a categorical and the missing-value indicator
of a numeric column are summed back into their column); sequence models add, for each weekly activity channel,
"<channel> in the last 4 weeks" and "<channel> 5-<W> weeks ago".

How each family is explained (``Explainer.method`` / ``Explainer.space``):

* ``tree`` (random forest, gradient boosting): ``shap.TreeExplainer`` on the encoded matrix the trees see
  (categoricals are ordinal codes, never native categories). Gradient boosting is explained in **log-odds**, the
  random forest in **probability** (its trees average probabilities).
* ``linear`` (logistic regression): ``shap.LinearExplainer`` on the encoded matrix with a background sample, in
  **log-odds**.
* ``deep`` (MLP, CNN, GRU, Transformer), in **probability**: by default (``deep_method="gradient"``) expected
  gradients (SHAP's GradientExplainer method, with TensorFlow gradients) over the model inputs, summed into readable
  units and adjusted so each user's values add up exactly; with ``deep_method="permutation"``,
  ``shap.PermutationExplainer`` over the readable units, with the Keras model called directly (not
  ``model.predict``) on inputs assembled from the user's and the background users' values. Each permutation is
  exactly additive; more permutations lower the noise.
* ``baseline`` (recency rule, BG/NBD): ``shap.ExactExplainer`` over their one to three inputs with a small
  background, in **probability**. For BG/NBD, a background mix where days since the last purchase exceed the
  customer's age is clipped to the age (the model cannot score impossible histories).
* A calibrated model is explained through its underlying model (``CalibratedModel.base_``); calibration is monotone
  and keeps the ranking of users. Effects in points (:meth:`Explainer.effects_points`) are rescaled to the calibrated
  churn probability.

SHAP values satisfy ``expected_value + row sum == model output`` in ``Explainer.space``. Reasons and "+12 pts" are
in percentage points of churn probability: log-odds values are shared out in proportion to their size, so a user's
points add up to their churn probability minus the average one.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd
from scipy import special

from .errors import ModelError

__all__ = [
    "Explainer",
    "ExplanationSample",
    "Reference",
    "beeswarm_data",
    "dependence",
    "feature_label",
    "global_importance",
    "reason_texts",
    "sample_for_explanation",
    "segment_importance",
    "top_reasons",
]

RECENT_WEEKS = 4
DEFAULT_SAMPLE = 1000
DEFAULT_BACKGROUND = 50
DEEP_BACKGROUND = 20
PARALLEL_TREE_ROWS = 400
KERAS_BATCH = 8192
GRADIENT_SAMPLES = 64  # expected-gradients samples per user (background user and point on the line to the user)
MIN_POINTS = 0.05  # effects below this many percentage points are noise, not reasons
MISSING_CATEGORY = "(missing)"

# weekly activity channels of the sequence models: readable noun and how a week's value is turned back into a count
_CHANNELS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "orders": ("orders", lambda a: a),
    "revenue_log": ("spend", np.expm1),
    "browsing_log": ("browsing", np.expm1),
    "returns": ("returns", lambda a: a),
}


# --------------------------------------------------------------------------------------------------------------------
# bounded, stratified sample
# --------------------------------------------------------------------------------------------------------------------


class ExplanationSample(NamedTuple):
    """The users SHAP is computed on: ``X`` (and ``y``) of the sample, ``positions`` (row positions in the full table,
    to slice sequences), ``n_total`` (users in the full table)."""

    X: pd.DataFrame
    y: np.ndarray | None
    positions: np.ndarray
    n_total: int

    @property
    def size(self) -> int:
        return int(len(self.positions))

    @property
    def note(self) -> str:
        """What to say on screen next to a SHAP chart."""
        if self.size >= self.n_total:
            return f"Explanations computed on all {self.n_total:,} users."
        how = "stratified by outcome" if self.y is not None else "random"
        return f"Explanations computed on a {how} sample of {self.size:,} of {self.n_total:,} users."


def sample_for_explanation(X: pd.DataFrame, y: Any = None, n: int = DEFAULT_SAMPLE, seed: int = 0
                           ) -> ExplanationSample:
    """At most ``n`` rows of ``X``, stratified by label when ``y`` is given (each label keeps its share, and at least
    one row when it has any); rows keep their original order. Labels that are missing form their own stratum."""
    total = len(X)
    n = int(n)
    if n < 1:
        raise ModelError(f"The explanation sample needs at least 1 user, got n={n!r}.")
    yv = None if y is None else np.asarray(y, dtype="float64").ravel()
    if yv is not None and yv.size != total:
        raise ModelError(f"{yv.size} labels for {total} users; they must match row for row.")
    rng = np.random.default_rng(seed)
    if total <= n:
        pos = np.arange(total)
    elif yv is None:
        pos = np.sort(rng.choice(total, size=n, replace=False))
    else:
        keys = np.where(np.isnan(yv), -1.0, yv)
        groups = [np.flatnonzero(keys == k) for k in np.unique(keys)]
        sizes = np.array([len(g) for g in groups], dtype=float)
        quota = np.maximum(1, np.floor(sizes / total * n)).astype(int)
        quota = np.minimum(quota, sizes.astype(int))
        # hand out what flooring left over to the largest remainders, never above n in all
        rest = n - int(quota.sum())
        order = np.argsort(-(sizes / total * n - np.floor(sizes / total * n)))
        for k in order:
            if rest <= 0:
                break
            if quota[k] < sizes[k]:
                quota[k] += 1
                rest -= 1
        while quota.sum() > n:
            quota[int(np.argmax(quota))] -= 1
        pos = np.sort(np.concatenate([rng.choice(g, size=q, replace=False) for g, q in zip(groups, quota)]))
    Xs = X.iloc[pos]
    return ExplanationSample(Xs, None if yv is None else yv[pos], pos, total)


# --------------------------------------------------------------------------------------------------------------------
# reference values ("typical for retained users")
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """What "typical" means in the reasons: ``medians`` per numeric unit among ``label`` users (retained users of the
    reference data when labels are known), churn rate per value of each categorical (``category_rates``) and overall
    (``churn_rate``)."""

    medians: dict[str, float] = field(default_factory=dict)
    category_rates: dict[str, dict[str, float]] = field(default_factory=dict)
    churn_rate: float | None = None
    label: str = "retained users"
    n: int = 0

    @classmethod
    def from_frame(cls, values: pd.DataFrame, y: Any = None, categorical: Sequence[str] = (),
                   label: str | None = None) -> "Reference":
        cats = set(categorical)
        yv = None if y is None else np.asarray(y, dtype="float64").ravel()
        if yv is not None and yv.size != len(values):
            raise ModelError(f"{yv.size} reference labels for {len(values)} users; they must match row for row.")
        if yv is not None and np.isfinite(yv).any() and (yv == 0).any():
            keep = yv == 0
            lab = label or "retained users"
        else:
            keep = np.ones(len(values), dtype=bool)
            lab = label or "all users"
        medians: dict[str, float] = {}
        rates: dict[str, dict[str, float]] = {}
        for c in values.columns:
            if c in cats or not _is_numeric(values[c]):
                if yv is not None and np.isfinite(yv).any():
                    lab_ok = np.isfinite(yv)
                    text = pd.Series(_category_text(values[c]), index=values.index)[lab_ok]
                    rates[c] = pd.Series(yv[lab_ok], index=text.index).groupby(text.to_numpy()).mean().to_dict()
                continue
            v = pd.to_numeric(values[c], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)[keep]
            v = v[np.isfinite(v)]
            medians[c] = float(np.median(v)) if v.size else float("nan")
        rate = None
        if yv is not None and np.isfinite(yv).any():
            rate = float(np.nanmean(yv))
        return cls(medians, rates, rate, lab, int(keep.sum()))


def _as_reference(reference: Any) -> Reference:
    if isinstance(reference, Reference):
        return reference
    if reference is None:
        return Reference()
    if isinstance(reference, pd.Series):
        reference = reference.to_dict()
    if isinstance(reference, dict):
        return Reference(medians={k: float(v) for k, v in reference.items() if _number(v) is not None})
    raise ModelError(f"reference must be a Reference or a mapping of feature -> typical value, got "
                     f"{type(reference).__name__}.")


# --------------------------------------------------------------------------------------------------------------------
# plain-language texts
# --------------------------------------------------------------------------------------------------------------------


def _number(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _fmt(v: float) -> str:
    """A number as people read it: whole numbers without decimals, else one decimal (two below 1)."""
    if abs(v - round(v)) < 1e-9 or abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:,.1f}".rstrip("0").rstrip(".")
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _whole(v: float) -> str:
    return f"{v:,.0f}"


def _pct(v: float) -> str:
    return f"{v:.0%}" if abs(v) >= 0.01 or v == 0 else f"{v:.1%}"


def _typ(ref: float | None, lab: str, fmt: Callable[[float], str] = _fmt) -> str:
    return "" if ref is None else f" (typical for {lab}: {fmt(ref)})"


def _plural(v: float, one: str, many: str) -> str:
    return one if abs(v - 1) < 1e-9 else many


def _count(v: float, ref: float | None, lab: str, one: str, many: str, where: str) -> str:
    """"No orders in the last 30 days", "Only 1 order ...", "5 orders ..." with the typical value."""
    if abs(v) < 1e-9:
        text = f"No {many} {where}"
    elif ref is not None and v < ref:
        text = f"Only {_fmt(v)} {_plural(v, one, many)} {where}"
    else:
        text = f"{_fmt(v)} {_plural(v, one, many)} {where}"
    return text + _typ(ref, lab)


def _money(v: float, ref: float | None, lab: str, where: str) -> str:
    if abs(v) < 1e-9:
        return f"Spent nothing {where}" + _typ(ref, lab, _whole)
    return f"{'Only spent' if ref is not None and v < ref else 'Spent'} {_whole(v)} {where}" + _typ(ref, lab, _whole)


def _window_words(days: str) -> str:
    return f"in the last {int(days)} days"


def _slug_words(slug: str) -> str:
    return slug.replace("_", " ").strip()


def _trend(v: float, noun: str, unit_one: str, unit_many: str) -> str:
    if v < 0:
        return f"{noun} less in the last 90 days than the 90 before ({_fmt(-v)} fewer {unit_many})" \
            if unit_many else f"{noun} less in the last 90 days than the 90 before"
    if v == 0:
        return f"{noun} as much in the last 90 days as in the 90 before"
    return f"{noun} more in the last 90 days than the 90 before"


# exact names -> (label for charts, text(v, ref, lab) for reasons)
_T = Callable[[float, float | None, str], str]
_KNOWN: dict[str, tuple[str, _T]] = {
    "recency_days": ("Days since last purchase",
                     lambda v, r, l: f"No purchase for {_whole(v)} days" + _typ(r, l, _whole)),
    "days_since_last_event": ("Days since last activity",
                              lambda v, r, l: f"No activity for {_whole(v)} days" + _typ(r, l, _whole)),
    "tenure_days": ("Days since first purchase",
                    lambda v, r, l: f"First purchase {_whole(v)} days ago" + _typ(r, l, _whole)),
    "first_to_last_days": ("Days from first to last purchase",
                           lambda v, r, l: f"{_whole(v)} days between first and last purchase" + _typ(r, l, _whole)),
    "repeat_purchases": ("Repeat purchase days",
                         lambda v, r, l: ("No repeat purchase yet" + _typ(r, l)) if v == 0
                         else _count(v, r, l, "repeat purchase day", "repeat purchase days", "so far")),
    "orders_total": ("Orders in total", lambda v, r, l: _count(v, r, l, "order", "orders", "in total")),
    "active_days_total": ("Active days in total",
                          lambda v, r, l: _count(v, r, l, "active day", "active days", "in total")),
    "revenue_total": ("Spend in total", lambda v, r, l: _money(v, r, l, "in total")),
    "units_total": ("Items bought in total", lambda v, r, l: _count(v, r, l, "item", "items", "bought in total")),
    "lines_total": ("Order lines in total", lambda v, r, l: _count(v, r, l, "order line", "order lines", "in total")),
    "returns_total": ("Returned items", lambda v, r, l: f"{_fmt(v)} {_plural(v, 'item', 'items')} returned"
                      + _typ(r, l)),
    "cancels_total": ("Cancelled items", lambda v, r, l: f"{_fmt(v)} {_plural(v, 'item', 'items')} cancelled"
                      + _typ(r, l)),
    "events_total": ("Site events in total", lambda v, r, l: _count(v, r, l, "site event", "site events", "in total")),
    "browsing_total": ("Browsing events in total",
                       lambda v, r, l: _count(v, r, l, "browsing event", "browsing events", "in total")),
    "ratings_count": ("Ratings given", lambda v, r, l: _count(v, r, l, "rating", "ratings", "given")),
    "rating_mean": ("Average rating", lambda v, r, l: f"Average rating {_fmt(v)}" + _typ(r, l)),
    "rating_min": ("Lowest rating", lambda v, r, l: f"Lowest rating given: {_fmt(v)}" + _typ(r, l)),
    "avg_order_value": ("Average order value", lambda v, r, l: f"Average order value {_whole(v)}"
                        + _typ(r, l, _whole)),
    "lines_per_order": ("Items per order", lambda v, r, l: f"{_fmt(v)} items per order" + _typ(r, l)),
    "return_rate": ("Share of items returned", lambda v, r, l: f"Returned {_pct(v)} of items" + _typ(r, l, _pct)),
    "cancel_rate": ("Share of items cancelled", lambda v, r, l: f"Cancelled {_pct(v)} of items" + _typ(r, l, _pct)),
    "orders_trend_90d": ("Orders, last 90 days vs the 90 before",
                         lambda v, r, l: _trend(v, "Bought", "order", "orders")),
    "revenue_trend_90d": ("Spend, last 90 days vs the 90 before",
                          lambda v, r, l: _trend(v, "Spent", "", "")),
    "orders_30d_vs_avg": ("Orders in the last 30 days vs usual",
                          lambda v, r, l: "Fewer orders in the last 30 days than usual" if v < 0
                          else "As many orders in the last 30 days as usual" if v == 0
                          else "More orders in the last 30 days than usual"),
    "orders_prev_90d": ("Orders 91-180 days ago",
                        lambda v, r, l: _count(v, r, l, "order", "orders", "91-180 days ago")),
    "revenue_prev_90d": ("Spend 91-180 days ago", lambda v, r, l: _money(v, r, l, "91-180 days ago")),
    "gap_mean_days": ("Usual days between purchases",
                      lambda v, r, l: f"Usually buys every {_whole(v)} days" + _typ(r, l, _whole)),
    "gap_std_days": ("Irregularity of purchases (days)",
                     lambda v, r, l: f"Irregular buying rhythm (gaps vary by {_whole(v)} days)" + _typ(r, l, _whole)),
    "gap_max_days": ("Longest gap between purchases",
                     lambda v, r, l: f"Longest gap between purchases: {_whole(v)} days" + _typ(r, l, _whole)),
    "recency_vs_usual_gap": ("Silence vs usual gap",
                             lambda v, r, l: f"Silent for {_fmt(v)}x their usual time between purchases"
                             + _typ(r, l, lambda x: f"{_fmt(x)}x")),
    "n_products": ("Different products bought",
                   lambda v, r, l: _count(v, r, l, "different product", "different products", "bought")),
    "n_categories": ("Categories bought",
                     lambda v, r, l: _count(v, r, l, "category", "categories", "bought from")),
}

_MISSING_TEXT = {
    "gap_mean_days": "Only one purchase day so far (no usual rhythm yet)",
    "gap_std_days": "Too few purchases to show a buying rhythm",
    "gap_max_days": "Only one purchase day so far",
    "recency_vs_usual_gap": "Only one purchase day so far (no usual rhythm yet)",
    "rating_mean": "Never left a rating",
    "rating_min": "Never left a rating",
    "avg_order_value": "No order value recorded",
    "return_rate": "No items bought to compare returns with",
    "cancel_rate": "No items bought to compare cancellations with",
}

_WINDOW = [
    (re.compile(r"^orders_(\d+)d$"), lambda m: f"Orders in the last {m.group(1)} days",
     lambda m: lambda v, r, l: _count(v, r, l, "order", "orders", _window_words(m.group(1)))),
    (re.compile(r"^revenue_(\d+)d$"), lambda m: f"Spend in the last {m.group(1)} days",
     lambda m: lambda v, r, l: _money(v, r, l, _window_words(m.group(1)))),
    (re.compile(r"^active_days_(\d+)d$"), lambda m: f"Active days in the last {m.group(1)} days",
     lambda m: lambda v, r, l: _count(v, r, l, "active day", "active days", _window_words(m.group(1)))),
    (re.compile(r"^events_(.+)_(\d+)d$"), lambda m: f"'{_slug_words(m.group(1))}' events in the last {m.group(2)} days",
     lambda m: lambda v, r, l: _count(v, r, l, f"'{_slug_words(m.group(1))}' event",
                                      f"'{_slug_words(m.group(1))}' events", _window_words(m.group(2)))),
    (re.compile(r"^events_(.+)_total$"), lambda m: f"'{_slug_words(m.group(1))}' events in total",
     lambda m: lambda v, r, l: _count(v, r, l, f"'{_slug_words(m.group(1))}' event",
                                      f"'{_slug_words(m.group(1))}' events", "in total")),
    # activity units of the sequence models
    (re.compile(r"^orders (in the last \d+ weeks?|\d+-\d+ weeks ago)$"), lambda m: m.group(0).capitalize(),
     lambda m: lambda v, r, l: _count(v, r, l, "order", "orders", m.group(1))),
    (re.compile(r"^spend (in the last \d+ weeks?|\d+-\d+ weeks ago)$"), lambda m: m.group(0).capitalize(),
     lambda m: lambda v, r, l: _money(v, r, l, m.group(1))),
    (re.compile(r"^browsing (in the last \d+ weeks?|\d+-\d+ weeks ago)$"), lambda m: m.group(0).capitalize(),
     lambda m: lambda v, r, l: (f"No browsing {m.group(1)}" + _typ(r, l)) if v == 0
     else _count(v, r, l, "browsing event", "browsing events", m.group(1))),
    (re.compile(r"^returns (in the last \d+ weeks?|\d+-\d+ weeks ago)$"), lambda m: m.group(0).capitalize(),
     lambda m: lambda v, r, l: _count(v, r, l, "returned item", "returned items", m.group(1))),
]


def _pretty(name: str) -> str:
    """``payment_method`` -> ``Payment method``; names with capitals (``MonthlyCharges``) are kept as given."""
    s = str(name)
    if s == s.lower():
        s = s.replace("_", " ").strip()
        return s[:1].upper() + s[1:]
    return s


def _lookup(feature: str) -> tuple[str, _T | None]:
    if feature in _KNOWN:
        return _KNOWN[feature]
    for pattern, label, text in _WINDOW:
        m = pattern.match(feature)
        if m:
            return label(m), text(m)
    return _pretty(feature), None


def feature_label(feature: str) -> str:
    """The name of a feature as charts show it ("Days since last purchase" for ``recency_days``); user-table columns
    keep their own names."""
    return _lookup(str(feature))[0]


def _category_text(s: pd.Series) -> np.ndarray:
    """Category values as the models read them (one mechanism, in the preprocessing): ``3.0`` -> ``"3"``, blank or
    missing -> ``"(missing)"``. Imported here on first use, so that importing explanations does not load sklearn."""
    from .models.base import category_text as as_model_reads

    return as_model_reads(s)


def _describe_value(feature: str, value: Any, ref: Reference, categorical: bool) -> str:
    """One plain sentence about this user's value of one feature."""
    label, template = _lookup(feature)
    if categorical or (value is not None and not isinstance(value, (int, float, np.integer, np.floating))
                       and _number(value) is None and not pd.isna(value)):
        text = _category_text(pd.Series([value]))[0]
        shown = "not recorded" if text == MISSING_CATEGORY else text
        out = f"{_pretty(feature)}: {shown}"
        rate = ref.category_rates.get(feature, {}).get(text)
        if rate is not None and ref.churn_rate is not None and rate > ref.churn_rate:
            out += " (churns more than average)"
        return out
    v = _number(value)
    if v is None:
        return _MISSING_TEXT.get(feature, f"{label}: unknown")
    r = _number(ref.medians.get(feature))
    if template is not None:
        return template(v, r, ref.label)
    return f"{label} is {_fmt(v)}" + _typ(r, ref.label)


def _points_text(p: float) -> str:
    """``+12 pts``, ``+2.5 pts``, ``+1 pt``: percentage points, whole above 10, else one decimal."""
    text = f"{p:.0f}" if p >= 9.5 else f"{p:.1f}".rstrip("0").rstrip(".")
    return f"+{text} {'pt' if text == '1' else 'pts'}"


_THEMES = [
    ("recency", re.compile(r"^(recency_days|days_since_last_event|recency_vs_usual_gap)$")),
    ("trend", re.compile(r"(_trend_|_vs_avg$|_prev_)")),
    ("spend", re.compile(r"^(revenue_|avg_order_value$|units_total$)")),
    ("frequency", re.compile(r"^(orders_|repeat_purchases$|active_days_|lines_)")),
    ("cadence", re.compile(r"^gap_")),
    ("returns", re.compile(r"^(return|cancel)")),
    ("browsing", re.compile(r"^(events_|browsing)")),
    ("breadth", re.compile(r"^n_(products|categories)$")),
    ("tenure", re.compile(r"^(tenure_days|first_to_last_days)$")),
    ("rating", re.compile(r"^rating")),
]


def reason_theme(feature: str) -> str:
    """The theme a feature speaks to (spend, frequency, recency, ...): a reason list names each theme once, so
    "spent little in 365 days" and "spent little in total" do not crowd out other reasons."""
    for theme, pat in _THEMES:
        if pat.search(feature):
            return theme
    return feature


def reason_texts(shap_row: pd.Series, x_row: pd.Series | dict, reference: Any = None, *,
                 n: int | None = None, categorical: Sequence[str] = (), min_points: float = MIN_POINTS) -> list[str]:
    """Plain-language reasons for one user, largest first: only the features that push the churn risk UP.

    ``shap_row``: effect per feature in percentage points of churn probability (:meth:`Explainer.effects_points`);
    ``x_row``: the user's value per feature (:meth:`Explainer.unit_values`); ``reference``: a :class:`Reference` or a
    mapping feature -> typical value among retained users. Each text ends with the size of the effect, e.g.
    ``"No purchase for 94 days (typical for retained users: 21) [+12 pts]"``.
    """
    ref = _as_reference(reference)
    cats = set(categorical)
    effects = pd.to_numeric(pd.Series(shap_row), errors="coerce").dropna()
    effects = effects[effects >= min_points].sort_values(ascending=False, kind="stable")
    themes = pd.Series([reason_theme(str(f)) for f in effects.index], index=effects.index)
    effects = effects[~themes.duplicated().to_numpy()]
    if n is not None:
        effects = effects.iloc[: max(int(n), 0)]
    values = x_row if isinstance(x_row, dict) else pd.Series(x_row).to_dict()
    out = []
    for feature, pts in effects.items():
        text = _describe_value(str(feature), values.get(feature), ref, feature in cats)
        out.append(f"{text} [{_points_text(float(pts))}]")
    return out


# --------------------------------------------------------------------------------------------------------------------
# encoded columns -> readable units
# --------------------------------------------------------------------------------------------------------------------


def _unit_of_encoded(names: Sequence[str], columns: Sequence[str], categorical: Sequence[str]) -> list[str]:
    """The original column behind each encoded column: itself, ``missingindicator_<col>`` -> col, ``<col>=<value>``
    -> col (longest matching categorical name, so ``a=b=c`` is read right)."""
    cols = set(columns)
    cats = sorted(categorical, key=len, reverse=True)
    out = []
    for name in names:
        name = str(name)
        if name in cols:
            out.append(name)
        elif name.startswith("missingindicator_") and name[len("missingindicator_"):] in cols:
            out.append(name[len("missingindicator_"):])
        else:
            match = next((c for c in cats if name.startswith(f"{c}=")), None)
            out.append(match if match is not None else name)
    return out


def _grouping(enc_units: list[str]) -> tuple[list[str], np.ndarray]:
    """(units in order of first appearance, 0/1 matrix encoded-column x unit that sums columns into units)."""
    units = list(dict.fromkeys(enc_units))
    index = {u: k for k, u in enumerate(units)}
    A = np.zeros((len(enc_units), len(units)))
    for j, u in enumerate(enc_units):
        A[j, index[u]] = 1.0
    return units, A


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _digest(X: pd.DataFrame, sequences: Any) -> str:
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(X, index=True).to_numpy().tobytes())
    h.update(",".join(map(str, X.columns)).encode())
    if sequences is not None:
        a = np.ascontiguousarray(np.asarray(sequences, dtype=np.float32))
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------------------------
# the explainer
# --------------------------------------------------------------------------------------------------------------------


def _family(model: Any, model_key: str | None) -> tuple[str, bool]:
    from .models import REGISTRY

    spec = REGISTRY.get(model_key) if isinstance(model_key, str) else None
    if spec is not None:
        return spec.family, spec.needs_sequences
    name = type(model).__name__
    if hasattr(model, "model_inputs"):
        return "deep", bool(getattr(model, "needs_sequences", False))
    if name in ("RecencyRule", "BGNBDModel"):
        return "baseline", False
    if name == "LogisticModel":
        return "linear", False
    if name in ("RandomForestModel", "GradientBoostingModel"):
        return "tree", False
    return "other", False


class Explainer:
    """SHAP for one fitted model of the product, computed lazily and cached.

    ``X_background``: users that stand for "the population" (a bounded sample of them is the SHAP background) and
    give the reference values of the reasons (medians among retained users when ``reference_y`` holds their labels,
    churned = 1); ``sequences_background``: their weekly activity, for sequence models. ``background_size`` bounds the
    background; ``permutations`` is the number of forward-and-back permutations per user for neural models.

    Attributes: ``family``, ``method`` (``"tree" | "linear" | "permutation" | "exact"``), ``space`` (``"log-odds"``
    or ``"probability"``: the space of :meth:`shap_values` and :attr:`expected_value`), ``calibrated`` (the model is a
    calibration wrapper and its base model is explained), ``units`` (readable units, the columns of
    :meth:`shap_values`), ``reference`` (:class:`Reference`).
    """

    def __init__(self, model: Any, model_key: str | None, X_background: pd.DataFrame, numeric: Sequence[str] | None,
                 categorical: Sequence[str] | None, *, sequences_background: Any = None, reference_y: Any = None,
                 reference_label: str | None = None, background_size: int | None = None, permutations: int = 2,
                 seed: int = 0, deep_method: str = "gradient", gradient_samples: int = GRADIENT_SAMPLES):
        if not isinstance(X_background, pd.DataFrame) or len(X_background) == 0:
            raise ModelError("Explanations need a non-empty table of background users.")
        self.model = model
        self.model_key = model_key
        self.calibrated = hasattr(model, "base_") and hasattr(model, "calibrator_")
        self.explained_model = model.base_ if self.calibrated else model
        self.family, self.needs_sequences = _family(self.explained_model, model_key)
        if self.family == "deep" and hasattr(self.explained_model, "needs_sequences"):
            self.needs_sequences = bool(self.explained_model.needs_sequences)
        self.numeric = list(getattr(self.explained_model, "numeric_", None) or numeric or [])
        self.categorical = list(getattr(self.explained_model, "categorical_", None) or categorical or [])
        for c in list(numeric or []) + list(categorical or []):  # keep columns the model does not report
            if c not in self.numeric and c not in self.categorical:
                (self.categorical if c in set(categorical or []) else self.numeric).append(c)
        self.seed = int(seed)
        self.permutations = max(1, int(permutations))
        if deep_method not in ("gradient", "permutation"):
            raise ModelError(f"deep_method must be 'gradient' or 'permutation', got {deep_method!r}.")
        self.deep_method = deep_method
        self.gradient_samples = max(1, int(gradient_samples))
        self._grad_fn = None
        if self.needs_sequences and sequences_background is None:
            raise ModelError(f"{type(self.explained_model).__name__} reads weekly activity: pass "
                             "sequences_background= for the background users.")
        seq_bg = None if sequences_background is None else np.asarray(sequences_background, dtype=np.float32)
        yv = None if reference_y is None else np.asarray(reference_y, dtype="float64").ravel()
        self._X_ref, self._seq_ref, self._y_ref = X_background, seq_bg, yv
        self._reference_label = reference_label
        if background_size is None:  # neural models pay per background user and unit: keep theirs small
            background_size = DEEP_BACKGROUND if self.family == "deep" else DEFAULT_BACKGROUND
        bg = sample_for_explanation(X_background, yv, n=max(1, int(background_size)), seed=self.seed)
        self._X_bg = bg.X.reset_index(drop=True)
        self._seq_bg = None if seq_bg is None else seq_bg[bg.positions]
        self.background_size = bg.size
        self._setup()
        self._shap = None  # the SHAP explainer, built on first use
        self._expected: float | None = None
        self._cache: dict[str, pd.DataFrame] = {}
        self._reference: Reference | None = None

    # -- set-up per family -------------------------------------------------------------------------------------------

    def _setup(self) -> None:
        m = self.explained_model
        if self.family in ("tree", "linear"):
            if not hasattr(m, "pipeline_"):
                raise ModelError(f"{type(m).__name__} is not fitted yet: train it before explaining it.")
            self._pre = m.pipeline_.named_steps["preprocess"]
            self._est = m.pipeline_.named_steps["model"]
            names = list(getattr(m, "feature_names_out_", None) or self._pre.get_feature_names_out())
            self.units, self._A = _grouping(_unit_of_encoded(names, self.numeric + self.categorical,
                                                             self.categorical))
            self.method = self.family
            if self.family == "linear":
                self.space = "log-odds"
            else:
                from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

                self.space = "probability" if isinstance(self._est, (RandomForestClassifier, ExtraTreesClassifier)) \
                    else "log-odds"
        elif self.family == "deep":
            if not hasattr(m, "model_"):
                raise ModelError(f"{type(m).__name__} is not fitted yet: train it before explaining it.")
            names = list(m.feature_names_out_)
            enc_units = _unit_of_encoded(names, self.numeric + self.categorical, self.categorical)
            static_units = list(dict.fromkeys(enc_units))
            self._static_cols = [np.array([j for j, u in enumerate(enc_units) if u == unit]) for unit in static_units]
            self._seq_units: list[tuple[str, int, np.ndarray, str]] = []
            if self.needs_sequences:
                self._seq_units = _sequence_units(int(m.weeks_), int(m.channels_))
            self.units = [u for u, _, _, _ in self._seq_units] + static_units
            self.method, self.space = self.deep_method, "probability"
        else:
            self.units = self._baseline_columns()
            self.method = "exact" if len(self.units) <= 6 else "permutation"
            self.space = "probability"

    def _baseline_columns(self) -> list[str]:
        m = self.explained_model
        name = type(m).__name__
        cols = set(self._X_ref.columns)
        if name == "RecencyRule":
            return ["recency_days"]
        if name == "BGNBDModel":
            middle = "first_to_last_days" if "first_to_last_days" in cols or "recency_days" not in cols \
                else "recency_days"
            return ["repeat_purchases", middle, "tenure_days"]
        return [c for c in self.numeric + self.categorical if c in cols]

    @property
    def method_note(self) -> str:
        """One line for the screen: how the values were computed and in which space."""
        how = {"tree": "TreeExplainer on the encoded features", "linear": "LinearExplainer on the encoded features",
               "permutation": f"permutation SHAP over readable features ({self.permutations} permutation(s), "
                              f"{self.background_size} background users)",
               "gradient": f"expected gradients over the model inputs ({self.gradient_samples} samples per user, "
                           f"{self.background_size} background users), summed into readable features and "
                           "adjusted so that each user's values add up exactly",
               "exact": f"exact SHAP over the model's inputs ({self.background_size} background users)"}[self.method]
        extra = "; the calibrated model is explained through its underlying model" if self.calibrated else ""
        return f"{how}, in {self.space}{extra}."

    # -- public results ----------------------------------------------------------------------------------------------

    @property
    def expected_value(self) -> float:
        """The average model output the SHAP values start from, in :attr:`space` (log-odds or churn probability)."""
        if self._expected is None:
            if self.method in ("tree", "linear"):
                self._ensure_shap()
            else:
                self._expected = float(np.mean(self._predict_units(self._bg_pool(), _bg_ids(self.background_size,
                                                                                             len(self.units)))))
        return float(self._expected)

    def shap_values(self, X: pd.DataFrame, sequences: Any = None) -> pd.DataFrame:
        """SHAP values, one column per readable unit, rows aligned with ``X`` (same index), in :attr:`space`."""
        if not isinstance(X, pd.DataFrame):
            raise ModelError(f"Explanations need the per-user feature table as a DataFrame, got {type(X).__name__}.")
        if self.needs_sequences:
            if sequences is None:
                raise ModelError(f"{type(self.explained_model).__name__} reads weekly activity: pass sequences= for "
                                 "the users to explain.")
            sequences = np.asarray(sequences, dtype=np.float32)
            if sequences.shape[0] != len(X):
                raise ModelError(f"sequences have {sequences.shape[0]} rows for {len(X)} users; they must match.")
        else:
            sequences = None
        key = _digest(X, sequences)
        if key not in self._cache:
            if len(X) == 0:
                values = np.zeros((0, len(self.units)))
            elif self.method in ("tree", "linear"):
                values = self._sklearn_values(X)
            elif self.method == "gradient":
                values = self._gradient_values(X, sequences)
            else:
                values = self._game_values(X, sequences)
            self._cache[key] = pd.DataFrame(values, index=X.index, columns=self.units)
        return self._cache[key].copy()

    def model_output(self, X: pd.DataFrame, sequences: Any = None) -> np.ndarray:
        """What the SHAP values add up to: the explained model's output in :attr:`space` (before calibration)."""
        p = np.asarray(self.explained_model.predict_proba(X, **({"sequences": sequences} if self.needs_sequences
                                                                  else {})), dtype="float64")
        if self.space == "log-odds":
            if self.family in ("tree", "linear") and hasattr(self._est, "decision_function"):
                return np.asarray(self._est.decision_function(self._pre.transform(X)), dtype="float64").ravel()
            return special.logit(np.clip(p, 1e-12, 1 - 1e-12))
        return p

    def unit_values(self, X: pd.DataFrame, sequences: Any = None) -> pd.DataFrame:
        """Each user's value of each readable unit (the original columns; activity sums for sequence units)."""
        out = pd.DataFrame(index=X.index)
        seq = None if sequences is None else np.asarray(sequences, dtype=np.float32)
        seq_units = {u: (c, w) for u, c, w, _ in getattr(self, "_seq_units", [])}
        for u in self.units:
            if u in seq_units:
                if seq is None:
                    out[u] = np.nan
                    continue
                c, weeks = seq_units[u]
                to_count = _channel_transform(self._channel_name(c))
                out[u] = to_count(seq[:, weeks, c].astype("float64")).sum(axis=1)
            elif u in X.columns:
                out[u] = X[u].to_numpy()
            else:
                out[u] = np.nan
        return out

    def effects_points(self, X: pd.DataFrame, sequences: Any = None) -> pd.DataFrame:
        """SHAP values in percentage points of churn probability (the probability the product shows, calibrated
        when the model is): a user's points add up to their churn probability minus the average one."""
        sv = self.shap_values(X, sequences)
        phi = sv.to_numpy(dtype="float64")
        total = phi.sum(axis=1)
        e = self.expected_value
        native = e + total
        to_p = (lambda z: special.expit(z)) if self.space == "log-odds" else (lambda z: np.clip(z, 0.0, 1.0))
        p, p0 = to_p(native), to_p(np.array([e]))[0]
        slope = p * (1 - p) if self.space == "log-odds" else np.ones_like(p)
        if self.calibrated:
            cal = self.model.calibrator_
            pc = np.asarray(cal.predict(np.clip(p, 0, 1)), dtype="float64")
            pc0 = float(np.asarray(cal.predict(np.array([p0])), dtype="float64")[0])
            delta_cal = pc - pc0
            # keep the uncalibrated share-out where calibration is flat (it would hide every reason)
            use_cal = np.abs(delta_cal) > 1e-9
            delta = np.where(use_cal, delta_cal, p - p0)
        else:
            delta = p - p0
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(np.abs(total) > 1e-9, delta / total, slope)
        return pd.DataFrame(phi * scale[:, None] * 100.0, index=sv.index, columns=sv.columns)

    @property
    def reference(self) -> Reference:
        """Typical values for the reasons, from the background users (computed once)."""
        if self._reference is None:
            values = self.unit_values(self._X_ref, self._seq_ref)
            self._reference = Reference.from_frame(values, self._y_ref, self.categorical, self._reference_label)
        return self._reference

    def reasons(self, X: pd.DataFrame, sequences: Any = None, n: int = 3) -> list[list[str]]:
        """Per user (in row order), up to ``n`` reasons that raise their churn risk, largest first."""
        pts = self.effects_points(X, sequences)
        values = self.unit_values(X, sequences)
        ref = self.reference
        out = []
        for i in range(len(X)):
            out.append(reason_texts(pts.iloc[i], values.iloc[i].to_dict(), ref, n=n, categorical=self.categorical))
        return out

    def importance(self, X: pd.DataFrame, sequences: Any = None) -> pd.DataFrame:
        """:func:`global_importance` of these users."""
        return global_importance(self.shap_values(X, sequences), self.unit_values(X, sequences))

    # -- scikit-learn families ---------------------------------------------------------------------------------------

    def _ensure_shap(self) -> None:
        if self._shap is not None:
            return
        import shap

        if self.method == "tree":
            self._shap = shap.TreeExplainer(self._est)
            ev = np.atleast_1d(np.asarray(self._shap.expected_value, dtype="float64"))
            self._expected = float(ev[self._class_index()] if ev.size > 1 else ev[0])
        else:
            bg = np.asarray(self._pre.transform(self._X_ref if len(self._X_ref) <= 5000
                                                else sample_for_explanation(self._X_ref, self._y_ref, 5000,
                                                                            self.seed).X), dtype="float64")
            # the whole (bounded) background, not SHAP's default 100-row subsample: stable expected values
            self._shap = shap.LinearExplainer(self._est, shap.maskers.Independent(bg, max_samples=len(bg)))
            self._expected = float(np.ravel(self._shap.expected_value)[0])

    def _class_index(self) -> int:
        classes = list(getattr(self._est, "classes_", [0, 1]))
        return classes.index(1) if 1 in classes else len(classes) - 1

    def _sklearn_values(self, X: pd.DataFrame) -> np.ndarray:
        self._ensure_shap()
        M = np.asarray(self._pre.transform(X), dtype="float64")
        if self.method == "tree":
            sv = _tree_values(self._shap, self._est, M, self.space == "probability")
        else:
            sv = self._shap.shap_values(M)
        sv = np.asarray(sv, dtype="float64")
        if sv.ndim == 3:  # (rows, columns, classes)
            sv = sv[:, :, self._class_index()]
        elif isinstance(sv, list):  # pragma: no cover - older SHAP layout
            sv = np.asarray(sv[self._class_index()])
        return sv @ self._A

    # -- permutation / exact families (the "game" over readable units) -----------------------------------------------

    def _channel_name(self, c: int) -> str:
        from .features import SEQUENCE_CHANNELS

        channels = int(getattr(self.explained_model, "channels_", 0) or 0)
        return SEQUENCE_CHANNELS[c] if channels == len(SEQUENCE_CHANNELS) else f"channel {c + 1}"

    def _pool(self, X: pd.DataFrame, sequences: Any) -> Any:
        """The users' model inputs, from which masked inputs are assembled by row id."""
        if self.family == "deep":
            return self.explained_model.model_inputs(X, sequences)
        cols = {}
        for u in self.units:
            s = X[u]
            cols[u] = s.to_numpy(dtype="float64", na_value=np.nan) if _is_numeric(s) else s.astype(object).to_numpy()
        return cols

    def _bg_pool(self) -> Any:
        return self._pool(self._X_bg, self._seq_bg)

    def _predict_units(self, pool: Any, Z: np.ndarray) -> np.ndarray:
        """Model output for rows whose unit ``u`` takes its value from pool row ``Z[:, u]``."""
        Z = np.asarray(Z).astype(np.int64)
        k = Z.shape[0]
        m = self.explained_model
        if self.family == "deep":
            keras = _keras()
            if self.needs_sequences:
                seq_pool, static_pool = pool
            else:
                seq_pool, (static_pool,) = None, pool
            static = np.empty((k, static_pool.shape[1]), dtype=np.float32)
            offset = len(self._seq_units)
            for j, cols in enumerate(self._static_cols):
                static[:, cols] = static_pool[Z[:, offset + j][:, None], cols[None, :]]
            inputs = [static]
            if seq_pool is not None:
                seq = np.empty((k,) + seq_pool.shape[1:], dtype=np.float32)
                for u, (_, c, weeks, _) in enumerate(self._seq_units):
                    seq[:, weeks, c] = seq_pool[Z[:, u][:, None], weeks[None, :], c]
                inputs = [seq, static]
            out = np.empty(k, dtype="float64")
            for start in range(0, k, KERAS_BATCH):
                chunk = [a[start:start + KERAS_BATCH] for a in inputs]
                x = chunk[0] if len(chunk) == 1 else chunk
                # one compiled forward pass per batch (no model.predict: no progress bar, no per-call set-up);
                # several times faster than an eager call for recurrent layers
                y = m.model_.predict_on_batch(x)
                y = np.asarray(keras.ops.convert_to_numpy(y), dtype="float64")
                out[start:start + KERAS_BATCH] = y.reshape(len(chunk[0]), -1)[:, -1]  # trailing class dimension
            return out
        frame = pd.DataFrame({u: pool[u][Z[:, j]] for j, u in enumerate(self.units)})
        if type(m).__name__ == "BGNBDModel" and "tenure_days" in frame:
            # a mix of two users can be impossible (silent longer than a customer); clip to the customer's age
            for c in ("recency_days", "first_to_last_days"):
                if c in frame:
                    frame[c] = np.minimum(frame[c].to_numpy(dtype="float64"), frame["tenure_days"].to_numpy())
        return np.asarray(m.predict_proba(frame), dtype="float64").ravel()

    def _gradient_values(self, X: pd.DataFrame, sequences: Any) -> np.ndarray:
        """Expected gradients (the method of SHAP's GradientExplainer): per user and model input, the average of
        ``(x - b) * gradient`` at random points ``b + a (x - b)`` between the user ``x`` and random background users
        ``b``; inputs are then summed into readable units. The sum matches the output minus the expected value only on
        average, so each user's residual is shared out in proportion to the size of the values, and the values add up
        exactly like every other family's. One batched forward and backward pass per block of users: several times
        faster than permutation SHAP on a CPU."""
        m = self.explained_model
        n, K = len(X), self.gradient_samples
        inputs = [np.asarray(a, dtype=np.float32) for a in m.model_inputs(X, sequences)]
        bg = [np.asarray(a, dtype=np.float32) for a in self._bg_pool()]
        B = bg[0].shape[0]
        grad = self._gradients()
        rng = np.random.default_rng(self.seed)
        phi = [np.zeros(a.shape, dtype="float64") for a in inputs]
        per_block = max(1, KERAS_BATCH // K)
        for start in range(0, n, per_block):
            users = np.arange(start, min(n, start + per_block))
            u = np.repeat(users, K)
            j = rng.integers(0, B, len(u))
            alpha = rng.random(len(u)).astype(np.float32)
            diffs = [x[u] - b[j] for x, b in zip(inputs, bg)]
            points = [b[j] + alpha.reshape((-1,) + (1,) * (d.ndim - 1)) * d for b, d in zip(bg, diffs)]
            for k, (g, d) in enumerate(zip(grad(points), diffs)):
                phi[k][users] = (g.astype("float64") * d).reshape((len(users), K) + d.shape[1:]).mean(axis=1)
        values = np.zeros((n, len(self.units)))
        static = phi[-1]
        for i, (_, c, weeks, _) in enumerate(self._seq_units):
            values[:, i] = phi[0][:, weeks, c].sum(axis=1)
        offset = len(self._seq_units)
        for i, cols in enumerate(self._static_cols):
            values[:, offset + i] = static[:, cols].sum(axis=1)
        kw = {"sequences": sequences} if self.needs_sequences else {}
        out = np.asarray(m.predict_proba(X, **kw), dtype="float64")
        residual = out - self.expected_value - values.sum(axis=1)
        size = np.abs(values)
        total = size.sum(axis=1, keepdims=True)
        share = np.where(total > 0, size / np.where(total > 0, total, 1.0), 1.0 / max(len(self.units), 1))
        return values + residual[:, None] * share

    def _gradients(self) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
        """Gradients of the churn probability with respect to each model input, one compiled graph per explainer."""
        import tensorflow as tf

        if self._grad_fn is None:
            model = self.explained_model.model_

            @tf.function(reduce_retracing=True)
            def f(*xs):
                with tf.GradientTape() as tape:
                    tape.watch(xs)
                    y = model(list(xs) if len(xs) > 1 else xs[0], training=False)
                    y = tf.reshape(y, (tf.shape(y)[0], -1))[:, -1]  # a trailing class dimension
                return tape.gradient(y, xs)

            self._grad_fn = f
        fn = self._grad_fn
        return lambda points: [np.asarray(g) for g in fn(*[tf.convert_to_tensor(p) for p in points])]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_grad_fn"] = None  # a compiled TensorFlow graph is rebuilt, not pickled
        return state

    def _game_values(self, X: pd.DataFrame, sequences: Any) -> np.ndarray:
        import shap

        n, U, B = len(X), len(self.units), self.background_size
        X_all = pd.concat([X.reset_index(drop=True), self._X_bg], ignore_index=True)
        seq_all = None
        if self.needs_sequences:
            seq_all = np.concatenate([np.asarray(sequences, dtype=np.float32), self._seq_bg], axis=0)
        pool = self._pool(X_all, seq_all)
        bg_ids = _bg_ids(B, U) + n
        rows = np.repeat(np.arange(n, dtype=float)[:, None], U, axis=1)
        masker = shap.maskers.Independent(bg_ids, max_samples=max(B, 1))

        def f(Z: np.ndarray) -> np.ndarray:
            return self._predict_units(pool, Z)

        if self.method == "exact":
            values, base = _exact_shapley(f, n, U, B)
            if self._expected is None:
                self._expected = base
            return values
        explainer = shap.PermutationExplainer(f, masker, seed=self.seed)
        result = explainer(rows, max_evals=self.permutations * (2 * U + 1), silent=True)
        values = np.asarray(result.values, dtype="float64").reshape(n, U)
        base = np.asarray(result.base_values, dtype="float64").reshape(-1)
        if self._expected is None and base.size:
            self._expected = float(base[0])
        return values


def _exact_shapley(f: Callable[[np.ndarray], np.ndarray], n: int, U: int, B: int,
                   max_rows: int = 400_000) -> tuple[np.ndarray, float]:
    """Exact (interventional) Shapley values of ``n`` users over ``U`` units, all users at once: every coalition is
    scored on every (user, background user) pair, pool ids ``0..n-1`` for users and ``n..n+B-1`` for background.
    Same definition as ``shap.ExactExplainer`` with an independent masker, without its per-user overhead (the
    baselines have 1-3 inputs, so 2-8 coalitions)."""
    masks = np.array([[(m >> u) & 1 for u in range(U)] for m in range(2 ** U)], dtype=bool)
    v = np.empty((2 ** U, n))
    step = max(1, max_rows // max(B, 1))
    for start in range(0, n, step):
        users = np.arange(start, min(n, start + step))
        user_ids = np.repeat(users, B).astype(float)  # (users x B)
        bg = np.tile(np.arange(B) + n, len(users)).astype(float)
        for k, mask in enumerate(masks):
            Z = np.where(mask[None, :], user_ids[:, None], bg[:, None])
            v[k, users] = np.asarray(f(Z), dtype="float64").reshape(len(users), B).mean(axis=1)
    size = masks.sum(axis=1)
    weights = np.array([math.factorial(s) * math.factorial(U - s - 1) / math.factorial(U) if s < U else 0.0
                        for s in size])
    phi = np.zeros((n, U))
    for k, mask in enumerate(masks):
        for u in range(U):
            if not mask[u]:
                with_u = k | (1 << u)
                phi[:, u] += weights[k] * (v[with_u] - v[k])
    return phi, float(v[0].mean())


def _tree_chunk(est: Any, M: np.ndarray) -> np.ndarray:
    import shap

    return np.asarray(shap.TreeExplainer(est).shap_values(M, check_additivity=False), dtype="float64")


def _tree_values(explainer: Any, est: Any, M: np.ndarray, forest: bool) -> np.ndarray:
    """TreeExplainer values; a random forest's (deep trees, about 0.1 s per user for 300 trees on one core) are
    computed in row chunks on all cores when there are many users."""
    import os

    cores = os.cpu_count() or 1
    if not forest or cores < 2 or len(M) < PARALLEL_TREE_ROWS:
        return np.asarray(explainer.shap_values(M, check_additivity=False), dtype="float64")
    from joblib import Parallel, delayed

    chunks = np.array_split(M, min(cores, max(2, len(M) // 100)))
    parts = Parallel(n_jobs=min(cores, len(chunks)))(delayed(_tree_chunk)(est, c) for c in chunks)
    return np.concatenate(parts, axis=0)


def _bg_ids(B: int, U: int) -> np.ndarray:
    return np.repeat(np.arange(B, dtype=float)[:, None], U, axis=1)


def _keras() -> Any:
    import keras

    return keras


def _channel_transform(channel: str) -> Callable[[np.ndarray], np.ndarray]:
    return _CHANNELS.get(channel, (channel, lambda a: a))[1]


def _sequence_units(weeks: int, channels: int) -> list[tuple[str, int, np.ndarray, str]]:
    """(unit name, channel index, week indices, window) for each channel: the last 4 weeks and the older ones."""
    from .features import SEQUENCE_CHANNELS

    names = SEQUENCE_CHANNELS if channels == len(SEQUENCE_CHANNELS) else [f"channel {c + 1}" for c in range(channels)]
    recent = min(RECENT_WEEKS, weeks)
    out = []
    for c, ch in enumerate(names):
        noun = _CHANNELS.get(ch, (ch, None))[0]
        word = "week" if recent == 1 else "weeks"
        out.append((f"{noun} in the last {recent} {word}", c, np.arange(weeks - recent, weeks), "recent"))
        if weeks > recent:
            out.append((f"{noun} {recent + 1}-{weeks} weeks ago", c, np.arange(0, weeks - recent), "older"))
    return out


# --------------------------------------------------------------------------------------------------------------------
# aggregates for charts
# --------------------------------------------------------------------------------------------------------------------


def _numeric_values(s: pd.Series) -> np.ndarray | None:
    if s is None or not _is_numeric(s):
        return None
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _aligned(X: pd.DataFrame | None, shap_df: pd.DataFrame) -> pd.DataFrame | None:
    if X is None:
        return None
    if len(X) != len(shap_df):
        raise ModelError(f"{len(X)} feature rows for {len(shap_df)} rows of SHAP values; they must match.")
    return X.set_axis(shap_df.index, axis=0)


def global_importance(shap_df: pd.DataFrame, X: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per feature, most important first: ``feature``, ``label`` (as charts show it), ``mean_abs_shap``,
    ``mean_shap`` and ``direction``: the rank correlation between the feature's value and its SHAP value (+1: higher
    values raise churn risk; -1: higher values lower it; empty for categories or when ``X`` is not given)."""
    X = _aligned(X, shap_df)
    rows = []
    for c in shap_df.columns:
        s = shap_df[c].to_numpy(dtype="float64")
        direction = float("nan")
        v = _numeric_values(X[c]) if X is not None and c in X.columns else None
        if v is not None:
            ok = np.isfinite(v) & np.isfinite(s)
            if ok.sum() > 2 and np.ptp(v[ok]) > 0 and np.ptp(s[ok]) > 0:
                rv = pd.Series(v[ok]).rank().to_numpy()
                rs = pd.Series(s[ok]).rank().to_numpy()
                direction = float(np.corrcoef(rv, rs)[0, 1])
        rows.append({"feature": c, "label": feature_label(c), "mean_abs_shap": float(np.nanmean(np.abs(s)))
                     if s.size else 0.0, "mean_shap": float(np.nanmean(s)) if s.size else 0.0,
                     "direction": direction})
    out = pd.DataFrame(rows, columns=["feature", "label", "mean_abs_shap", "mean_shap", "direction"])
    return out.sort_values("mean_abs_shap", ascending=False, kind="stable").reset_index(drop=True)


def beeswarm_data(shap_df: pd.DataFrame, X: pd.DataFrame, max_features: int = 15) -> pd.DataFrame:
    """Long table for a beeswarm chart: ``row`` (index of the user), ``feature``, ``label``, ``shap``, ``value``
    (the feature value scaled to 0..1 by rank within the feature; empty for categories and missing values) and
    ``value_text``; the ``max_features`` most important features, most important first."""
    X = _aligned(X, shap_df)
    top = global_importance(shap_df)["feature"].head(int(max_features)).tolist()
    parts = []
    for c in top:
        s = shap_df[c]
        raw = X[c] if c in X.columns else pd.Series(np.nan, index=shap_df.index)
        v = _numeric_values(raw)
        if v is not None:
            ranks = pd.Series(v).rank(pct=True, method="average").to_numpy()
            lo, hi = np.nanmin(ranks) if np.isfinite(ranks).any() else 0, np.nanmax(ranks) if np.isfinite(ranks).any() else 1
            scaled = (ranks - lo) / (hi - lo) if hi > lo else np.where(np.isfinite(ranks), 0.5, np.nan)
            text = [(_fmt(x) if np.isfinite(x) else "unknown") for x in v]
        else:
            scaled = np.full(len(s), np.nan)
            text = [("not recorded" if t == MISSING_CATEGORY else t) for t in _category_text(raw)]
        parts.append(pd.DataFrame({"row": shap_df.index, "feature": c, "label": feature_label(c),
                                   "shap": s.to_numpy(dtype="float64"), "value": scaled, "value_text": text}))
    if not parts:
        return pd.DataFrame(columns=["row", "feature", "label", "shap", "value", "value_text"])
    return pd.concat(parts, ignore_index=True)


def dependence(shap_df: pd.DataFrame, X: pd.DataFrame, feature: str, color: str | None = None) -> pd.DataFrame:
    """Data for a dependence plot of one feature: ``value`` (the user's value, text for a category), ``shap``, and
    ``color`` (another feature's value) when asked; index aligned with ``shap_df``."""
    if feature not in shap_df.columns:
        raise ModelError(f"No SHAP values for {feature!r}; explained features are: {', '.join(shap_df.columns[:20])}.")
    X = _aligned(X, shap_df)
    raw = X[feature] if feature in X.columns else pd.Series(np.nan, index=shap_df.index)
    v = _numeric_values(raw)
    value = v if v is not None else _category_text(raw)
    out = pd.DataFrame({"value": value, "shap": shap_df[feature].to_numpy(dtype="float64")}, index=shap_df.index)
    if color is not None:
        if color not in X.columns:
            raise ModelError(f"No column {color!r} to colour the dependence plot by.")
        cv = _numeric_values(X[color])
        out["color"] = cv if cv is not None else _category_text(X[color])
    return out


def segment_importance(shap_df: pd.DataFrame, segments: pd.Series) -> pd.DataFrame:
    """Mean |SHAP| per feature per segment against the whole population: ``segment``, ``feature``, ``label``,
    ``users``, ``mean_abs_shap``, ``population_mean_abs_shap``, ``difference`` (segment minus population). Users with
    no segment are left out of the segments (they count in the population)."""
    seg = pd.Series(segments)
    if len(seg) != len(shap_df):
        raise ModelError(f"{len(seg)} segment labels for {len(shap_df)} users; they must match row for row.")
    seg = pd.Series(seg.to_numpy(), index=shap_df.index)
    absv = shap_df.abs()
    pop = absv.mean()
    rows = []
    for name, idx in seg.dropna().groupby(seg.dropna().to_numpy(), sort=True).groups.items():
        part = absv.loc[idx]
        means = part.mean()
        for c in shap_df.columns:
            rows.append({"segment": name, "feature": c, "label": feature_label(c), "users": len(part),
                         "mean_abs_shap": float(means[c]), "population_mean_abs_shap": float(pop[c]),
                         "difference": float(means[c] - pop[c])})
    cols = ["segment", "feature", "label", "users", "mean_abs_shap", "population_mean_abs_shap", "difference"]
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["segment", "mean_abs_shap"], ascending=[True, False], kind="stable").reset_index(drop=True)


class EnsembleExplainer(Explainer):
    """An averaging ensemble, explained as the average of its members' explanations.

    Each member's effects (in points of churn probability) add up to its probability minus its average one, so their
    mean adds up to the ensemble's probability minus its average one: additivity holds exactly in probability space.
    """

    def __init__(self, model: Any, model_key: str | None, X_background: pd.DataFrame, numeric: Sequence[str] | None,
                 categorical: Sequence[str] | None, **kw: Any):
        self.model = self.explained_model = model
        self.model_key = model_key
        self.calibrated = False
        self.family, self.needs_sequences = "ensemble", False
        self.members = {k: Explainer(m, k, X_background, numeric, categorical, **kw)
                        for k, m in model.members_.items()}
        first = next(iter(self.members.values()))
        self.numeric, self.categorical = first.numeric, first.categorical
        self.units = list(dict.fromkeys(u for e in self.members.values() for u in e.units))
        self.method, self.space = "ensemble", "probability"
        self.background_size = first.background_size
        self._X_ref, self._seq_ref, self._y_ref = X_background, None, kw.get("reference_y")
        self._reference_label = kw.get("reference_label")
        self._reference = None
        self._cache = {}

    @property
    def method_note(self) -> str:
        parts = ", ".join(f"{k}: {e.method_note.rstrip('.')}" for k, e in self.members.items())
        return f"average of the members' explanations in churn probability ({parts})."

    @property
    def expected_value(self) -> float:
        vals = []
        for e in self.members.values():
            ev = e.expected_value
            vals.append(float(special.expit(ev)) if e.space == "log-odds" else ev)
        return float(np.mean(vals))

    def effects_points(self, X: pd.DataFrame, sequences: Any = None) -> pd.DataFrame:
        total = pd.DataFrame(0.0, index=X.index, columns=self.units)
        for e in self.members.values():
            total = total.add(e.effects_points(X).reindex(columns=self.units, fill_value=0.0), fill_value=0.0)
        return total / len(self.members)

    def shap_values(self, X: pd.DataFrame, sequences: Any = None) -> pd.DataFrame:
        return self.effects_points(X) / 100.0

    def model_output(self, X: pd.DataFrame, sequences: Any = None) -> np.ndarray:
        return np.asarray(self.model.predict_proba(X), dtype="float64")


def make_explainer(model: Any, model_key: str | None, X_background: pd.DataFrame, numeric: Sequence[str] | None,
                   categorical: Sequence[str] | None, **kw: Any) -> Explainer:
    """The right explainer for any model of the product (an ensemble is explained through its members)."""
    base = model.base_ if hasattr(model, "base_") and hasattr(model, "calibrator_") else model
    if hasattr(base, "members_") and base is model:
        return EnsembleExplainer(model, model_key, X_background, numeric, categorical, **kw)
    return Explainer(model, model_key, X_background, numeric, categorical, **kw)


# --------------------------------------------------------------------------------------------------------------------
# reasons for scored users
# --------------------------------------------------------------------------------------------------------------------


def explainer_for_run(run: Any, frame: pd.DataFrame, sequences: Any = None, *, model: str | None = None,
                      background_size: int | None = None, seed: int = 0) -> Explainer:
    """An :class:`Explainer` for a saved run's model (the best one unless ``model`` is named): the SHAP background
    is a small sample of ``frame``; reference values come from the run's validation rows when they hold the
    features and labels, else from ``frame`` itself, where users the model scores below the run's threshold stand
    in for retained ones (the reasons then say "typical for low-risk users")."""
    key = model or run.best
    m = run.model(key)
    numeric, categorical = list(run.info.get("numeric", [])), list(run.info.get("categorical", []))
    ref_X, ref_y, ref_seq, label = None, None, None, None
    from .models import REGISTRY

    needs_seq = REGISTRY[key].needs_sequences if key in REGISTRY else False
    if not needs_seq:  # validation rows carry no weekly activity, so sequence models use the scored users
        try:
            val = run.validation()
        except Exception:  # an older run without validation rows
            val = None
        if val is not None and "churned" in val.columns and all(c in val.columns for c in numeric + categorical):
            ok = val["churned"].notna().to_numpy()
            if ok.sum() >= 5:
                ref_X, ref_y = val.loc[ok].reset_index(drop=True), val.loc[ok, "churned"].to_numpy()
    if ref_X is None:
        ref_X, ref_seq = frame.reset_index(drop=True), sequences
        X_model = frame[[c for c in numeric + categorical if c in frame.columns]]
        p = np.asarray(m.predict_proba(X_model, **({"sequences": sequences} if needs_seq else {})), dtype="float64")
        threshold = float(getattr(run, "threshold", 0.5))
        if (p < threshold).sum() >= 5:
            ref_y, label = (p >= threshold).astype(float), "low-risk users"
    bg = sample_for_explanation(frame, None, n=max(1, background_size or DEFAULT_BACKGROUND), seed=seed)
    ex = make_explainer(m, key, bg.X.reset_index(drop=True), numeric, categorical,
                   sequences_background=None if sequences is None else np.asarray(sequences)[bg.positions],
                   background_size=background_size, seed=seed)
    # the reference set may differ from the background sample
    values = ex.unit_values(ref_X, ref_seq)
    ex._reference = Reference.from_frame(values, ref_y, ex.categorical, label)
    return ex


def top_reasons(run_or_explainer: Any, frame: pd.DataFrame, n: int = 3, sequences: Any = None, *,
                model: str | None = None) -> list[list[str]]:
    """Reasons for each row of ``frame``, as ``n`` lists (reason 1 for every row, then reason 2, ...), each aligned
    with the rows; ``""`` where a user has fewer risk-raising reasons than ``n``. ``run_or_explainer`` is a saved
    run (its model ``model`` is explained, the best one by default) or an :class:`Explainer`."""
    n = int(n)
    if n <= 0:
        return []
    if len(frame) == 0:
        return [[] for _ in range(n)]
    ex = run_or_explainer if isinstance(run_or_explainer, Explainer) else explainer_for_run(run_or_explainer, frame,
                                                                                          sequences, model=model)
    per_user = ex.reasons(frame, sequences if ex.needs_sequences else None, n=n)
    return [[r[i] if i < len(r) else "" for r in per_user] for i in range(n)]
