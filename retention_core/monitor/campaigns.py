"""Campaign results: did contacting the customers change anything? The contacted against the control group held out
(:mod:`retention_core.control`), once the campaign's window has passed.

A campaign's window is its own, kept with its control group (``score --campaign-days D``, default 90 days; a campaign
recorded before windows were kept: its scoring's horizon), not the model's horizon. For every recorded scoring with a
control group whose window the new data observes, over the users of its list whose outcome the data shows (labelled
as training labels them, over the window: retained = a qualifying purchase in ``(as-of, as-of + window]``):

- **retention** of each group: retained users / users, contact (``p1 = r1 / n1``) and control (``p0 = r0 / n0``);
- **uplift** ``p1 - p0``, in absolute terms (0.05 = five percentage points), with its **95% confidence interval** by
  Newcombe's hybrid score method (Newcombe 1998, "Interval estimation for the difference between independent
  proportions", method 10): each group's Wilson score interval ``(l, u)``, then
  ``low = d - sqrt((p1 - l1)^2 + (u0 - p0)^2)`` and ``high = d + sqrt((u1 - p1)^2 + (p0 - l0)^2)``. It stays
  inside [-1, 1] and keeps its coverage with small groups and rates near 0 or 1, where the plain normal
  approximation does not. ``significant`` when the interval leaves out 0;
- **incremental customers** ``uplift x n1``: the contacted customers kept who would have left without the contact;
- **revenue**: each user's revenue in the window, the sum of the amounts of their product purchase lines in
  ``(as-of, as-of + window]`` (the amounts the log holds, as the revenue features read them; returns not deducted;
  None for a log without amounts). Its uplift is the mean per contacted user minus the mean per control user, with
  a 95% normal (Welch) interval; **incremental revenue** is that uplift x ``n1``;
- **return on the cost per contact** ``c`` the analyst gives (:func:`with_cost`): ``cost = c x n1``, ``net =
  incremental revenue - cost`` and ``roi = net / cost`` (revenue, not margin).

The same figures per segment: for each segment column kept with the scoring (the run's attributes, the lifecycle
``stage`` when scored) and per risk decile, each value's users of both groups; a segment with fewer than
``MIN_GROUP`` users in either group is marked ``reliable`` False (its interval says how little it shows).
"""
from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd

from ..control import CONTACT, CONTROL, GROUP
from ..errors import ConfigError

Z95 = NormalDist().inv_cdf(0.975)
CI_METHOD = "Newcombe hybrid score interval (from Wilson intervals), 95%"
MIN_GROUP = 30
FIGURES = ["contact_assigned", "contact_users", "contact_retained", "contact_retention", "contact_revenue",
           "contact_revenue_per_user", "control_assigned", "control_users", "control_retained", "control_retention",
           "control_revenue", "control_revenue_per_user", "uplift", "ci_low", "ci_high", "significant",
           "incremental_customers", "revenue_uplift_per_user", "revenue_ci_low", "revenue_ci_high",
           "incremental_revenue", "incremental_revenue_ci_low", "incremental_revenue_ci_high"]
FRONT = ["scoring_id", "as_of", "model", "control_share", "control_seed", "control_strata"]


