"""The small expression language the feature registry (:mod:`retention_core.feature_registry`) defines features in,
and the one walk that compiles an expression for an engine.

A feature of a snapshot at cutoff ``T`` is arithmetic over a few per-user aggregates of the days ``<= T`` (the
leaves): counts over a period (``count``), money sums rounded to a millionth (``money``), plain sums and minima
(``total``, ``lowest``), whole seconds between two instants (``span``), statistics of the gaps between purchase days
(``gaps``) and distinct products or categories bought (``distinct``). Each engine knows how to compute the leaves on
its own data layout (DuckDB from packed counts, NumPy from the per-day arrays, Spark from its per-day table); the
arithmetic above them (``+ - * /``, ``ratio``: missing where the divisor is 0, ``ln``, ``greatest``) is compiled from
the one definition by :func:`compile_expr` with each engine's operators: DuckDB SQL text, NumPy arrays or Spark
Columns. A period reads the day buckets ``T - start < b <= T - end`` (``start`` None: every day up to the cutoff), so
no expression can reach past the cutoff.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator


@dataclass(frozen=True)
class Period:
    """The day buckets ``b`` a leaf reads at cutoff ``T``: ``T - start < b <= T - end`` (``start`` None: no lower
    bound)."""

    start: int | None = None
    end: int = 0

    @property
    def key(self) -> str:
        """A short name for the period, safe in a column name: ``t`` (every day), ``w30`` (the last 30 days),
        ``p180_90`` (from 180 to 90 days before the cutoff)."""
        if self.start is None:
            return "t" if self.end == 0 else f"u{self.end}"
        return f"w{self.start}" if self.end == 0 else f"p{self.start}_{self.end}"


ALL_DAYS = Period()


def last(days: int) -> Period:
    """The last ``days`` days up to the cutoff."""
    return Period(int(days), 0)


def between(start: int, end: int) -> Period:
    """From ``start`` to ``end`` days before the cutoff (``T - start < b <= T - end``)."""
    return Period(int(start), int(end))


class Expr:
    """An expression node; numbers mix in as constants."""

    __slots__ = ()

    def __add__(self, other): return Op("add", (self, lift(other)))
    def __radd__(self, other): return Op("add", (lift(other), self))
    def __sub__(self, other): return Op("sub", (self, lift(other)))
    def __rsub__(self, other): return Op("sub", (lift(other), self))
    def __mul__(self, other): return Op("mul", (self, lift(other)))
    def __rmul__(self, other): return Op("mul", (lift(other), self))
    def __truediv__(self, other): return Op("div", (self, lift(other)))
    def __rtruediv__(self, other): return Op("div", (lift(other), self))


@dataclass(frozen=True)
class Const(Expr):
    value: int | float


@dataclass(frozen=True)
class Op(Expr):
    op: str
    args: tuple


@dataclass(frozen=True)
class Ref(Expr):
    """Another feature of the registry, by name (replaced by its definition when the registry expands)."""

    name: str


@dataclass(frozen=True)
class Leaf(Expr):
    """A per-user aggregate over the snapshot's days that every engine computes natively (see the module notes)."""

    kind: str
    field: str = ""
    period: Period = ALL_DAYS
    to: str = ""


def lift(x: Any) -> Expr:
    return x if isinstance(x, Expr) else Const(x)


#: What ``count`` can count per day: orders (distinct order ids, plus purchase lines without one), active days, days
#: with a purchase, purchase lines, returns, cancellations, events, browsing events (neither purchase, return nor
#: cancellation), ratings, and ``et_<k>``: events of the k-th most frequent event type.
COUNTED = ("orders", "days", "purchase_days", "lines", "returns", "cancels", "events", "browsing", "ratings")
#: The instants ``span`` measures between.
INSTANTS = ("first_purchase", "last_purchase", "last_event", "cutoff")


def count(field: str, period: Period = ALL_DAYS) -> Leaf:
    if field not in COUNTED and not field.startswith("et_"):
        raise ValueError(f"unknown count {field!r}")
    return Leaf("count", field, period)


def money(period: Period = ALL_DAYS) -> Leaf:
    """Revenue of product lines over the period, rounded to a millionth (``features.round_money``)."""
    return Leaf("money", "revenue", period)


def total(field: str) -> Leaf:
    """A plain sum over every day up to the cutoff: ``units`` (of product lines) or ``rating`` (the ratings given)."""
    return Leaf("sum", field)


def lowest(field: str) -> Leaf:
    """The minimum over every day up to the cutoff (``rating``; missing without one)."""
    return Leaf("min", field)


def span(start: str, end: str) -> Leaf:
    """Whole seconds from instant ``start`` to instant ``end`` (each instant's seconds truncated)."""
    if start not in INSTANTS or end not in INSTANTS:
        raise ValueError(f"unknown instant in {start!r}, {end!r}")
    return Leaf("span", start, ALL_DAYS, end)


def gaps(stat: str) -> Leaf:
    """Days between consecutive purchase days up to the cutoff: ``mean``, ``std`` (sample; missing for one gap, from
    exact integer sums) or ``max``."""
    return Leaf("gaps", stat)


def distinct(column: str) -> Leaf:
    """Distinct products (or categories) bought up to the cutoff."""
    return Leaf("distinct", column)


def ratio(x, y) -> Op:
    """``x / y``, missing where ``y`` is 0."""
    return Op("ratio", (lift(x), lift(y)))


def ln(x) -> Op:
    return Op("ln", (lift(x),))


def greatest(x, y) -> Op:
    return Op("greatest", (lift(x), lift(y)))


def leaves(e: Expr) -> Iterator[Leaf]:
    """The leaves of an expression (a leaf read twice is named twice)."""
    if isinstance(e, Leaf):
        yield e
    elif isinstance(e, Op):
        for a in e.args:
            yield from leaves(a)


def inline(e: Expr, resolve: Callable[[str], Expr]) -> Expr:
    """The expression with each :class:`Ref` replaced by the definition ``resolve`` gives for its name."""
    if isinstance(e, Ref):
        return inline(resolve(e.name), resolve)
    if isinstance(e, Op):
        return Op(e.op, tuple(inline(a, resolve) for a in e.args))
    return e


def compile_expr(e: Expr, leaf: Callable[[Leaf], Any], ops: dict[str, Callable]) -> Any:
    """``e`` in an engine's terms: ``leaf`` gives a leaf's value, ``ops`` each operator's (``const`` included)."""
    if isinstance(e, Const):
        return ops["const"](e.value)
    if isinstance(e, Leaf):
        return leaf(e)
    if isinstance(e, Op):
        return ops[e.op](*(compile_expr(a, leaf, ops) for a in e.args))
    raise TypeError(f"an unresolved reference in a feature expression: {e!r}")


def _sql_const(v: int | float) -> str:
    return repr(float(v)) if isinstance(v, float) else str(int(v))


#: The operators in DuckDB's SQL (integer ``/`` divides exactly, as in the rest of the engine).
SQL_OPS: dict[str, Callable] = {
    "const": _sql_const,
    "add": lambda a, b: f"({a} + {b})", "sub": lambda a, b: f"({a} - {b})",
    "mul": lambda a, b: f"({a} * {b})", "div": lambda a, b: f"({a} / {b})",
    "ratio": lambda a, b: f"({a} / nullif({b}, 0))", "ln": lambda a: f"ln({a})",
    "greatest": lambda a, b: f"greatest({a}, {b})",
}
