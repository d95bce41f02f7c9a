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
from ..feature_registry import FEATURES, Reason
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


def _trend(v: float, noun: str, unit_one: str, unit_many: str) -> str:
    if v < 0:
        return f"{noun} less in the last 90 days than the 90 before ({format_number(-v)} fewer {unit_many})" \
            if unit_many else f"{noun} less in the last 90 days than the 90 before"
    if v == 0:
        return f"{noun} as much in the last 90 days as in the 90 before"
    return f"{noun} more in the last 90 days than the 90 before"


# Product features take their label, unit, reason wording, theme and age flag from their one definition in the
# registry (:mod:`retention_core.feature_registry`); this module renders them. The weekly activity units of the
# sequence models (not columns of the dataset) are worded here.
_T = Callable[[float, float | None, str], str]

#: How a value and its typical value are written, by the feature's unit.
_UNIT_FORMAT: dict[str, Callable[[float], str]] = {
    "days": _whole, "money": _whole, "share": _pct, "times": lambda x: f"{format_number(x)}x"}


class _Wording(NamedTuple):
    label: str
    text: _T | None
    grows_with_age: bool = False


def _reason_text(reason: Reason, unit: str) -> _T:
    """The reason sentence of a registry feature (see :class:`~retention_core.feature_registry.Reason`)."""
    fmt = _UNIT_FORMAT.get(unit, format_number)
    if reason.kind == "count":
        return lambda v, r, l: ((reason.zero + _typ(r, l)) if reason.zero and v == 0
                                else _count(v, r, l, reason.one, reason.many, reason.where))
    if reason.kind == "counted":
        return lambda v, r, l: f"{format_number(v)} {_plural(v, reason.one, reason.many)} {reason.where}" + _typ(r, l)
    if reason.kind == "money":
        return lambda v, r, l: _money(v, r, l, reason.where)
    if reason.kind == "sentence":
        return lambda v, r, l: reason.text.replace("{v}", fmt(v)) + _typ(r, l, fmt)
    if reason.kind == "trend":
        return lambda v, r, l: _trend(v, reason.text, reason.one, reason.many)
    if reason.kind == "sign":
        return lambda v, r, l: reason.signs[0] if v < 0 else reason.signs[1] if v == 0 else reason.signs[2]
    raise ValueError(f"unknown reason kind {reason.kind!r}")


# the weekly activity units of the sequence models: name pattern -> (label, text)
_SEQUENCE_UNITS = [
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
#: the theme of a sequence unit (its channel's, where a product feature speaks of the same)
_SEQUENCE_THEMES = re.compile(r"^(browsing|returns) ")


#: units explained as a whole, with no single value: the pre-trained encoder's embedding (explain.fused.PATTERN_UNIT)
_UNIT_TEXT = {"recent behaviour pattern": "The pattern of the latest events (products, amounts, timing) looks like "
                                          "churners'"}


def _pretty(name: str) -> str:
    """``payment_method`` -> ``Payment method``; names with capitals (``MonthlyCharges``) are kept as given."""
    s = str(name)
    if s == s.lower():
        s = s.replace("_", " ").strip()
        return s[:1].upper() + s[1:]
    return s


def _wording(feature: str) -> _Wording:
    """A feature's label, reason text and age flag: a registry feature's, a sequence unit's, else its name in
    words."""
    d = FEATURES.describe(feature)
    if d is not None:
        return _Wording(d.label, None if d.reason is None else _reason_text(d.reason, d.unit), d.ages)
    for pattern, label, text in _SEQUENCE_UNITS:
        m = pattern.match(feature)
        if m:
            return _Wording(label(m), text(m))
    return _Wording(_pretty(feature), None)


def _lookup(feature: str) -> tuple[str, _T | None]:
    w = _wording(feature)
    return w.label, w.text


def grows_with_age(feature: str) -> bool:
    """Whether a product feature grows with the customer's age (``tenure_days``, lifetime totals such as
    ``orders_total``, ``gap_max_days``): its distribution shifts as the log
    gets longer even when the customers behave as before, so monitoring reports its drift as expected ageing (the
    ``ages`` flag of its definition in the registry). Columns of a user table and unknown names: False."""
    return _wording(str(feature)).grows_with_age


def feature_unit(feature: str) -> str | None:
    """What a product feature's value counts (days, orders, money, share, ...), from its definition; None for other
    columns."""
    d = FEATURES.describe(str(feature))
    return None if d is None else d.unit


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
        d = FEATURES.describe(feature)
        return d.missing if d is not None and d.missing else _UNIT_TEXT.get(feature, f"{label}: unknown")
    r = _number(ref.medians.get(feature))
    if template is not None:
        return template(v, r, ref.label)
    return f"{label} is {format_number(v)}" + _typ(r, ref.label)


def _points_text(p: float) -> str:
    """``+12 pts``, ``+2.5 pts``, ``+1 pt``: percentage points, whole above 10, else one decimal."""
    text = f"{p:.0f}" if p >= 9.5 else f"{p:.1f}".rstrip("0").rstrip(".")
    return f"+{text} {'pt' if text == '1' else 'pts'}"


def reason_theme(feature: str) -> str:
    """The theme a feature speaks to (spend, frequency, recency, ...; from its definition in the registry): a reason
    list names each theme once, so "spent little in 365 days" and "spent little in total" do not crowd out other
    reasons."""
    d = FEATURES.describe(feature)
    if d is not None:
        return d.theme
    m = _SEQUENCE_THEMES.match(feature)
    return m.group(1) if m else feature


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