# ----------------------------------------------------------------------------------------------- statistics
def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (``(nan, nan)`` when ``n`` is 0)."""
    if n <= 0:
        return math.nan, math.nan
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return 0.0 if k <= 0 else max(0.0, centre - half), 1.0 if k >= n else min(1.0, centre + half)


def newcombe(k1: int, n1: int, k0: int, n0: int, z: float = Z95) -> tuple[float, float, float]:
    """``(p1 - p0, low, high)``: the difference of two independent proportions ``k1/n1 - k0/n0`` and Newcombe's
    hybrid score interval (method 10). NaN when a group is empty."""
    if n1 <= 0 or n0 <= 0:
        return math.nan, math.nan, math.nan
    p1, p0 = k1 / n1, k0 / n0
    l1, u1 = wilson(k1, n1, z)
    l0, u0 = wilson(k0, n0, z)
    d = p1 - p0
    return d, d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)


def mean_difference(x1, x0, z: float = Z95) -> tuple[float, float, float]:
    """``(mean(x1) - mean(x0), low, high)`` with the normal (Welch) interval ``d -+ z sqrt(s1^2/n1 + s0^2/n0)``
    (sample variances); the interval is NaN when a group has fewer than two values."""
    a, b = np.asarray(x1, dtype=float), np.asarray(x0, dtype=float)
    if not len(a) or not len(b):
        return math.nan, math.nan, math.nan
    d = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return d, math.nan, math.nan
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return d, d - z * se, d + z * se


# ----------------------------------------------------------------------------------------------- outcomes
def horizon_revenue(ev: pd.DataFrame, as_of: str, horizon_days: int) -> pd.Series | None:
    """Each user's revenue in ``(as-of, as-of + horizon]`` (the as-of date's midnight, as labels count it): the
    amounts of their product purchase lines; None when the log has no amounts."""
    if "amount" not in ev.columns or not ev["amount"].notna().any():
        return None
    T = pd.Timestamp(as_of).ceil("D")  # a scoring's as-of date is a midnight: events after it are the horizon's
    sold = ev["is_purchase"].to_numpy(dtype=bool, copy=True)
    if "is_nonproduct" in ev.columns:
        sold &= ~ev["is_nonproduct"].fillna(False).to_numpy(bool)
    keep = sold & (ev["ts"] > T).to_numpy() & (ev["ts"] <= T + pd.Timedelta(days=int(horizon_days))).to_numpy()
    part = ev.loc[keep, ["user_id", "amount"]]
    return part.groupby(part["user_id"].astype(str), observed=True)["amount"].sum()


def _figures(group: np.ndarray, retained: np.ndarray, revenue: np.ndarray | None, assigned: dict) -> dict:
    """The campaign figures of one set of users (``group``, ``retained`` 0/1 with NaN for users not observed,
    ``revenue`` per user or None)."""
    out: dict = {}
    seen = np.isfinite(retained)
    for name in (CONTACT, CONTROL):
        m = (group == name) & seen
        n, r = int(m.sum()), int(retained[m].sum())
        rev = float(revenue[m].sum()) if revenue is not None else None
        out.update({f"{name}_assigned": int(assigned.get(name, 0)), f"{name}_users": n, f"{name}_retained": r,
                    f"{name}_retention": r / n if n else None, f"{name}_revenue": rev,
                    f"{name}_revenue_per_user": rev / n if rev is not None and n else None})
    n1, n0 = out["contact_users"], out["control_users"]
    d, lo, hi = newcombe(out["contact_retained"], n1, out["control_retained"], n0)
    out.update({"uplift": d, "ci_low": lo, "ci_high": hi, "significant": bool(lo > 0 or hi < 0) if n1 and n0 else
                False, "incremental_customers": d * n1 if n1 and n0 else None})
    rd = rlo = rhi = math.nan
    if revenue is not None:
        rd, rlo, rhi = mean_difference(revenue[(group == CONTACT) & seen], revenue[(group == CONTROL) & seen])
    out.update({"revenue_uplift_per_user": rd, "revenue_ci_low": rlo, "revenue_ci_high": rhi,
                "incremental_revenue": rd * n1, "incremental_revenue_ci_low": rlo * n1,
                "incremental_revenue_ci_high": rhi * n1})
    return out


def _values(users: pd.DataFrame, col: str) -> tuple[np.ndarray, list[str]]:
    """A segment column's values as text and their order: deciles 1 to 10, other values largest first."""
    if col == "risk_decile":
        d = pd.to_numeric(users[col], errors="coerce").astype("Int64")
        values = d.astype(str).where(d.notna(), "(missing)").to_numpy(dtype=object)
        return values, [str(v) for v in sorted(d.dropna().unique())] + (["(missing)"] if d.isna().any() else [])
    values = users[col].astype(object).where(users[col].notna(), "(missing)").astype(str).to_numpy(dtype=object)
    return values, pd.Series(values).value_counts(sort=True).index.tolist()


