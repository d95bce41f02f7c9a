"""Every feature column of the product's snapshot, written the plain pandas way: boolean masks and one ``groupby`` per
feature family, the way a competent analyst would write it by hand.

:func:`pandas_full_reference` computes, for one cutoff ``T``, exactly the columns (names, order, values) that
``retention_core.dataset.build_dataset(ev, cfg, cutoffs=[T]).frame`` produces, from the same canonical event table
(``retention_core.events.canonical_events``). It is the like-for-like reference of the features benchmark
(``bench_features --full-reference``) and an independent check of the product's feature definitions
(``tests/core/test_reference_features.py``). It reads only the configuration and naming helpers of the product
(``SnapshotConfig``, ``CANONICAL``, ``MAX_EVENT_TYPES``, ``type_names``), never its feature code.

The rules it follows (from ``retention_core/events.py`` and ``retention_core/features.py``):

- cutoffs are midnights; an event's day bucket is the first midnight at or after it, so an event is "before the
  cutoff" (bucket <= T) exactly when ``ts <= T``, and a window "the last w days" (bucket > T - w) is ``ts > T - w``;
- the population: users with a purchase line in ``(T - lookback, T]`` and a product purchase line (not postage or
  fees) at or before ``T``; the label: ``churned = 1`` without a purchase
  in ``(T, T + horizon]``, missing when ``T + horizon`` is after the end of the data;
- orders of a day = distinct order ids among that day's purchase lines + purchase lines without an order id (an order
  spanning two day buckets counts on both days); revenue and units leave out non-product lines (postage, fees);
  revenue sums are rounded to a millionth (the product rounds money sums so that every engine gets the same bits);
- active days are day buckets with any event; purchase days are buckets with a purchase; gaps are the days between
  consecutive purchase days;
- durations (recency, tenure, ...) are whole seconds over 86400 (DuckDB's ``date_diff('second', ...)``);
- event types: the ``MAX_EVENT_TYPES`` most frequent in the whole log, counted in the last 30 and 90 days and in total;
- user attributes: the latest non-missing value at or before the cutoff;
- rating, amount, quantity, category and product columns that are missing everywhere drop their features.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from retention_core.events import CANONICAL
from retention_core.dataset import SnapshotConfig
from retention_core.features import MAX_EVENT_TYPES, type_names


def top_event_types(ev: pd.DataFrame) -> list[str]:
    """The most frequent event types of the whole log, most frequent first (ties: in the column's own order)."""
    counts = ev["event_type"].value_counts(sort=False, dropna=True)
    counts = counts[counts > 0].sort_values(ascending=False, kind="stable")
    return [str(t) for t in counts.index[:MAX_EVENT_TYPES]]


def _by_user(frame: pd.DataFrame):
    return frame.groupby("user_id", observed=True, sort=True)


def _put(out: pd.DataFrame, values: pd.Series | pd.DataFrame, fill=0.0) -> None:
    """Add columns to ``out`` (one row per user), as float64; users without a value get ``fill``."""
    values = values.reindex(out.index, fill_value=fill)
    if isinstance(values, pd.Series):
        values = values.to_frame()
    for c in values.columns:
        out[c] = values[c].astype("float64")


def _days(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds() / 86400.0


def _population(ev: pd.DataFrame, T: pd.Timestamp, cfg: SnapshotConfig, types: list[str]):
    """(the past events of the users in the population, with day buckets, order starts, revenue, units, browsing and
    one flag per event type; the users who buy in the horizon)."""
    days = pd.Timedelta(days=1)
    H, L = int(cfg.horizon_days), int(cfg.lookback_days)
    purchase = ev[ev["is_purchase"]]
    future = purchase.loc[(purchase["ts"] > T) & (purchase["ts"] <= T + H * days), "user_id"].unique()
    active = purchase.loc[(purchase["ts"] > T - L * days) & (purchase["ts"] <= T), "user_id"].unique()
    customers = purchase.loc[~purchase["is_nonproduct"] & (purchase["ts"] <= T), "user_id"].unique()
    active = active[pd.Index(active).isin(customers)]  # a user who bought only postage or fees is no customer

    past = ev[(ev["ts"] <= T) & ev["user_id"].isin(active)].copy()
    past["day"] = past["ts"].dt.ceil("D")  # the day bucket: the first midnight at or after the event
    # one line = one order when it is the first purchase line of its (user, day, order id), or has no order id
    buy = past[past["is_purchase"]]
    first_line = ~buy.duplicated(["user_id", "day", "order_id"]) | buy["order_id"].isna()
    past["new_order"] = first_line.reindex(past.index, fill_value=False)
    product_line = past["is_purchase"] & ~past["is_nonproduct"]
    past["revenue"] = past["amount"].where(product_line, 0.0).fillna(0.0)
    past["units"] = past["quantity"].where(product_line, 0.0).fillna(0.0)
    past["browsing"] = ~past["is_purchase"] & ~past["is_return"] & ~past["is_cancel"]
    for i, t in enumerate(types):
        past[f"_et_{i}"] = past["event_type"] == t
    return past, future


def _totals(out: pd.DataFrame, past: pd.DataFrame, p: pd.DataFrame, T: pd.Timestamp) -> None:
    """Recency and tenure (whole seconds, as DuckDB's date_diff('second')); frequency, monetary, returns, browsing,
    ratings."""
    gp, ge = _by_user(p), _by_user(past)
    last_p, first_p = gp["ts"].max().dt.floor("s"), gp["ts"].min().dt.floor("s")
    _put(out, pd.DataFrame({"recency_days": _days(T - last_p), "tenure_days": _days(T - first_p),
                            "first_to_last_days": _days(last_p - first_p),
                            "days_since_last_event": _days(T - ge["ts"].max().dt.floor("s"))}))
    sums = ge[["new_order", "revenue", "units", "is_purchase", "is_return", "is_cancel", "browsing"]].sum()
    _put(out, pd.DataFrame({
        "repeat_purchases": gp["day"].nunique() - 1,
        "orders_total": sums["new_order"],
        "active_days_total": ge["day"].nunique(),
        "revenue_total": sums["revenue"].round(6),
        "units_total": sums["units"],
        "lines_total": sums["is_purchase"],
        "returns_total": sums["is_return"],
        "cancels_total": sums["is_cancel"],
        "events_total": ge.size(),
        "browsing_total": sums["browsing"],
        "ratings_count": ge["rating"].count(),
    }))
    _put(out, pd.DataFrame({"rating_mean": ge["rating"].mean(), "rating_min": ge["rating"].min()}), fill=np.nan)


def _windows(out: pd.DataFrame, past: pd.DataFrame, T: pd.Timestamp, cfg: SnapshotConfig, types: list[str]):
    """Trailing windows: orders, revenue, active days, events per type (30 and 90 days), the 90 days before the
    last 90, events per type in total. Returns the orders of the last 30 and 180 days per user."""
    days = pd.Timedelta(days=1)
    et_cols = [f"_et_{i}" for i in range(len(types))]

    def window(start: pd.Timestamp, stop: pd.Timestamp = T) -> pd.DataFrame:
        return past[(past["ts"] > start) & (past["ts"] <= stop)]

    for w in cfg.windows:
        g = _by_user(window(T - w * days))
        _put(out, pd.DataFrame({f"orders_{w}d": g["new_order"].sum(), f"revenue_{w}d": g["revenue"].sum().round(6),
                                f"active_days_{w}d": g["day"].nunique()}))
        if types and w in (30, 90):
            _put(out, g[et_cols].sum().set_axis(type_names(types, f"{w}d"), axis=1))
    prev = _by_user(window(T - 180 * days, T - 90 * days))
    _put(out, pd.DataFrame({"orders_prev_90d": prev["new_order"].sum(), "revenue_prev_90d": prev["revenue"].sum().round(6)}))
    o30 = _by_user(window(T - 30 * days))["new_order"].sum().reindex(out.index, fill_value=0)
    o180 = _by_user(window(T - 180 * days))["new_order"].sum().reindex(out.index, fill_value=0)
    if types:
        _put(out, _by_user(past)[et_cols].sum().set_axis(type_names(types, "total"), axis=1))
    return o30, o180


def _ratios_and_cadence(out: pd.DataFrame, p: pd.DataFrame, o30: pd.Series, o180: pd.Series) -> None:
    """Ratios and trends; cadence (gaps in days between consecutive purchase days); breadth (distinct products and
    categories bought, product lines only)."""
    out["avg_order_value"] = out["revenue_total"] / out["orders_total"].replace(0, np.nan)
    out["lines_per_order"] = out["lines_total"] / out["orders_total"].replace(0, np.nan)
    out["return_rate"] = out["returns_total"] / out["lines_total"].replace(0, np.nan)
    out["cancel_rate"] = out["cancels_total"] / (out["lines_total"] + out["cancels_total"]).replace(0, np.nan)
    out["orders_trend_90d"] = out["orders_90d"] - out["orders_prev_90d"]
    out["revenue_trend_90d"] = np.log((out["revenue_90d"] + 1) / (out["revenue_prev_90d"].clip(lower=0) + 1))
    out["orders_30d_vs_avg"] = o30.astype("float64") - o180.astype("float64") / 6.0

    pdays = p[["user_id", "day"]].drop_duplicates().sort_values(["user_id", "day"])
    pdays["gap"] = _by_user(pdays)["day"].diff().dt.days
    gg = _by_user(pdays.dropna(subset=["gap"]))["gap"]
    _put(out, pd.DataFrame({"gap_mean_days": gg.mean(), "gap_std_days": gg.std(ddof=1), "gap_max_days": gg.max()}),
         fill=np.nan)
    out["recency_vs_usual_gap"] = out["recency_days"] / out["gap_mean_days"].replace(0, np.nan)

    bought = _by_user(p[~p["is_nonproduct"]])
    _put(out, pd.DataFrame({"n_products": bought["product"].nunique(), "n_categories": bought["category"].nunique()}))


def _missing_everywhere(ev: pd.DataFrame, columns: list[str]) -> list[str]:
    """The features dropped because their source column (rating, amount, quantity, category, product) is missing
    everywhere in the log."""
    drop = []
    if ev["rating"].isna().all():
        drop += ["ratings_count", "rating_mean", "rating_min"]
    if ev["amount"].isna().all():
        drop += [c for c in columns if "revenue" in c or c == "avg_order_value"]
    if ev["quantity"].isna().all():
        drop += ["units_total"]
    if ev["category"].isna().all():
        drop += ["n_categories"]
    if ev["product"].isna().all():
        drop += ["n_products"]
    return drop


def pandas_full_reference(ev: pd.DataFrame, T: pd.Timestamp, cfg: SnapshotConfig, end: pd.Timestamp) -> pd.DataFrame:
    """One row per user in the population at cutoff ``T``: ``user_id, snapshot_date, churned`` and every feature of
    the product, in the product's column order, users sorted by id."""
    T = pd.Timestamp(T).ceil("D")
    attributes = [c for c in ev.columns if c not in CANONICAL]
    types = top_event_types(ev)
    past, future = _population(ev, T, cfg, types)
    p = past[past["is_purchase"]]
    out = pd.DataFrame(index=_by_user(p).size().index)
    _totals(out, past, p, T)
    o30, o180 = _windows(out, past, T, cfg, types)
    if attributes:  # the latest non-missing value at or before the cutoff
        latest = _by_user(past.sort_values("ts", kind="stable"))[attributes].last()  # last() skips missing values
        for a in attributes:
            v = latest[a].reindex(out.index).astype(object)
            out[a] = v.where(v.notna(), None)
    _ratios_and_cadence(out, p, o30, o180)
    horizon_end = T + int(cfg.horizon_days) * pd.Timedelta(days=1)
    out.insert(0, "churned", np.nan if horizon_end > end else (~out.index.isin(future)).astype("float64"))
    out.insert(0, "snapshot_date", T)
    out.index = out.index.astype(str)
    out = out.rename_axis("user_id").reset_index().sort_values("user_id", kind="stable").reset_index(drop=True)
    return out.drop(columns=_missing_everywhere(ev, list(out.columns)))


def differences(product: pd.DataFrame, reference: pd.DataFrame, attributes: list[str], *, rtol: float = 1e-9,
                atol: float = 1e-12) -> list[str]:
    """Where two feature frames disagree, one line per problem (empty when they agree): columns (names and order),
    users, numbers within ``rtol`` (``atol`` for values that are zero up to rounding, e.g. a log-ratio of two equal
    sums added in another order), missing where the other is missing, attributes and the snapshot date equal."""
    if list(product.columns) != list(reference.columns):
        return [f"columns differ: only in product {sorted(set(product.columns) - set(reference.columns))}, "
                f"only in reference {sorted(set(reference.columns) - set(product.columns))}, or in another order"]
    a, b = product.set_index("user_id"), reference.set_index("user_id")
    if not (a.index.is_unique and b.index.is_unique) or set(a.index) != set(b.index):
        return [f"users differ: {len(a.index.difference(b.index))} only in product, "
                f"{len(b.index.difference(a.index))} only in reference (or repeated ids)"]
    b = b.loc[a.index]
    problems = []
    for c in a.columns:
        if c == "snapshot_date":
            same = pd.to_datetime(a[c]).to_numpy() == pd.to_datetime(b[c]).to_numpy()
        elif c in attributes:
            same = (a[c].astype(object).where(a[c].notna(), None).to_numpy()
                    == b[c].astype(object).where(b[c].notna(), None).to_numpy())
        else:
            x, y = a[c].to_numpy(dtype="float64"), b[c].to_numpy(dtype="float64")
            same = (np.isnan(x) & np.isnan(y)) | np.isclose(x, y, rtol=rtol, atol=atol)
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            problems.append(f"{c}: {int((~same).sum())} users differ, e.g. {a.index[i]}: "
                            f"product {a[c].iloc[i]!r}, reference {b[c].iloc[i]!r}")
    return problems
