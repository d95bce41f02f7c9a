"""The report: rows, quality table and targets from the jobs' measurements, as ``results.json`` and ``results.md``."""
from __future__ import annotations

import json
from pathlib import Path

from bench.common import fmt_number, fmt_seconds, ratio_text
from bench.measures import Job, Rows
from bench.sections import SECTIONS


def build_report(jobs: list[Job], cfg: dict, mode: str, meta: dict) -> tuple[dict, str]:
    """(``results.json``'s content, ``results.md``'s text) for these jobs; every section reports what it finds."""
    t = Rows(jobs, cfg, meta)
    for section in SECTIONS.values():
        section.report(t)
    targets = [x for section in SECTIONS.values() for x in section.targets(t)]
    result = {"mode": mode, "meta": meta, "config": cfg, "rows": t.rows, "quality": t.quality, "tables": t.tables,
              "details": t.details, "targets": targets, "jobs": [j.as_dict() for j in jobs]}
    return result, markdown(result)


def _speed_tables(rows: list[dict], tables: dict[str, list[str]]) -> list[str]:
    """Each section's speed rows, followed by the tables of its own it added (offer quality, Spark's phases)."""
    lines = []
    for name, section in SECTIONS.items():
        sec_rows = [r for r in rows if r["section"] == name]
        if not sec_rows and not tables.get(name):
            continue
        lines += [f"## {section.title}", ""]
        if sec_rows:
            lines += ["| step | size | seconds | reference | ref. seconds | vs reference | peak RSS MB | notes |",
                      "|---|---|---:|---|---:|---|---:|---|"]
        for r in sec_rows:
            note = r["note"] + ("; ERROR: " + "; ".join(e[:160] for e in r["errors"]) if r["errors"] else "")
            peak = f"{r['peak_rss_mb']:,.0f}" if r["peak_rss_mb"] else "—"
            lines.append(f"| {r['step']} | {r['size']} | {fmt_seconds(r['seconds'])} | {r['reference']} | "
                         f"{fmt_seconds(r['reference_seconds'])} | {ratio_text(r['ratio'])} | {peak} | {note} |")
        lines += [""] if sec_rows else []
        lines += [*tables[name], ""] if tables.get(name) else []
    return lines


def _quality_table(quality: list[dict]) -> list[str]:
    lines = ["## 6. Model quality on real data", "",
             "Event logs: time holdout (trained on the log cut at the cutoff, scored against the next 90 days). "
             "Telco: 5-fold CV. User tables: seeded, stratified 80/20 splits, `auto` learning from the 80% as "
             "`train` does and a default HistGradientBoostingClassifier on the same 80% and the same feature "
             "columns. `auto` is the model the product picks on its own validation. The reference is "
             "a default scikit-learn HistGradientBoostingClassifier trained by hand (event logs: recency, "
             "orders, revenue and tenure, on the latest labelled snapshot; Telco: every column). Seconds: the "
             "whole training of that model set (settings search included), or of that learner.", "",
             "| dataset | cutoff | model | ROC-AUC | PR-AUC | users | churn rate | seconds |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for q in quality:
        if q.get("model") == "ERROR":
            lines.append(f"| {q['dataset']} | | ERROR | {q.get('error', '')[:200]} | | | | |")
            continue
        users = f"{q['users']:,}" if q.get("users") else ""
        lines.append(f"| {q['dataset']} | {q['cutoff']} | {q['model']} | {fmt_number(q.get('roc_auc'))} | "
                     f"{fmt_number(q.get('pr_auc'))} | {users} | {fmt_number(q.get('churn_rate'), 3)} | "
                     f"{fmt_number(q.get('train_seconds'), 1)} |")
    return lines


def _targets_table(targets: list[dict]) -> list[str]:
    lines = ["## Targets", "", "| target | measured | result |", "|---|---|---|"]
    for t in targets:
        if t["pass"] is None:
            verdict = "not judged" + ("" if "indicative" not in t else
                                      f" (indicative: {'pass' if t['indicative'] else 'fail'})")
        else:
            verdict = "pass" if t["pass"] else "**FAIL**"
        lines.append(f"| {t['target']} | {t['value']} | {verdict} |")
    lines.append("")
    return lines


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [f"# Benchmark results ({result['mode']} mode)", "",
             f"{meta['date']}; {meta['cores']} CPU cores; {meta['platform']}; Python {meta['python']}; "
             f"median of {meta['runs']} run(s) per step (quality: one run); each step in a fresh process; "
             f"total {meta['total_seconds'] / 60:.1f} min.", "",
             "Ratio: the product's time against the reference measured in the same run. Peak RSS: the step's own "
             "process and the processes it started (data set-up included).", ""]
    tables = dict(result.get("tables") or {})
    if result["quality"]:  # right after the quality section's training times
        tables["quality"] = _quality_table(result["quality"]) + tables.get("quality", [])
    lines += _speed_tables(result["rows"], tables)
    if result["targets"]:
        lines += _targets_table(result["targets"])
    return "\n".join(lines)


def with_agreement(md: str, agree: dict) -> str:
    """The report's text followed by the feature agreement lines (product against the references), if any."""
    if not agree:
        return md
    return md + "\n" + "\n".join(f"- Agreement at {k}: {v}" for k, v in agree.items()) + "\n"


def write(out: Path, result: dict, md: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1, default=str))
    (out / "results.md").write_text(md)