def _segment_rows(users: pd.DataFrame, retained: np.ndarray, revenue: np.ndarray | None,
                  columns: list[str]) -> pd.DataFrame:
    """The campaign figures per value of each segment column, then per risk decile."""
    rows = []
    group = users[GROUP].to_numpy(dtype=object)
    for col in [c for c in columns if c in users.columns and c != "risk_decile"] + ["risk_decile"]:
        values, order = _values(users, col)
        for v in order:
            m = values == v
            f = _figures(group[m], retained[m], revenue[m] if revenue is not None else None,
                         pd.Series(group[m]).value_counts().to_dict())
            rows.append({"column": col, "segment": v, **f,
                         "reliable": min(f["contact_users"], f["control_users"]) >= MIN_GROUP})
    return pd.DataFrame(rows, columns=["column", "segment"] + FIGURES + ["reliable"])


def campaign_result(users: pd.DataFrame, labels: pd.DataFrame, revenue: pd.Series | None,
                    segment_cols: list[str]) -> tuple[dict, pd.DataFrame]:
    """One scoring's campaign figures (see the module notes) and the same per segment: ``users`` are its recorded
    users (with ``group``), ``labels`` the realised ``user_id, churned``, ``revenue`` each user's revenue in the
    horizon (users absent: 0; None: no amounts)."""
    listed = users[users[GROUP].isin([CONTACT, CONTROL])].reset_index(drop=True)
    lab = labels.drop_duplicates("user_id").set_index("user_id")["churned"]
    churned = listed["user_id"].astype(str).map(lab).to_numpy(dtype=float, na_value=np.nan)
    retained = 1.0 - churned
    rev = None
    if revenue is not None:
        rev = listed["user_id"].astype(str).map(revenue).fillna(0.0).to_numpy(dtype=float)
    assigned = listed[GROUP].value_counts().to_dict()
    group = listed[GROUP].to_numpy(dtype=object)
    return _figures(group, retained, rev, assigned), _segment_rows(listed, retained, rev, segment_cols)


# ----------------------------------------------------------------------------------------------- cost and words
def check_cost(cost_per_contact) -> float | None:
    """The cost per contact as a number, 0 or more (None stays None)."""
    if cost_per_contact is None:
        return None
    try:
        c = float(cost_per_contact)
    except (TypeError, ValueError):
        c = math.nan
    if not math.isfinite(c) or c < 0:
        raise ConfigError(f"The cost per contact must be a number, 0 or more, got {cost_per_contact!r}.",
                          field="cost_per_contact", value=cost_per_contact)
    return c


def with_cost(campaigns: pd.DataFrame, cost_per_contact: float | None) -> pd.DataFrame:
    """``campaigns`` (or their segment rows) with ``cost_per_contact, cost, net, roi``: the cost of contacting the
    contacted users observed, the incremental revenue less that cost, and net / cost (None without a cost, or with
    no revenue)."""
    out = campaigns.copy()
    c = check_cost(cost_per_contact)
    n1 = pd.to_numeric(out.get("contact_users", pd.Series(dtype=float)), errors="coerce")
    inc = pd.to_numeric(out.get("incremental_revenue", pd.Series(dtype=float)), errors="coerce")
    out["cost_per_contact"] = c
    out["cost"] = n1 * c if c is not None else np.nan
    out["net"] = inc - out["cost"]
    out["roi"] = np.where(out["cost"] > 0, out["net"] / out["cost"].where(out["cost"] > 0), np.nan)
    return out


def _pts(v: float) -> str:
    return f"{v * 100:+.1f}"


def _money(v) -> str:
    return f"{v:,.2f}" if v is not None and np.isfinite(v) else "n/a"


