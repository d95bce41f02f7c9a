"""Section 1: feature building from generated event logs, the product against pandas and lifetimes references."""
from __future__ import annotations

import time
from pathlib import Path

from bench.common import fmt_seconds, ratio_text, size_label
from bench.data import canonical, load_raw
from bench.measures import Job, Rows, find_rows, info
from bench.registry import Plan, Section, step

NAME = "features"


def _cutoff(ev):
    import pandas as pd

    from retention_core.dataset import data_end

    return data_end(ev) - pd.Timedelta(days=90)


def _training_cutoffs(ev) -> list:
    """The cutoffs the product trains on by default (``default_config``: up to 6 snapshots, 30 days apart)."""
    from retention_core.dataset import default_config, snapshot_dates

    return snapshot_dates(ev, default_config(ev))


@step("features_product", NAME)
def features_product(cache: str, n: int) -> dict:
    from retention_core.dataset import SnapshotConfig, build_dataset, default_config

    raw = load_raw(cache, n)
    t0 = time.perf_counter()
    ev = canonical(raw)
    t1 = time.perf_counter()
    ds = build_dataset(ev, SnapshotConfig(horizon_days=90, lookback_days=365), cutoffs=[_cutoff(ev)])
    t2 = time.perf_counter()
    cutoffs = _training_cutoffs(ev)
    t3 = time.perf_counter()
    train = build_dataset(ev, default_config(ev), cutoffs=cutoffs)
    t4 = time.perf_counter()
    ds.frame.to_parquet(Path(cache) / f"product_features_{n}.parquet")
    return {"measures": {"total": t2 - t0, "build": t2 - t1, "build_training": t4 - t3},
            "info": {"events": len(ev), "users": len(ds.frame), "columns": len(ds.frame.columns),
                     "training_cutoffs": len(cutoffs), "training_rows": len(train.frame)}}


@step("features_full", NAME)
def features_full(cache: str, n: int) -> dict:
    """The pandas reference of every product column (``bench/reference_features.py``): one cutoff, then each
    training cutoff in turn (a plain implementation recomputes everything per cutoff)."""
    from bench.reference_features import pandas_full_reference
    from retention_core.dataset import SnapshotConfig, data_end, default_config

    ev = canonical(load_raw(cache, n))
    end = data_end(ev)
    t = time.perf_counter()
    r = pandas_full_reference(ev, _cutoff(ev), SnapshotConfig(horizon_days=90, lookback_days=365), end)
    one = time.perf_counter() - t
    r.to_parquet(Path(cache) / f"full_features_{n}.parquet")
    cfg, cutoffs = default_config(ev), _training_cutoffs(ev)
    t = time.perf_counter()
    rows = sum(len(pandas_full_reference(ev, T, cfg, end)) for T in cutoffs)
    return {"measures": {"build": one, "build_training": time.perf_counter() - t},
            "info": {"users": len(r), "columns": len(r.columns), "training_cutoffs": len(cutoffs),
                     "training_rows": rows}}


@step("features_pandas", NAME)
def features_pandas(cache: str, n: int) -> dict:
    from bench.reference import pandas_features

    ev = canonical(load_raw(cache, n))
    T = _cutoff(ev)
    t = time.perf_counter()
    r = pandas_features(ev, T)
    s = time.perf_counter() - t
    r[["orders_90d"]].to_parquet(Path(cache) / f"pandas_features_{n}.parquet")
    return {"measures": {"build": s}, "info": {"users": len(r), "columns": len(r.columns) + 1}}


@step("features_lifetimes", NAME)
def features_lifetimes(cache: str, n: int) -> dict:
    from bench.reference import LIFETIMES_LABEL, lifetimes_summary

    ev = canonical(load_raw(cache, n))
    T = _cutoff(ev)
    t = time.perf_counter()
    s = lifetimes_summary(ev, T)
    sec = time.perf_counter() - t
    s.to_parquet(Path(cache) / f"lifetimes_summary_{n}.parquet")
    return {"measures": {"build": sec}, "info": {"users": len(s), "label": LIFETIMES_LABEL}}


def plan(cfg: dict, cache: str) -> Plan:
    out = Plan()
    for n in cfg["feature_events"]:
        out.events[n] = out.events.get(n, False)
        s = size_label(n)
        for variant in ("product", "full", "pandas", "lifetimes"):
            out.jobs.append(Job(NAME, f"features/{s}/{variant}", f"features_{variant}", {"cache": cache, "n": n}))
    return out


