"""The feature registry: every feature column of an event log's dataset, defined once.

Each :class:`Feature` holds a column's name, its computation (an expression of :mod:`retention_core.feature_expr`),
its label and unit, the wording of its reasons, its theme, what it needs the log to record, and whether it grows with
a customer's age. A family is one definition with a parameter: ``{w}`` in its name makes one column per configured
trailing window (``orders_{w}d``), ``{type}`` one per counted event type (``events_{type}_30d``). The DuckDB engine
(``features.py``), the NumPy engine for a few users (``features_small.py``) and the Spark engine
(``spark/features.py``) all compile their columns from :data:`FEATURES`; the explanations (``explain/wording.py``)
and monitoring read labels, reasons and the age flag from it. Adding a feature is one definition here (and its test);
``tests/core/test_feature_registry.py`` and the differential tests then hold every engine to it.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Callable

from .events import slug
from .feature_expr import (ALL_DAYS, Expr, Ref, between, count, distinct, gaps, greatest, inline, last, ln, lowest,
                           money, ratio, span, total)

#: The trailing windows that also count events per type (of those the configuration asks for).
TYPE_WINDOWS = (30, 90)
#: What the log may lack everywhere; a feature that needs it is left out of the dataset (one rule for every engine).
INPUTS = ("rating", "amount", "quantity", "category", "product")


@dataclass(frozen=True)
class Reason:
    """How a reason speaks of a user's value ``v`` (rendered by ``explain/wording.py``):

    - ``count``: "No orders in total", "Only 1 order in total", "5 orders in total" (``one``/``many`` nouns, ``where``;
      ``zero``: the sentence for 0 instead);
    - ``counted``: "3 items returned" (``one``/``many`` nouns, then ``where``);
    - ``money``: "Spent nothing in the last 30 days", "Only spent 120 in total";
    - ``sentence``: ``text`` with ``{v}`` formatted by the feature's unit;
    - ``trend``: "Bought less in the last 90 days than the 90 before (2 fewer orders)" (``text``: the verb, ``many``:
      the unit counted, if any);
    - ``sign``: one of three sentences (``signs``: below, at and above 0).

    Each but ``trend`` and ``sign`` ends with the typical value among retained users.
    """

    kind: str
    one: str = ""
    many: str = ""
    where: str = ""
    text: str = ""
    zero: str = ""
    signs: tuple[str, str, str] = ("", "", "")


@dataclass(frozen=True)
class Feature:
    """One feature column, or a family of them (``{w}``/``{type}`` in the name).

    ``compute``: the expression, or for a family a function of its parameters (``w``: the window in days, ``k``: the
    event type's rank). ``unit``: what the value counts (days, orders, money, share, times ...; the reasons format
    days and money as whole numbers, shares as percentages). ``needs``: the input the log must record somewhere (one
    of :data:`INPUTS`), or the column is dropped. ``ages``: the value can only move one way as a customer's history
    gets longer (a lifetime span, total, distinct count or running extreme), so monitoring reads its drift as
    expected ageing. ``missing``: the reason's sentence when the value is missing. ``after_attributes``: placed after
    the user attributes in the table. ``windows``: for a ``{w}`` family, only these of the configured windows.
    """

    name: str
    compute: Expr | Callable[..., Expr]
    label: str
    unit: str
    reason: Reason | None
    theme: str
    ages: bool = False
    needs: str | None = None
    missing: str | None = None
    after_attributes: bool = False
    windows: tuple[int, ...] | None = None

    @property
    def windowed(self) -> bool:
        return "{w}" in self.name

    @property
    def per_type(self) -> bool:
        return "{type}" in self.name

    def pattern(self) -> re.Pattern:
        """The column names this definition makes (a per-type name repeated for two types with one slug ends in
        ``_1``, ``_2``, ... as :func:`type_names` names it)."""
        text = re.escape(self.name).replace(r"\{w\}", r"(?P<w>\d+)").replace(r"\{type\}", r"(?P<type>.+)")
        return re.compile(f"^{text}(?:_\\d+)?$" if self.per_type else f"^{text}$")


@dataclass(frozen=True)
class Column:
    """One concrete column of a snapshot's table: its name, its expression (references inlined) and definition."""

    name: str
    expr: Expr
    feature: Feature


@dataclass(frozen=True)
class Description:
    """A column's wording with its parameters filled in (``Orders in the last 30 days``)."""

    name: str
    label: str
    unit: str
    reason: Reason | None
    theme: str
    ages: bool
    missing: str | None
    needs: str | None