def summary(row) -> str:
    """One line on a campaign (a row of the report's campaigns, with or without the cost columns)."""
    n1, n0 = int(row["contact_users"]), int(row["control_users"])
    days = row.get("days")
    window = f" (purchases within {int(days)} days)" if days is not None and pd.notna(days) else ""
    head = f"Campaign as of {row['as_of']}: retention {row['contact_retention']:.1%} among the {n1:,} contacted " \
        f"against {row['control_retention']:.1%} among the {n0:,} held out{window}" if n1 and n0 else \
        f"Campaign as of {row['as_of']}: no outcome for one of the groups ({n1:,} contacted, {n0:,} held out observed)"
    if not (n1 and n0):
        return head
    ci = f"95% CI {_pts(row['ci_low'])} to {_pts(row['ci_high'])}"
    if row["significant"]:
        text = f"{head}: {_pts(row['uplift'])} points ({ci}), about {row['incremental_customers']:,.0f} more " \
               f"customers kept"
    else:
        text = f"{head}: {_pts(row['uplift'])} points, within chance ({ci})"
    inc = row.get("incremental_revenue")
    if inc is not None and np.isfinite(inc):
        text += f"; incremental revenue {_money(inc)} (95% CI {_money(row['incremental_revenue_ci_low'])} to " \
                f"{_money(row['incremental_revenue_ci_high'])})"
    cost = row.get("cost")
    if cost is not None and np.isfinite(cost) and cost > 0:
        text += f"; contacts cost {_money(cost)} ({_money(row['cost_per_contact'])} each): net {_money(row['net'])}" \
                f", return on cost {row['roi']:+.0%}"
    return text + "."


def segment_lines(segments: pd.DataFrame) -> list[str]:
    """One line per segment column of a campaign: "by channel: organic +20.5 pts (95% CI +9.0 to +31.2, 259 users),
    ..." (segments too small to judge marked)."""
    out = []
    for col, part in segments.groupby("column", sort=False):
        cells = [f"{r['segment']} {_pts(r['uplift'])} pts (95% CI {_pts(r['ci_low'])} to {_pts(r['ci_high'])}, "
                 f"{int(r['contact_users']) + int(r['control_users']):,} users{'' if r['reliable'] else ', too few'})"
                 for _, r in part.iterrows() if np.isfinite(r["uplift"])]
        if cells:
            out.append(f"by {str(col).replace('_', ' ')}: " + ", ".join(cells))
    return out


def as_records(campaigns: pd.DataFrame, segments: pd.DataFrame) -> list[dict]:
    """The JSON form: ``[{"as_of", "days" (the window), "contact": {"users", "retained", ...}, "control": {...},
    "uplift", "ci": [low, high], ..., "segments": [...]}]``."""
    out = []
    for _, r in campaigns.iterrows():
        rec = {k: r.get(k) for k in FRONT if k != "control_strata"}
        rec.update({"days": r.get("days"), "strata": r.get("control_strata"), **_record(r)})
        part = segments[segments["scoring_id"] == r["scoring_id"]] if len(segments) else segments
        rec["segments"] = [{"column": s["column"], "segment": s["segment"], **_record(s),
                            "reliable": bool(s["reliable"])} for _, s in part.iterrows()]
        rec["summary"] = summary(r)
        out.append(rec)
    return out


def _record(r) -> dict:
    def group(name: str) -> dict:
        return {"users": r[f"{name}_users"], "retained": r[f"{name}_retained"], "retention": r[f"{name}_retention"],
                "assigned": r[f"{name}_assigned"], "revenue": r[f"{name}_revenue"],
                "revenue_per_user": r[f"{name}_revenue_per_user"]}

    rec = {"contact": group(CONTACT), "control": group(CONTROL), "uplift": r["uplift"],
           "ci": [r["ci_low"], r["ci_high"]], "ci_method": CI_METHOD, "significant": bool(r["significant"]),
           "incremental_customers": r["incremental_customers"],
           "revenue_uplift_per_user": r["revenue_uplift_per_user"],
           "revenue_ci": [r["revenue_ci_low"], r["revenue_ci_high"]], "incremental_revenue": r["incremental_revenue"],
           "incremental_revenue_ci": [r["incremental_revenue_ci_low"], r["incremental_revenue_ci_high"]]}
    for k in ("cost_per_contact", "cost", "net", "roi"):
        if k in r:
            rec[k] = r[k]
    return rec
