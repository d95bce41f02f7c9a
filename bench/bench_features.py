"""Feature building on a generated event log: the product (DuckDB) against a plain pandas groupby reference.

    python -m bench.bench_features --events 10000000 [--repeat 3] [--full-reference]

Both sides start from the same canonical event table and compute, at one cutoff, per user active in the lookback
window: recency, tenure, first-to-last, orders, active days, revenue, and orders/revenue in trailing windows
(7/30/90/180/365 days), plus distinct products. The product computes many more features (trends, cadence, event types,
returns, ratings, attributes) in the same time; the reference computes only the shared part. Prints seconds, the
ratio and peak memory (RSS) and the machine's core count.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import pandas as pd

from assets.generator import generate_for_events
from bench.reference_features import differences, pandas_full_reference
from retention_core.dataset import SnapshotConfig, build_dataset, data_end
from retention_core.events import CANONICAL, canonical_events
from retention_core.roles import infer_schema

WINDOWS = (7, 30, 90, 180, 365)


def pandas_reference(ev: pd.DataFrame, T: pd.Timestamp, lookback: int = 365) -> pd.DataFrame:
    """A straightforward pandas implementation of the shared core features."""
    past = ev[ev["ts"] <= T]
    p = past[past["is_purchase"]]
    active = p.loc[p["ts"] > T - pd.Timedelta(days=lookback), "user_id"].unique()
    p = p[p["user_id"].isin(active)]
    g = p.groupby("user_id", observed=True)
    out = pd.DataFrame({
        "recency_days": (T - g["ts"].max()).dt.total_seconds() / 86400,
        "tenure_days": (T - g["ts"].min()).dt.total_seconds() / 86400,
        "orders_total": g["order_id"].nunique(),
        "revenue_total": g["amount"].sum(),
        "n_products": g["product"].nunique(),
    })
    out["first_to_last_days"] = out["tenure_days"] - out["recency_days"]
    day = past[past["user_id"].isin(active)].assign(d=lambda x: x["ts"].dt.floor("D"))
    out["active_days_total"] = day.groupby("user_id", observed=True)["d"].nunique()
    for w in WINDOWS:
        q = p[p["ts"] > T - pd.Timedelta(days=w)].groupby("user_id", observed=True)
        out[f"orders_{w}d"] = q["order_id"].nunique().reindex(out.index, fill_value=0)
        out[f"revenue_{w}d"] = q["amount"].sum().reindex(out.index, fill_value=0)
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--full-reference", action="store_true",
                    help="also time the pandas reference of every product column (bench/reference_features.py)")
    a = ap.parse_args()

    t = time.perf_counter()
    raw = generate_for_events(a.events, seed=a.seed)
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    ev = canonical_events(raw, infer_schema(raw))
    canon_s = time.perf_counter() - t
    del raw
    T = data_end(ev) - pd.Timedelta(days=90)
    cfg = SnapshotConfig(horizon_days=90, lookback_days=365)
    print(f"cores {os.cpu_count()}; events {len(ev):,}; generate {gen_s:.1f} s; read roles + canonical table {canon_s:.1f} s")

    duck, ref, full = [], [], []
    for _ in range(a.repeat):
        t = time.perf_counter()
        ds = build_dataset(ev, cfg, cutoffs=[T])
        duck.append(time.perf_counter() - t)
        t = time.perf_counter()
        r = pandas_reference(ev, T)
        ref.append(time.perf_counter() - t)
        if a.full_reference:
            t = time.perf_counter()
            fr = pandas_full_reference(ev, T, cfg, data_end(ev))
            full.append(time.perf_counter() - t)
    d, p = statistics.median(duck), statistics.median(ref)
    f = ds.frame.set_index("user_id")
    same = f.loc[r.index, "orders_90d"].to_numpy() == r["orders_90d"].to_numpy()
    print(f"users at the cutoff: product {len(f):,}, reference {len(r):,}; orders_90d agree for {same.mean():.2%}")
    if a.full_reference:
        problems = differences(ds.frame, fr, [c for c in ev.columns if c not in CANONICAL])
        print(f"full reference: {len(fr):,} users, {len(fr.columns)} columns; "
              + ("every column agrees with the product" if not problems else "DISAGREES: " + "; ".join(problems)))
    print(f"{'step':<44}{'seconds (median of %d)' % a.repeat:>24}")
    print(f"{'product features (DuckDB), %d columns' % len(ds.frame.columns):<44}{d:>24.2f}")
    print(f"{'pandas groupby reference, %d columns' % (len(r.columns) + 1):<44}{p:>24.2f}")
    if a.full_reference:
        print(f"{'pandas full reference, %d columns' % len(fr.columns):<44}{statistics.median(full):>24.2f}")
    print(f"ratio reference / product: {p / d:.2f}x; peak RSS {peak_rss_mb():,.0f} MB")
    if a.full_reference:
        print(f"ratio full reference / product: {statistics.median(full) / d:.2f}x (like for like)")


if __name__ == "__main__":
    main()
