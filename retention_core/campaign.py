"""Campaigns ranked by expected value: whom is it worth contacting, and how many?

For each user, contacting them is worth

    expected_net_value = churn_probability x value_at_stake x save_rate - cost_per_contact

- ``churn_probability``: the model's score;
- ``value_at_stake``: what the user would take away by leaving; by default the user's revenue over the last 365 days
  (else over the whole history, else past orders, else 1 per user: see :func:`user_value`);
- ``save_rate``: the share of would-be churners a contact keeps (entered by the analyst; default 10%);
- ``cost_per_contact``: what one contact costs, in the unit of the value (default 1.0).

Users are ranked by expected net value; contacting the first ``n`` of them is worth the sum of theirs, so the curve
of that sum against ``n`` rises while the users are worth contacting and falls after: its highest point is the best
number to contact (every user with a positive expected net value). :func:`campaign_export` writes the list with the
assumptions in every row, so a file read later still says how it was chosen.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation

import numpy as np
import pandas as pd

from .control import assign_control, contact_rows  # noqa: F401  (control groups live in retention_core.control)
from .errors import ConfigError
from .export import export_csv_bytes, readable_list
from .plots import base_layout

#: Identifier and label columns of scored rows: never a segment, never a value.
ID_COLUMNS = frozenset({"user_id", "snapshot_date", "churned", "cutoff"})
#: Columns that hold a user's past revenue, the first present is the user's value.
REVENUE_COLUMNS = ("revenue_365d", "revenue_total")
#: Columns that hold a user's past orders: the expected purchases a churner takes away, when there is no revenue.
PURCHASE_COLUMNS = ("orders_365d", "orders_total", "frequency")

DEFAULT_SAVE_RATE = 0.10
DEFAULT_COST = 1.0

EXPLANATION = (
    "Expected net value of contacting a user = churn probability x value at stake x save rate - cost per contact. "
    "The value at stake is what the user would take away by leaving (by default their revenue over the last 12 "
    "months). The save rate is the share of would-be churners that the contact keeps: retention offers typically "
    "keep 5-15%, so 10% is the default; use the result of an earlier campaign or a test group when you have one. "
    "The cost per contact is what one contact costs in the same unit as the value (e.g. 1.00 for an email with a "
    "voucher, more for a call). Users are ranked by expected net value; contacting everyone with a positive value "
    "gives the most in total, which the chart marks as the best point."
)


@dataclass(frozen=True)
class Assumptions:
    """What the analyst assumed; carried into every exported row."""

    save_rate: float = DEFAULT_SAVE_RATE
    cost_per_contact: float = DEFAULT_COST
    value_basis: str | None = None  # the column the value at stake came from (None: 1 per user)

    def __post_init__(self) -> None:
        check_assumptions(self.save_rate, self.cost_per_contact)

    def as_dict(self) -> dict:
        return asdict(self)


def check_assumptions(save_rate, cost_per_contact) -> None:
    try:
        s, c = float(save_rate), float(cost_per_contact)
    except (TypeError, ValueError):
        raise ConfigError(f"The save rate and the cost per contact must be numbers, got {save_rate!r} and "
                          f"{cost_per_contact!r}.") from None
    if not np.isfinite(s) or not 0 < s <= 1:
        raise ConfigError(f"The save rate is a share of would-be churners kept, above 0 and at most 1 (e.g. 0.10 "
                          f"for 10%), got {save_rate!r}.")
    if not np.isfinite(c) or c < 0:
        raise ConfigError(f"The cost per contact must be 0 or more, got {cost_per_contact!r}.")


def expected_net_value(p_churn, value, save_rate: float = DEFAULT_SAVE_RATE,
                       cost_per_contact: float = DEFAULT_COST) -> np.ndarray:
    """``p_churn * value * save_rate - cost_per_contact`` elementwise (missing or negative values count as 0)."""
    check_assumptions(save_rate, cost_per_contact)
    p = np.clip(np.nan_to_num(np.asarray(p_churn, dtype=float), nan=0.0), 0, 1)
    v = np.clip(np.nan_to_num(np.asarray(value, dtype=float), nan=0.0), 0, None)
    return p * v * float(save_rate) - float(cost_per_contact)


def value_order(env: np.ndarray, tie: np.ndarray | None = None) -> np.ndarray:
    """Positions sorted by expected net value, highest first (ties: the higher ``tie``, e.g. churn probability)."""
    env = np.asarray(env, dtype=float)
    keys = (np.zeros(len(env)) if tie is None else -np.asarray(tie, dtype=float), -env)
    return np.lexsort(keys)


def campaign_curve(env) -> pd.DataFrame:
    """``contacted, expected_net_value, marginal``: the total expected net value of contacting the best ``n`` users
    (by expected net value), for n = 0 .. all; ``marginal`` is the last user's own value."""
    v = np.sort(np.asarray(env, dtype=float))[::-1]
    return pd.DataFrame({"contacted": np.arange(len(v) + 1),
                         "expected_net_value": np.concatenate([[0.0], np.cumsum(v)]),
                         "marginal": np.concatenate([[np.nan], v])})


