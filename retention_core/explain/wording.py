"""Reasons in plain words: feature labels for charts, "typical for retained users" references, and each user's
reasons ("No purchase for 94 days (typical for retained users: 21) [+12 pts]").

Known product features (recency, trailing windows, trends, cadence, activity weeks of the sequence models) have their
own sentences; user-table columns keep their names ("MonthlyCharges is 95.3"); a category says when it churns more
than average. A reason list names each theme (spend, frequency, recency, ...) once.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd

from ..errors import ModelError
from ..models.base import MISSING_CATEGORY, category_text
from .units import is_numeric

MIN_POINTS = 0.05  # effects below this many percentage points are noise, not reasons


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
            if c in cats or not is_numeric(values[c]):
                if yv is not None and np.isfinite(yv).any():
                    lab_ok = np.isfinite(yv)
                    text = pd.Series(category_text(values[c]), index=values.index)[lab_ok]
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


def format_number(v: float) -> str:
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


def _typ(ref: float | None, lab: str, fmt: Callable[[float], str] = format_number) -> str:
    return "" if ref is None else f" (typical for {lab}: {fmt(ref)})"


def _plural(v: float, one: str, many: str) -> str:
    return one if abs(v - 1) < 1e-9 else many


def _count(v: float, ref: float | None, lab: str, one: str, many: str, where: str) -> str:
    """"No orders in the last 30 days", "Only 1 order ...", "5 orders ..." with the typical value."""
    if abs(v) < 1e-9:
        text = f"No {many} {where}"
    elif ref is not None and v < ref:
        text = f"Only {format_number(v)} {_plural(v, one, many)} {where}"
    else:
        text = f"{format_number(v)} {_plural(v, one, many)} {where}"
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
        return f"{noun} less in the last 90 days than the 90 before ({format_number(-v)} fewer {unit_many})" \
            if unit_many else f"{noun} less in the last 90 days than the 90 before"
    if v == 0:
        return f"{noun} as much in the last 90 days as in the 90 before"
    return f"{noun} more in the last 90 days than the 90 before"


# exact names -> (label for charts, text(v, ref, lab) for reasons[, AGES]). AGES marks a feature that grows with the
# customer's age: a lifetime span, total, distinct count or running extreme over every event up to the as-of date,
# whose value can only move one way as a customer's history gets longer (the lowest rating given only falls), so a
# longer log shifts its distribution even when nothing about the customers changed (see :func:`grows_with_age`).
# Unflagged: trailing windows and their trends (fixed length), recency (bounded by the lookback: the population bought
# within it), ratios and means (average order value, return rate, usual gap) and attributes.
_T = Callable[[float, float | None, str], str]
AGES = True


class _Wording(NamedTuple):
    label: str
    text: _T | None
    grows_with_age: bool = False


_KNOWN: dict[str, tuple] = {
    "recency_days": ("Days since last purchase",
                     lambda v, r, l: f"No purchase for {_whole(v)} days" + _typ(r, l, _whole)),
    "days_since_last_event": ("Days since last activity",
                              lambda v, r, l: f"No activity for {_whole(v)} days" + _typ(r, l, _whole)),
    "tenure_days": ("Days since first purchase",
                    lambda v, r, l: f"First purchase {_whole(v)} days ago" + _typ(r, l, _whole), AGES),
    "first_to_last_days": ("Days from first to last purchase",
                           lambda v, r, l: f"{_whole(v)} days between first and last purchase"
                           + _typ(r, l, _whole), AGES),
    "repeat_purchases": ("Repeat purchase days",
                         lambda v, r, l: ("No repeat purchase yet" + _typ(r, l)) if v == 0
                         else _count(v, r, l, "repeat purchase day", "repeat purchase days", "so far"), AGES),
    "orders_total": ("Orders in total", lambda v, r, l: _count(v, r, l, "order", "orders", "in total"), AGES),
    "active_days_total": ("Active days in total",
                          lambda v, r, l: _count(v, r, l, "active day", "active days", "in total"), AGES),
    "revenue_total": ("Spend in total", lambda v, r, l: _money(v, r, l, "in total"), AGES),
    "units_total": ("Items bought in total",
                    lambda v, r, l: _count(v, r, l, "item", "items", "bought in total"), AGES),
    "lines_total": ("Order lines in total",
                    lambda v, r, l: _count(v, r, l, "order line", "order lines", "in total"), AGES),
    "returns_total": ("Returned items", lambda v, r, l: f"{format_number(v)} {_plural(v, 'item', 'items')} returned"
                      + _typ(r, l), AGES),
    "cancels_total": ("Cancelled items", lambda v, r, l: f"{format_number(v)} {_plural(v, 'item', 'items')} cancelled"
                      + _typ(r, l), AGES),
    "events_total": ("Site events in total",
                     lambda v, r, l: _count(v, r, l, "site event", "site events", "in total"), AGES),
    "browsing_total": ("Browsing events in total",
                       lambda v, r, l: _count(v, r, l, "browsing event", "browsing events", "in total"), AGES),
    "ratings_count": ("Ratings given", lambda v, r, l: _count(v, r, l, "rating", "ratings", "given"), AGES),
    "rating_mean": ("Average rating", lambda v, r, l: f"Average rating {format_number(v)}" + _typ(r, l)),
    "rating_min": ("Lowest rating", lambda v, r, l: f"Lowest rating given: {format_number(v)}" + _typ(r, l), AGES),
    "avg_order_value": ("Average order value", lambda v, r, l: f"Average order value {_whole(v)}"
                        + _typ(r, l, _whole)),
    "lines_per_order": ("Items per order", lambda v, r, l: f"{format_number(v)} items per order" + _typ(r, l)),
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
                     lambda v, r, l: f"Longest gap between purchases: {_whole(v)} days" + _typ(r, l, _whole), AGES),
    "recency_vs_usual_gap": ("Silence vs usual gap",
                             lambda v, r, l: f"Silent for {format_number(v)}x their usual time between purchases"
                             + _typ(r, l, lambda x: f"{format_number(x)}x")),
    "n_products": ("Different products bought",
                   lambda v, r, l: _count(v, r, l, "different product", "different products", "bought"), AGES),
    "n_categories": ("Categories bought",
                     lambda v, r, l: _count(v, r, l, "category", "categories", "bought from"), AGES),
}

_MISSING_TEXT = {
    # the pre-trained encoder's embedding, one unit with no single value (explain.fused.PATTERN_UNIT)
    "recent behaviour pattern": "The pattern of the latest events (products, amounts, timing) looks like churners'",
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

# name patterns -> (label, text[, AGES]): trailing windows per event type, lifetime totals per event type (AGES) and
# the weekly activity units of the sequence models
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
                                      f"'{_slug_words(m.group(1))}' events", "in total"), AGES),
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


def _wording(feature: str) -> _Wording:
    """A feature's label, reason text and age flag: a known feature's, a windowed one's, else its name in words."""
    if feature in _KNOWN:
        return _Wording(*_KNOWN[feature])
    for pattern, label, text, *ages in _WINDOW:
        m = pattern.match(feature)
        if m:
            return _Wording(label(m), text(m), *ages)
    return _Wording(_pretty(feature), None)


def _lookup(feature: str) -> tuple[str, _T | None]:
    w = _wording(feature)
    return w.label, w.text


def grows_with_age(feature: str) -> bool:
    """Whether a product feature grows with the customer's age (``tenure_days``, lifetime totals such as
    ``orders_total``, ``gap_max_days``; see the flags beside the labels above): its distribution shifts as the log
    gets longer even when the customers behave as before, so monitoring reports its drift as expected ageing.
    Columns of a user table and unknown names: False."""
    return _wording(str(feature)).grows_with_age


def feature_label(feature: str) -> str:
    """The name of a feature as charts show it ("Days since last purchase" for ``recency_days``); user-table columns
    keep their own names."""
    return _lookup(str(feature))[0]


def _describe_value(feature: str, value: Any, ref: Reference, categorical: bool) -> str:
    """One plain sentence about this user's value of one feature."""
    label, template = _lookup(feature)
    if categorical or (value is not None and not isinstance(value, (int, float, np.integer, np.floating))
                       and _number(value) is None and not pd.isna(value)):
        text = category_text(pd.Series([value]))[0]
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
    return f"{label} is {format_number(v)}" + _typ(r, ref.label)


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

