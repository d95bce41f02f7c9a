"""One command for every benchmark: speed against a reference, peak memory, model quality, targets.

    python -m bench.run --quick [--out bench/results]      # small sizes, one run per step: a few minutes
    python -m bench.run --full  [--out bench/results]      # 1M and 10M events, three runs per step
    python -m bench.run --quick --only features,app        # some sections only (features, training, scoring,
                                                           # shap, app, quality, offers, spark, serve)
    python -m bench.run --merge A,B --out C                # one report from partial runs in folders A and B

Every step runs in a fresh Python process, so its peak memory (RSS) is its own and steps do not warm each other up.
Product and reference steps alternate within each run, so background load hits both alike; the median over the runs
is reported, with the ratio to the reference and the machine's core count. Writes ``results.json`` (every
measurement of every run) and ``results.md`` (the tables the README's Performance section shows).

The steps and sections are registered in ``bench/registry.py`` by the modules of ``bench/sections/``; this module
plans the jobs, runs each in a child process (``python -m bench.run --step NAME --params JSON --result FILE``) and
writes the report (``bench/report.py``; merging and rebuilding: ``bench/merge.py``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.common import ROOT, size_label
from bench.measures import Job
from bench.merge import merge, rebuild
from bench.modes import MODES
from bench.registry import STEPS, Plan
from bench.report import build_report, with_agreement, write
from bench.sections import SECTIONS
from bench.sections.features import agreement


def child_main(step: str, params: str, result: str) -> int:
    """Run one step in this (child) process and write what it returns, or its error, to ``result``."""
    import warnings

    warnings.filterwarnings("ignore")
    try:
        out = STEPS[step].run(**json.loads(params))
        out["measures"] = {k: v for k, v in out.get("measures", {}).items() if v is not None}
    except Exception as exc:  # reported in the results, the other steps go on
        out = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-4000:]}
    Path(result).write_text(json.dumps(out, default=str))
    return 0 if "error" not in out else 1


def run_child(job: Job, tmpdir: str) -> dict:
    """The job's step in a child process. Its peak RSS comes from wait4 on that very process, so no other step's
    memory is mixed in."""
    result = Path(tmpdir) / f"result_{time.monotonic_ns()}.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    errf = tempfile.TemporaryFile()
    load = os.getloadavg()[0]
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "bench.run", "--step", job.step, "--params",
                             json.dumps(job.params), "--result", str(result)], cwd=str(ROOT), env=env,
                            stdout=subprocess.DEVNULL, stderr=errf)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0  # reaped by wait4
    wall = time.perf_counter() - t
    if result.exists():
        out = json.loads(result.read_text())
        result.unlink()
    else:
        errf.seek(0)
        out = {"error": "the step process ended without a result: "
                        + errf.read().decode(errors="replace")[-1500:]}
    errf.close()
    # a step whose children outlive it (Spark's JVM) samples its whole process tree: the larger peak counts
    out["peak_rss_mb"] = max(usage.ru_maxrss / 1024, out.pop("peak_tree_mb", None) or 0)
    out["wall_seconds"] = wall
    out["load"] = [load, os.getloadavg()[0]]  # 1-minute load average before and after: how busy the machine was
    return out


def run_job(job: Job, tmpdir: str, log) -> None:
    out = run_child(job, tmpdir)
    job.results.append(out)
    if out.get("peak_rss_mb") is not None:
        job.peaks.append(out["peak_rss_mb"])
    ms = ", ".join(f"{k} {v:.2f} s" for k, v in out.get("measures", {}).items())
    log(f"  {job.key}: {ms or ''}{'  ERROR ' + out['error'] if 'error' in out else ''}"
        f"  (peak {out.get('peak_rss_mb') or 0:,.0f} MB, {out['wall_seconds']:.0f} s wall)")


def plan(cfg: dict, sections: list[str], cache: str) -> tuple[list[Job], list[Job]]:
    """(preparation jobs, measured jobs) for the chosen sections, in report order: the generated logs first, then the
    files the sections derive from them."""
    jobs: list[Job] = []
    events: dict[int, bool] = {}  # generated logs to prepare: size -> a gzip CSV too
    derived: dict[str, Job] = {}
    for name, section in SECTIONS.items():
        if name not in sections:
            continue
        part: Plan = section.plan(cfg, cache)
        jobs += part.jobs
        for n, csv in part.events.items():
            events[n] = events.get(n, False) or csv
        for job in part.prep:
            derived.setdefault(job.key, job)
    prep = [Job("prep", f"generate/{size_label(n)}", "generate", {"cache": cache, "n": n, "csv": csv})
            for n, csv in sorted(events.items())]
    return prep + list(derived.values()), jobs


def measure(cfg: dict, mode: str, sections: list[str], out: Path, cache: Path) -> int:
    """Run the chosen sections' jobs (preparation first, then every run of every job) and write the report."""
    t_start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f} s] {msg}", flush=True)

    prep, jobs = plan(cfg, sections, str(cache.resolve()))
    with tempfile.TemporaryDirectory() as tmp:
        log(f"{mode} mode: {len(jobs)} steps x {cfg['runs']} run(s); {os.cpu_count()} cores; sections {sections}")
        for job in prep:
            run_job(job, tmp, log)
        for i in range(cfg["runs"]):
            log(f"run {i + 1} of {cfg['runs']}")
            for job in jobs:
                if job.once and i > 0:
                    continue
                run_job(job, tmp, log)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "runs": cfg["runs"], "sections": sections,
            "total_seconds": time.perf_counter() - t_start,
            "prep": {j.key: j.results[-1].get("info") for j in prep if j.results}}
    result, md = build_report(jobs, cfg, mode, meta)
    agree = agreement(cache, cfg) if "features" in sections else {}
    result["meta"]["feature_agreement"] = agree
    md = with_agreement(md, agree)
    write(out, result, md)
    log(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    print(md)
    return 0


def _parser() -> argparse.ArgumentParser:
    names = list(SECTIONS)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="small sizes, one run per step (the default)")
    g.add_argument("--full", action="store_true", help="1M and 10M events, three runs per step")
    ap.add_argument("--out", default=str(Path("bench") / "results"), help="folder for results.json and results.md")
    ap.add_argument("--only", default=",".join(names), help=f"comma-separated sections of {', '.join(names)}")
    ap.add_argument("--runs", type=int, help="runs per step (default: 1 quick, 3 full)")
    ap.add_argument("--cache", help="folder for generated event logs (default: OUT/cache; reused between runs)")
    ap.add_argument("--rebuild", action="store_true",
                    help="only rewrite OUT/results.md (and the summary in results.json) from OUT/results.json")
    ap.add_argument("--merge", help="comma-separated OUT folders of partial runs (FOLDER:features+app for some "
                    "sections of one): write one report to --out")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--params", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    a = ap.parse_args(argv)
    if a.step:
        return child_main(a.step, a.params or "{}", a.result)
    mode = "full" if a.full else "quick"
    cfg = dict(MODES[mode])
    if a.runs:
        cfg["runs"] = a.runs
    sections = [s.strip() for s in a.only.split(",") if s.strip()]
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        ap.error(f"unknown section(s) {bad}; choose from {list(SECTIONS)}")
    out = Path(a.out)
    if a.merge:
        return merge([x for x in a.merge.split(",") if x], out)
    if a.rebuild:
        return rebuild(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(a.cache) if a.cache else out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    return measure(cfg, mode, sections, out, cache)


if __name__ == "__main__":
    raise SystemExit(main())
