"""Lifecycle stages on real logs: does the realised churn rise from active to slipping to lapsed?

    python -m bench.bench_stages [--out bench/published]

For each log and cutoff T, the customers a scoring at T holds (a purchase in the 365 days before T; features from
events at or before T only, as the leakage tests check) get their stage with the product's rules
(:func:`retention_core.lifecycle.assign_stages`), measured against the shop's rhythm as a run trained on the log cut
at T would hold it: the usual gaps of its validation users, the snapshot one horizon (90 days) before T. Their label
is what they really did in (T, T + 90 days] in the full log. Printed and written (``stages.md``, ``stages.json``):

- per log and cutoff, customers and realised churn per stage with the default rules;
- the rules tried around the defaults, and whether each keeps active < slipping < lapsed at every cutoff, with its
  smallest step (the smaller of slipping - active and lapsed - slipping, over all cutoffs).

Reads ../shared/data (Online Retail II, CDNOW).
"""
from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import DATA, ROOT
from retention_core.dataset import SnapshotConfig, build_dataset
from retention_core.events import canonical_events
from retention_core.io import read_table
from retention_core.lifecycle import STAGES, StageRules, assign_stages, shop_gaps, stage_counts
from retention_core.roles import infer_schema

HORIZON = 90
LOGS = {
    "Online Retail II": ("online_retail_ii_2009_2010.parquet", ["2010-09-10", "2010-08-11", "2010-07-12", "2010-06-12"]),
    "CDNOW": ("cdnow_master.txt", ["1998-04-01", "1998-01-01", "1997-10-01"]),
}
#: The rules tried around the defaults: slipping after, lapsed after (usual gaps), the long gap's percentile.
GRID = {"slipping_gaps": (1.0, 1.5, 2.0), "lapsed_gaps": (2.0, 3.0, 4.0), "long_gap_percentile": (75.0, 90.0)}


def snapshots(file: str, cutoffs: list[str]) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """cutoff -> (the customers scored at it with their labels, the validation users of a run trained on the log
    cut at it: the snapshot one horizon before)."""
    raw = read_table(DATA / file)
    ev = canonical_events(raw, infer_schema(raw))
    cfg = SnapshotConfig(horizon_days=HORIZON)
    refs = [str((pd.Timestamp(c) - pd.Timedelta(days=HORIZON)).date()) for c in cutoffs]
    frame = build_dataset(ev, cfg, cutoffs=sorted(set(cutoffs + refs))).frame
    by_date = {str(pd.Timestamp(d).date()): g.reset_index(drop=True) for d, g in frame.groupby("snapshot_date")}
    return {c: (by_date[c], by_date[r]) for c, r in zip(cutoffs, refs)}


def churn_by_stage(scored: pd.DataFrame, reference: pd.DataFrame, rules: StageRules) -> pd.DataFrame:
    stage = assign_stages(scored, rules, reference=shop_gaps(reference))
    return stage_counts(stage, scored["churned"].to_numpy(dtype=float))


def rising(table: pd.DataFrame) -> tuple[bool, float]:
    """Whether churn rises active < slipping < lapsed, and the smaller of the two steps."""
    c = table.set_index("stage")["churn_rate"]
    a, s, lp = c.get("active", np.nan), c.get("slipping", np.nan), c.get("lapsed", np.nan)
    step = float(min(s - a, lp - s))
    return bool(a < s < lp), step


def measure() -> dict:
    per_cut, grid = [], []
    data = {name: snapshots(file, cuts) for name, (file, cuts) in LOGS.items()}
    for name, cuts in data.items():
        for cutoff, (scored, ref) in cuts.items():
            t = churn_by_stage(scored, ref, StageRules())
            ok, step = rising(t)
            per_cut.append({"log": name, "cutoff": cutoff, "customers": int(len(scored)),
                            "churn_rate": float(scored["churned"].mean()), "rising": ok, "step": step,
                            "stages": t.to_dict("records")})
    keys = list(GRID)
    for values in itertools.product(*GRID.values()):
        params = dict(zip(keys, values))
        if params["lapsed_gaps"] <= params["slipping_gaps"]:
            continue
        rules = StageRules(**params)
        tables = {(name, c): churn_by_stage(s, r, rules) for name, cuts in data.items() for c, (s, r) in cuts.items()}
        results = [rising(t) for t in tables.values()]
        lapsed = {name: float(np.mean([t.set_index("stage").loc["lapsed", "share"] for (n, _), t in tables.items()
                                       if n == name])) for name in data}
        grid.append({**params, "rising_everywhere": all(ok for ok, _ in results),
                     "smallest_step": float(min(step for _, step in results)), "lapsed_share": lapsed,
                     "default": rules == StageRules()})
    grid.sort(key=lambda g: -g["smallest_step"])
    return {"horizon_days": HORIZON, "rules": StageRules().as_dict(), "cutoffs": per_cut, "grid": grid}


def _pct(v) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:.1%}"


def report(res: dict) -> str:
    r = res["rules"]
    lines = ["# Lifecycle stages on real logs", "",
             f"Rules (defaults of `retention_core.lifecycle.StageRules`): new = first purchase within "
             f"{r['new_days']} days or one purchase not overdue; slipping = no purchase for longer than "
             f"{r['slipping_gaps']:g} usual gaps and the shop's typical (median) gap; lapsed = longer than "
             f"{r['lapsed_gaps']:g} usual gaps and the shop's {r['long_gap_percentile']:g}th-percentile gap. "
             f"Realised churn: no purchase in the {res['horizon_days']} days after the cutoff.", "",
             "| log | cutoff | customers | " + " | ".join(f"{s}: customers (churn)" for s in STAGES) +
             " | all | rises active < slipping < lapsed |",
             "|---|---|---:|" + "---:|" * len(STAGES) + "---:|---|"]
    for c in res["cutoffs"]:
        cells = [f"{s['customers']:,} ({_pct(s.get('churn_rate'))})" for s in c["stages"]]
        lines.append(f"| {c['log']} | {c['cutoff']} | {c['customers']:,} | " + " | ".join(cells) +
                     f" | {_pct(c['churn_rate'])} | {'yes' if c['rising'] else '**no**'} "
                     f"(step {c['step'] * 100:+.1f} pts) |")
    lines += ["", "Rules tried (new = 30 days throughout), best smallest step first:", "",
              "| slipping after (gaps) | lapsed after (gaps) | long gap percentile | rises at every cutoff | "
              "smallest step | " + " | ".join(f"lapsed share, {n} (mean)" for n in LOGS) + " |",
              "|---:|---:|---:|---|---:|" + "---:|" * len(LOGS)]
    for g in res["grid"]:
        mark = " (default)" if g["default"] else ""
        lines.append(f"| {g['slipping_gaps']:g}{mark} | {g['lapsed_gaps']:g} | {g['long_gap_percentile']:g} | "
                     f"{'yes' if g['rising_everywhere'] else 'no'} | {g['smallest_step'] * 100:+.1f} pts | " +
                     " | ".join(_pct(g["lapsed_share"][n]) for n in LOGS) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "published"), help="folder for stages.md and stages.json")
    args = ap.parse_args(argv)
    res = measure()
    text = report(res)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "stages.json").write_text(json.dumps(res, indent=1, default=float))
    (out / "stages.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