def type_names(types: list[str], suffix: str) -> list[str]:
    """``events_<slug>_<suffix>`` per type; a repeated name gets ``_1``, ``_2``, ... as DuckDB names repeated result
    columns (two types with one slug, such as ``Add to cart`` and ``add_to_cart``)."""
    names: list[str] = []
    for t in types:
        name, k = f"events_{slug(t)}_{suffix}", 0
        while (name if k == 0 else f"{name}_{k}") in names:
            k += 1
        names.append(name if k == 0 else f"{name}_{k}")
    return names


class Registry:
    """The feature definitions in table order, expanded for a configuration's windows and a log's event types."""

    def __init__(self, features: list[Feature]):
        self.features = list(features)
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError("a feature is defined twice: " + ", ".join(sorted({n for n in names if names.count(n) > 1})))
        self._single = {f.name: f for f in self.features if not (f.windowed or f.per_type)}
        self._families = [(f, f.pattern()) for f in self.features if f.windowed or f.per_type]
        self._expanded: dict[tuple, tuple[list[Column], list[Column]]] = {}

    def plus(self, *features: Feature) -> "Registry":
        """This registry with more definitions (placed before the ones after the attributes, unless they say so)."""
        before = [f for f in self.features if not f.after_attributes]
        after = [f for f in self.features if f.after_attributes]
        return Registry(before + [f for f in features if not f.after_attributes]
                        + after + [f for f in features if f.after_attributes])

    def _expand(self, f: Feature, windows: tuple[int, ...], types: list[str], w: int | None) -> list[tuple[str, Expr]]:
        if f.per_type:
            suffix = f.name.split("{type}_", 1)[1].replace("{w}", str(w))
            names = type_names(types, suffix)
            return [(n, f.compute(k=k, w=w) if f.windowed else f.compute(k=k)) for k, n in enumerate(names)]
        if f.windowed:
            return [(f.name.replace("{w}", str(w)), f.compute(w=w))]
        return [(f.name, f.compute)]

    def columns(self, windows: tuple[int, ...], types: list[str]) -> tuple[list[Column], list[Column]]:
        """The feature columns (before the user attributes, after them) in table order: a run of ``{w}`` families
        makes its columns window by window (``orders_7d, revenue_7d, ..., orders_30d, ...``). Kept per windows and
        types: the service expands them once, not per request."""
        key = (tuple(int(w) for w in windows), tuple(types))
        if key not in self._expanded:
            if len(self._expanded) > 64:
                self._expanded.clear()
            self._expanded[key] = self._columns(key[0], list(types))
        before, after = self._expanded[key]
        return list(before), list(after)

    def _columns(self, windows: tuple[int, ...], types: list[str]) -> tuple[list[Column], list[Column]]:
        out: list[tuple[str, Expr, Feature]] = []
        defs = self.features
        i = 0
        while i < len(defs):
            if not defs[i].windowed:
                out += [(n, e, defs[i]) for n, e in self._expand(defs[i], windows, types, None)]
                i += 1
                continue
            j = i
            while j < len(defs) and defs[j].windowed:
                j += 1
            for w in windows:
                for f in defs[i:j]:
                    if f.windows is None or w in f.windows:
                        out += [(n, e, f) for n, e in self._expand(f, windows, types, w)]
            i = j
        exprs = {n: e for n, e, _ in out}

        def resolve(name: str) -> Expr:
            if name not in exprs:
                raise ValueError(f"a feature refers to {name!r}, which this configuration does not compute")
            return exprs[name]

        cols = [Column(n, inline(e, resolve), f) for n, e, f in out]
        return [c for c in cols if not c.feature.after_attributes], [c for c in cols if c.feature.after_attributes]

    def lookup(self, name: str) -> tuple[Feature, dict[str, str]] | None:
        """The definition behind a column name and its parameters (``w``, ``type``), or None."""
        name = str(name)
        if name in self._single:
            return self._single[name], {}
        for f, pat in self._families:
            m = pat.match(name)
            if m:
                return f, m.groupdict()
        return None

    def describe(self, name: str) -> Description | None:
        """A column's label, unit, reason wording (parameters filled in) and flags; None for other names."""
        found = self.lookup(name)
        if found is None:
            return None
        f, params = found
        words = {"w": params.get("w", ""), "type": params.get("type", "").replace("_", " ").strip()}
        fill = lambda s: s.format(**words) if s else s  # noqa: E731
        reason = None if f.reason is None else dataclasses.replace(
            f.reason, one=fill(f.reason.one), many=fill(f.reason.many), where=fill(f.reason.where),
            text=f.reason.text.replace("{w}", words["w"]).replace("{type}", words["type"]))
        return Description(str(name), fill(f.label), f.unit, reason, f.theme, f.ages, f.missing, f.needs)

    def dropped(self, columns: list[str], lacks: set[str]) -> list[str]:
        """The columns left out because the log lacks their input everywhere (``lacks``: of :data:`INPUTS`)."""
        out = []
        for c in columns:
            found = self.lookup(c)
            if found is not None and found[0].needs in lacks:
                out.append(c)
        return out

    def claims(self, name: str) -> bool:
        """Whether a column named ``name`` would be (or could be) one of these features."""
        return self.lookup(name) is not None