def best_point(curve: pd.DataFrame) -> dict:
    """The number contacted with the highest total expected net value (the fewest users on ties), and that value."""
    i = int(np.argmax(curve["expected_net_value"].to_numpy()))
    return {"contacted": int(curve["contacted"].iloc[i]),
            "expected_net_value": float(curve["expected_net_value"].iloc[i])}


def expected_value_table(scores: pd.DataFrame, value: np.ndarray, assumptions: Assumptions) -> pd.DataFrame:
    """``user_id, churn_probability, value_at_stake, expected_net_value`` sorted by expected net value."""
    p = scores["churn_probability"].to_numpy(dtype=float)
    env = expected_net_value(p, value, assumptions.save_rate, assumptions.cost_per_contact)
    order = value_order(env, p)
    out = pd.DataFrame({"user_id": scores["user_id"].astype(str).to_numpy()[order], "churn_probability": p[order],
                        "value_at_stake": np.asarray(value, dtype=float)[order], "expected_net_value": env[order]})
    out.attrs["assumptions"] = assumptions.as_dict()
    return out


def campaign_summary(curve: pd.DataFrame, assumptions: Assumptions) -> dict:
    """The best point, what contacting everyone would give, and the assumptions (for the page's metric cards)."""
    best = best_point(curve)
    return {**best, "everyone": float(curve["expected_net_value"].iloc[-1]), "users": int(curve["contacted"].iloc[-1]),
            **assumptions.as_dict()}


def with_assumptions(list_df: pd.DataFrame, assumptions: Assumptions) -> pd.DataFrame:
    """``list_df`` with the assumptions as columns (``save_rate, cost_per_contact, value_basis``) in every row."""
    out = list_df.copy()
    out["save_rate"] = float(assumptions.save_rate)
    out["cost_per_contact"] = float(assumptions.cost_per_contact)
    out["value_basis"] = assumptions.value_basis or "one per user"
    out.attrs.update(list_df.attrs)
    out.attrs["assumptions"] = assumptions.as_dict()
    return out


def campaign_export(list_df: pd.DataFrame, assumptions: Assumptions | None = None) -> bytes:
    """The formula-safe CSV of an at-risk list ranked by expected value, with the assumptions in every row (taken
    from ``list_df.attrs["assumptions"]`` when not given)."""
    if assumptions is None:
        a = list_df.attrs.get("assumptions")
        if not a:
            raise ConfigError("The list carries no campaign assumptions; give the save rate and cost per contact.")
        assumptions = Assumptions(**a)
    out = list_df if "save_rate" in list_df.columns else with_assumptions(list_df, assumptions)
    return export_csv_bytes(readable_list(out, list_df.attrs.get("value_basis") or assumptions.value_basis))