def report(t: Rows) -> None:
    for n in t.cfg["feature_events"]:
        s = size_label(n)
        p, pd_, lt = t.job(f"features/{s}/product"), t.job(f"features/{s}/pandas"), t.job(f"features/{s}/lifetimes")
        full = t.job(f"features/{s}/full")
        if p is None:
            continue
        cols, users = info(p, "columns", "?"), info(p, "users", 0)
        k, train_rows = info(p, "training_cutoffs", "?"), info(p, "training_rows", 0)
        same = f"pandas, the same {cols} columns (bench/reference_features.py)"
        t.add(NAME, f"Product: roles + canonical table + {cols} features, one cutoff", f"{s} events", p, "total",
              full, "build", same + ", from the canonical table", f"{users:,} users; the reference skips the cleaning")
        t.add(NAME, f"Product: {cols} features from the canonical table, one cutoff", f"{s} events", p, "build",
              full, "build", same, "like for like")
        t.add(NAME, f"Product: training set, {k} cutoffs 30 days apart", f"{s} events", p, "build_training",
              full, "build_training", same + ", once per cutoff", f"{train_rows:,} rows; like for like")
        t.add(NAME, f"Product: {cols} features from the canonical table, one cutoff", f"{s} events", p, "build",
              pd_, "build", "pandas groupby of 16 shared features only", "the reference computes a quarter of the columns")
        t.add(NAME, f"Product: {cols} features from the canonical table, one cutoff", f"{s} events", p, "build",
              lt, "build", info(lt, "label", "lifetimes summary") + " (frequency, recency, T)",
              f"lifetimes covers {info(lt, 'users', 0):,} users (every buyer, no lookback window)")


def targets(t: Rows) -> list[dict]:
    rows, cfg = t.rows, t.cfg
    out = []
    biggest = size_label(max(cfg["feature_events"]))
    tot = find_rows(rows, NAME, "Product: roles", biggest)
    scale = "" if biggest == "10M" else f" (measured at {biggest}; the target is for 10M)"
    judged = biggest == "10M"  # quick mode measures smaller logs: the value is shown, not judged
    if tot:
        s = tot[0]["seconds"]
        out.append({"target": "Features for 10M events under 20 s (cleaning included)" + scale,
                    "value": f"{fmt_seconds(s)} s", "pass": bool(s is not None and s < 20) if judged else None})
    like = [r for r in find_rows(rows, NAME, "Product:", biggest) if r["note"].endswith("like for like")]
    for r in like:
        what = "one cutoff" if "one cutoff" in r["step"] else "training set"
        out.append({"target": f"Features at least 3× faster than the pandas reference ({what}, same columns)" + scale,
                    "value": ratio_text(r["ratio"]),
                    "pass": bool(r["ratio"] is not None and r["ratio"] <= 1 / 3) if judged else None,
                    "indicative": bool(r["ratio"] is not None and r["ratio"] <= 1 / 3)})
    return out


def _agreement_text(cache: Path, n: int) -> str | None:
    import numpy as np
    import pandas as pd

    try:
        p = pd.read_parquet(cache / f"product_features_{n}.parquet").set_index("user_id")
        r = pd.read_parquet(cache / f"pandas_features_{n}.parquet")
        lt = pd.read_parquet(cache / f"lifetimes_summary_{n}.parquet")
    except OSError:
        return None
    common = r.index.intersection(p.index)
    o90 = float(np.mean(p.loc[common, "orders_90d"].to_numpy() == r.loc[common, "orders_90d"].to_numpy()))
    both = lt.join(p, how="inner")
    freq = float(np.mean(both["frequency"].to_numpy() == both["repeat_purchases"].to_numpy()))
    ten = float(np.mean(np.abs(both["T"].to_numpy() - both["tenure_days"].to_numpy()) < 1))
    text = (f"pandas orders_90d equal for {o90:.2%} of {len(common):,} shared users; lifetimes "
            f"frequency = repeat_purchases for {freq:.2%}, T within a day of tenure_days for "
            f"{ten:.2%} of {len(both):,} shared users")
    full = cache / f"full_features_{n}.parquet"
    if full.exists():
        from bench.reference_features import differences

        f = pd.read_parquet(full)
        attrs = [c for c in f.columns if not pd.api.types.is_numeric_dtype(f[c])
                 and c not in ("user_id", "snapshot_date")]
        problems = differences(p.reset_index(), f, attrs)
        verdict = (f"all {len(f.columns)} columns equal (1e-9) for all " if not problems
                   else "DIFFERS: " + "; ".join(problems[:3]) + " — ")
        text = f"pandas full reference: {verdict}{len(f):,} users; " + text
    return text


def agreement(cache: Path, cfg: dict) -> dict:
    """How often the product agrees with the references on the shared features (same users, same cutoff)."""
    out = {}
    for n in cfg["feature_events"]:
        text = _agreement_text(cache, n)
        if text is not None:
            out[size_label(n)] = text
    return out


SECTION = Section(NAME, "1. Feature building from events", plan, report, targets)
