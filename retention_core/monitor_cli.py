"""Command line, the monitor command: ``monitor RUN DATA`` (realised quality, drift and campaign results of the
recorded scorings), ``monitor RUN --list`` and ``monitor RUN --delete ID`` (the scoring history). Part of the command
line (:mod:`retention_core.cli` adds it to its parser and dispatches to it)."""
from __future__ import annotations

import json
import os

from .bundle import load_run
from .errors import EXIT_OK, UsageError
from .io import read_table


def monitor_parser(sub) -> None:
    s = sub.add_parser("monitor", help="compare a run's recorded scorings with what happened, and check drift; list "
                                       "or delete recorded scorings")
    s.add_argument("run", help="run folder (or the name of a run deleted since it scored)")
    s.add_argument("data", nargs="?", help="new data: the log that covers the scored dates and the horizon after them")
    s.add_argument("--sheet", help="Excel sheet to read (default: the sheet holding the main table)")
    s.add_argument("--json", action="store_true", help="print the report (or, with --list, the scorings) as JSON")
    s.add_argument("--out", help="also write the full report as JSON to this file")
    s.add_argument("--cost-per-contact", type=float, metavar="C", help="what one contact cost: campaign results "
                   "then give the contacts' cost, the net and the return on it")
    what = s.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="list the run's recorded scorings with their ids (no DATA)")
    what.add_argument("--delete", metavar="ID", help="delete the recorded scoring with this id from the scoring "
                                                     "history (no DATA; --list shows the ids)")


def cmd_monitor(args) -> int:
    """Realised outcomes of a run's recorded scorings in new data, drift and the verdict; or list or delete the
    run's recorded scorings."""
    from .export import atomic_target
    from .monitor import monitor_report

    if args.list or args.delete:
        if args.data or args.out:
            raise UsageError(f"{'--list' if args.list else '--delete'} takes no DATA and no --out")
        return _list_scorings(args) if args.list else _delete_scoring(args)
    if not args.data:
        raise UsageError("monitor needs DATA, the new data to check the scorings against (or --list, --delete ID)")
    if os.path.isfile(os.path.join(args.run, "run.json")) and load_run(args.run).task == "uplift":
        raise UsageError("monitor follows the scorings of churn runs; this run holds uplift learners, whose scorings "
                         "are not recorded")
    df = read_table(args.data, sheet=args.sheet)
    report = monitor_report(args.run, df, cost_per_contact=args.cost_per_contact)
    text = report.to_json()
    if args.out:
        with atomic_target(args.out) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    if args.json:
        print(text)
        return EXIT_OK
    _print_report(report)
    return EXIT_OK


LISTED = ["scoring_id", "as_of", "model", "users", "source", "recorded_at", "data_name", "observable_from"]


def _recorded(run: str):
    from .errors import BundleError
    from .monitor import scorings

    rows = scorings(run)
    if not len(rows) and not os.path.isdir(run):
        raise BundleError(f"There is no saved run at {run!r} and the scoring history knows no run by that name or "
                          "folder.")
    return rows


def _list_scorings(args) -> int:
    """The run's recorded scorings, oldest first, with the id --delete takes."""
    rows = _recorded(args.run)
    rows = rows.assign(recorded_at=_minutes(rows["recorded_at"]))[LISTED]
    if args.json:
        print(json.dumps(rows.to_dict("records"), indent=1, default=str))
        return EXIT_OK
    name = os.path.basename(os.path.abspath(args.run)) if os.path.isdir(args.run) else args.run
    print(f"run {name}: {len(rows)} recorded scoring(s)" + ("" if len(rows) else "; nothing to list"))
    if len(rows):
        show = rows.assign(users=[f"{int(u):,}" for u in rows["users"]]).fillna("-").astype(str)
        head = ["id", "as of", "model", "users", "from", "recorded", "data", "observable from"]
        cells = [head] + show.to_numpy().tolist()
        widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
        for row in cells:
            print("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
        print(f"delete one with: monitor {args.run} --delete ID")
    return EXIT_OK


def _delete_scoring(args) -> int:
    from .monitor import delete_scoring

    _recorded(args.run)
    gone = delete_scoring(args.delete, args.run)
    group = f", {int(gone['recordings'])} service requests" if int(gone.get("recordings") or 1) > 1 else ""
    print(f"deleted scoring {gone['scoring_id']} (as of {gone['as_of']}, {gone['model']}, {int(gone['users']):,} "
          f"users{group}) from the scoring history")
    return EXIT_OK


def _minutes(times) -> list[str]:
    """Recording times to the minute, as the list shows them."""
    import pandas as pd

    return [pd.Timestamp(t).strftime("%Y-%m-%d %H:%M") if pd.notna(t) else "" for t in times]


def _print_report(report) -> None:
    print(f"run {report.run}: {len(report.scorings)} recorded scoring(s)"
          + (f"; data up to {report.data_end}" if report.data_end else ""))
    for _, r in report.scorings.iterrows():
        head = f"  {r['as_of']} {r['model']}: {int(r['users']):,} users scored"
        if r["status"] != "observed":
            print(f"{head}, not observed yet (from {r['observable_from']})" if r["status"] == "waiting"
                  else f"{head}, none of them in the data")
            continue
        fig = {k: r[k] for k in ("roc_auc", "recall_at_10pct")}
        val = {k: r[f"validation_{k}"] for k in ("roc_auc", "recall_at_10pct")}
        print(f"{head}, {int(r['observed']):,} observed: churn {r['churn_rate']:.1%} vs {r['predicted_rate']:.1%} "
              f"predicted; ROC-AUC {_f(fig['roc_auc'])} (validation {_f(val['roc_auc'])}), recall@10% "
              f"{_f(fig['recall_at_10pct'])} (validation {_f(val['recall_at_10pct'])}), Brier {_f(r['brier'])}")
    d = report.drift
    score = report.score_drift or {}
    when = f" as of {report.drift_info['as_of']}" if report.drift_info.get("as_of") else ""
    print(f"drift of {report.drift_info.get('users', 0):,} users{when} against the {report.drift_info.get('reference')}"
          f": score PSI {_f(score.get('psi'))}")
    ageing = d["expected_ageing"].astype(bool) if "expected_ageing" in d else d["feature"].map(lambda _: False)
    name = (lambda r: r["label"]) if "label" in d else (lambda r: r["feature"])  # the feature's label
    for _, r in d[~ageing].head(10).iterrows():
        print(f"  {name(r):<36} PSI {_f(r['psi'])} {r['band'] or ''}")
    aged = d[ageing & d["band"].isin(["moderate", "act"])]
    if len(aged):
        print("expected ageing (these grow as customers' histories get longer; never a reason to watch or retrain): "
              + ", ".join(f"{name(r)} PSI {_f(r['psi'])}" for _, r in aged.iterrows()))
    for note in report.notes:
        print(f"note: {note}")
    print(report.verdict.text)
    for line in report.campaign_lines():  # campaigns with a control group: the headline, then per segment
        print(line)


def _f(v) -> str:
    return "n/a" if v is None or v != v else f"{float(v):.3f}"