def campaign_figure(curve: pd.DataFrame, *, title: str | None = "Expected net value by number contacted"):
    """Total expected net value against the number of users contacted (best first), with the best point marked."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=curve["contacted"], y=curve["expected_net_value"], mode="lines",
                               line=dict(color="#4C78A8", width=2), name="expected net value",
                               hovertemplate="%{x:,} contacted: %{y:,.2f}<extra></extra>"))
    if len(curve):
        b = best_point(curve)
        fig.add_trace(go.Scatter(x=[b["contacted"]], y=[b["expected_net_value"]], mode="markers+text",
                                 marker=dict(size=11, color="#E45756"), name="best",
                                 text=[f"best: {b['contacted']:,} users, {b['expected_net_value']:,.2f}"],
                                 textposition="top right",
                                 hovertemplate="best: %{x:,} contacted, %{y:,.2f}<extra></extra>"))
    fig.add_hline(y=0, line=dict(color="#BAB0AC", width=1, dash="dot"))
    fig.update_xaxes(title="users contacted (highest expected net value first)", rangemode="tozero")
    fig.update_yaxes(title="expected net value")
    return base_layout(fig, title, 360)


def choose_by_expected_value(p: np.ndarray, value: np.ndarray, eligible: np.ndarray, *, k: int | None = None,
                             budget: float | None = None, save_rate: float | None = None,
                             cost_per_contact: float | None = None) -> tuple[np.ndarray, np.ndarray, Assumptions]:
    """(chosen positions, every user's expected net value, assumptions) for
    :func:`retention_core.scoring.at_risk_list`: the ``eligible`` users ranked by expected net value, keeping the top
    ``k``, or what ``budget`` pays for among those worth contacting, or (neither) everyone worth contacting (the best
    point of the curve)."""
    save_rate = DEFAULT_SAVE_RATE if save_rate is None else save_rate
    cost_per_contact = DEFAULT_COST if cost_per_contact is None else cost_per_contact
    check_assumptions(save_rate, cost_per_contact)
    a = Assumptions(float(save_rate), float(cost_per_contact))
    env = expected_net_value(p, value, a.save_rate, a.cost_per_contact)
    ranked = eligible[value_order(env[eligible], p[eligible])]
    if k is not None:
        return ranked[:int(k)], env, a
    worth = ranked[env[ranked] > 0]
    if budget is not None:
        if a.cost_per_contact <= 0:
            raise ConfigError("A budget needs a cost per contact above 0.")
        return worth[:budget_contacts(budget, a.cost_per_contact)], env, a
    return worth, env, a


def campaign_plan(scores: pd.DataFrame, frame: pd.DataFrame | None = None, *, save_rate: float = DEFAULT_SAVE_RATE,
                  cost_per_contact: float = DEFAULT_COST, value_col: str | None = None) -> tuple[pd.DataFrame, dict]:
    """(curve, summary) for scored users: :func:`campaign_curve` of their expected net values and
    :func:`campaign_summary` (best point, total for everyone, assumptions). ``frame`` is the scored feature rows that
    hold the value (see :func:`user_value`)."""
    value, basis = user_value(frame.reset_index(drop=True) if frame is not None else None, len(scores), value_col)
    check_assumptions(save_rate, cost_per_contact)
    a = Assumptions(float(save_rate), float(cost_per_contact), basis)
    curve = campaign_curve(expected_net_value(scores["churn_probability"].to_numpy(float), value, a.save_rate,
                                              a.cost_per_contact))
    return curve, campaign_summary(curve, a)


# ------------------------------------------------------------------------------------- a user's value and a budget
def value_columns(frame: pd.DataFrame | None) -> list[str]:
    """Numeric columns of the scored users that can stand for a user's value (revenue and orders first)."""
    if frame is None:
        return []
    cols = [c for c in frame.columns if c not in ID_COLUMNS and not str(c).startswith("p:")
            and pd.api.types.is_numeric_dtype(frame[c].dtype) and not pd.api.types.is_bool_dtype(frame[c].dtype)]
    first = [c for c in REVENUE_COLUMNS + PURCHASE_COLUMNS if c in cols]
    return first + [c for c in cols if c not in first]


def value_basis(frame: pd.DataFrame | None, value_col: str | None = None) -> str | None:
    """The column a user's value is read from: ``value_col`` when given, else past revenue (``revenue_365d``,
    ``revenue_total``), else past orders (the purchases a churner takes away); None when the rows hold none."""
    if value_col is not None:
        if frame is None or value_col not in frame.columns:
            raise ConfigError(f"The value column {value_col!r} is not among the scored users' columns.")
        if not pd.api.types.is_numeric_dtype(frame[value_col].dtype):
            raise ConfigError(f"The value column {value_col!r} must hold numbers.")
        return value_col
    if frame is None:
        return None
    for c in REVENUE_COLUMNS + PURCHASE_COLUMNS:
        if c in frame.columns and pd.api.types.is_numeric_dtype(frame[c].dtype):
            return c
    return None


def user_value(frame: pd.DataFrame | None, n: int, value_col: str | None = None) -> tuple[np.ndarray, str | None]:
    """Each user's value (missing and negative values count as 0; 1 per user when the rows hold no value)."""
    col = value_basis(frame, value_col)
    if col is None:
        return np.ones(n, dtype=float), None
    v = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.clip(np.nan_to_num(v, nan=0.0), 0, None), col


def budget_contacts(budget: float, cost_per_contact: float) -> int:
    """How many users a budget pays for: ``floor(budget / cost_per_contact)``, exact for amounts typed in decimals."""
    try:
        b, c = Decimal(str(budget)), Decimal(str(cost_per_contact))
    except (InvalidOperation, ValueError):
        raise ConfigError(f"Budget and cost per contact must be numbers, got {budget!r} and "
                          f"{cost_per_contact!r}.") from None
    if not b.is_finite() or b < 0:
        raise ConfigError(f"The budget must be 0 or more, got {budget!r}.")
    if not c.is_finite() or c <= 0:
        raise ConfigError(f"The cost per contact must be more than 0, got {cost_per_contact!r}.")
    return int(b // c)