def _within(w: int) -> str:
    return f"in the last {w} days"


_DAYS, _TOTAL = "days", "in total"
_SILENT = "Only one purchase day so far (no usual rhythm yet)"
_NO_RATING = "Never left a rating"

FEATURES = Registry([
    # recency and tenure: whole seconds over 86400
    Feature("recency_days", span("last_purchase", "cutoff") / 86400.0, "Days since last purchase", _DAYS,
            Reason("sentence", text="No purchase for {v} days"), "recency"),
    Feature("tenure_days", span("first_purchase", "cutoff") / 86400.0, "Days since first purchase", _DAYS,
            Reason("sentence", text="First purchase {v} days ago"), "tenure", ages=True),
    Feature("first_to_last_days", span("first_purchase", "last_purchase") / 86400.0,
            "Days from first to last purchase", _DAYS,
            Reason("sentence", text="{v} days between first and last purchase"), "tenure", ages=True),
    Feature("days_since_last_event", span("last_event", "cutoff") / 86400.0, "Days since last activity", _DAYS,
            Reason("sentence", text="No activity for {v} days"), "recency"),
    # frequency and money over every day up to the cutoff
    Feature("repeat_purchases", count("purchase_days") - 1, "Repeat purchase days", "purchase days",
            Reason("count", "repeat purchase day", "repeat purchase days", "so far", zero="No repeat purchase yet"),
            "frequency", ages=True),
    Feature("orders_total", count("orders"), "Orders in total", "orders",
            Reason("count", "order", "orders", _TOTAL), "frequency", ages=True),
    Feature("active_days_total", count("days"), "Active days in total", "days",
            Reason("count", "active day", "active days", _TOTAL), "frequency", ages=True),
    Feature("revenue_total", money(), "Spend in total", "money", Reason("money", where=_TOTAL), "spend", ages=True,
            needs="amount"),
    Feature("units_total", total("units"), "Items bought in total", "items",
            Reason("count", "item", "items", "bought in total"), "spend", ages=True, needs="quantity"),
    Feature("lines_total", count("lines"), "Order lines in total", "order lines",
            Reason("count", "order line", "order lines", _TOTAL), "frequency", ages=True),
    Feature("returns_total", count("returns"), "Returned items", "items",
            Reason("counted", "item", "items", "returned"), "returns", ages=True),
    Feature("cancels_total", count("cancels"), "Cancelled items", "items",
            Reason("counted", "item", "items", "cancelled"), "returns", ages=True),
    Feature("events_total", count("events"), "Site events in total", "events",
            Reason("count", "site event", "site events", _TOTAL), "browsing", ages=True),
    Feature("browsing_total", count("browsing"), "Browsing events in total", "events",
            Reason("count", "browsing event", "browsing events", _TOTAL), "browsing", ages=True),
    Feature("ratings_count", count("ratings"), "Ratings given", "ratings",
            Reason("count", "rating", "ratings", "given"), "rating", ages=True, needs="rating"),
    Feature("rating_mean", ratio(total("rating"), count("ratings")), "Average rating", "rating",
            Reason("sentence", text="Average rating {v}"), "rating", needs="rating", missing=_NO_RATING),
    Feature("rating_min", lowest("rating"), "Lowest rating", "rating",
            Reason("sentence", text="Lowest rating given: {v}"), "rating", ages=True, needs="rating",
            missing=_NO_RATING),
    # trailing windows, window by window (the configuration's windows)
    Feature("orders_{w}d", lambda w: count("orders", last(w)), "Orders in the last {w} days", "orders",
            Reason("count", "order", "orders", _within("{w}")), "frequency"),
    Feature("revenue_{w}d", lambda w: money(last(w)), "Spend in the last {w} days", "money",
            Reason("money", where=_within("{w}")), "spend", needs="amount"),
    Feature("active_days_{w}d", lambda w: count("days", last(w)), "Active days in the last {w} days", "days",
            Reason("count", "active day", "active days", _within("{w}")), "frequency"),
    Feature("events_{type}_{w}d", lambda k, w: count(f"et_{k}", last(w)), "'{type}' events in the last {w} days",
            "events", Reason("count", "'{type}' event", "'{type}' events", _within("{w}")), "browsing",
            windows=TYPE_WINDOWS),
    Feature("orders_prev_90d", count("orders", between(180, 90)), "Orders 91-180 days ago", "orders",
            Reason("count", "order", "orders", "91-180 days ago"), "trend"),
    Feature("revenue_prev_90d", money(between(180, 90)), "Spend 91-180 days ago", "money",
            Reason("money", where="91-180 days ago"), "trend", needs="amount"),
    Feature("events_{type}_total", lambda k: count(f"et_{k}"), "'{type}' events in total", "events",
            Reason("count", "'{type}' event", "'{type}' events", _TOTAL), "browsing", ages=True),
    # after the user attributes: ratios, trends, cadence, breadth
    Feature("avg_order_value", ratio(Ref("revenue_total"), Ref("orders_total")), "Average order value", "money",
            Reason("sentence", text="Average order value {v}"), "spend", needs="amount",
            missing="No order value recorded", after_attributes=True),
    Feature("lines_per_order", ratio(Ref("lines_total"), Ref("orders_total")), "Items per order", "items per order",
            Reason("sentence", text="{v} items per order"), "frequency", after_attributes=True),
    Feature("return_rate", ratio(Ref("returns_total"), Ref("lines_total")), "Share of items returned", "share",
            Reason("sentence", text="Returned {v} of items"), "returns",
            missing="No items bought to compare returns with", after_attributes=True),
    Feature("cancel_rate", ratio(Ref("cancels_total"), Ref("lines_total") + Ref("cancels_total")),
            "Share of items cancelled", "share", Reason("sentence", text="Cancelled {v} of items"), "returns",
            missing="No items bought to compare cancellations with", after_attributes=True),
    Feature("orders_trend_90d", count("orders", last(90)) - Ref("orders_prev_90d"),
            "Orders, last 90 days vs the 90 before", "orders", Reason("trend", many="orders", text="Bought"), "trend",
            after_attributes=True),
    Feature("revenue_trend_90d", ln((money(last(90)) + 1) / (greatest(Ref("revenue_prev_90d"), 0) + 1)),
            "Spend, last 90 days vs the 90 before", "log ratio", Reason("trend", text="Spent"), "trend",
            needs="amount", after_attributes=True),
    Feature("orders_30d_vs_avg", count("orders", last(30)) - count("orders", last(180)) / 6.0,
            "Orders in the last 30 days vs usual", "orders",
            Reason("sign", signs=("Fewer orders in the last 30 days than usual",
                                  "As many orders in the last 30 days as usual",
                                  "More orders in the last 30 days than usual")), "trend", after_attributes=True),
    Feature("gap_mean_days", gaps("mean"), "Usual days between purchases", _DAYS,
            Reason("sentence", text="Usually buys every {v} days"), "cadence", missing=_SILENT,
            after_attributes=True),
    Feature("gap_std_days", gaps("std"), "Irregularity of purchases (days)", _DAYS,
            Reason("sentence", text="Irregular buying rhythm (gaps vary by {v} days)"), "cadence",
            missing="Too few purchases to show a buying rhythm", after_attributes=True),
    Feature("gap_max_days", gaps("max"), "Longest gap between purchases", _DAYS,
            Reason("sentence", text="Longest gap between purchases: {v} days"), "cadence", ages=True,
            missing="Only one purchase day so far", after_attributes=True),
    Feature("recency_vs_usual_gap", ratio(Ref("recency_days"), Ref("gap_mean_days")), "Silence vs usual gap", "times",
            Reason("sentence", text="Silent for {v} their usual time between purchases"), "recency",
            missing=_SILENT, after_attributes=True),
    Feature("n_products", distinct("product"), "Different products bought", "products",
            Reason("count", "different product", "different products", "bought"), "breadth", ages=True,
            needs="product", after_attributes=True),
    Feature("n_categories", distinct("category"), "Categories bought", "categories",
            Reason("count", "category", "categories", "bought from"), "breadth", ages=True, needs="category",
            after_attributes=True),
])

__all__ = ["ALL_DAYS", "FEATURES", "Column", "Description", "Feature", "Reason", "Registry", "type_names"]
