"""How the product copes with hostile files: every corpus file through the CLI and the app, with its peak memory and
time, each within 1 GB and 10 s.

    python -m bench.bad_input_report [--no-app] [--only NAME ...] [--verbose]

The corpus (bench/badinput/corpus.py) is written into a temp folder. For each file:

* CLI contract, in-process: `inspect`, `build-dataset` and, for files `inspect` accepts, `train --models recency`;
  the file passes cleanly when every command exits 0 or 2 with exactly one `error:` line on failure, no traceback,
  and the outcome the corpus expects (read or refused);
* CLI bounds: `python -m retention_core inspect FILE` in a child process of its own; its peak resident memory (the
  kernel's high-water mark) and its wall time, start-up included;
* app, in a child process of its own (bench/badinput/child.py): the file is uploaded on the Data page through
  streamlit.testing AppTest (a read table goes on to "Build dataset"); it passes cleanly when it is read or answered
  with an error box as expected, nothing unexpected is raised, and the built-in sample loads afterwards. Peak memory is
  the whole app process's (the app alone takes about 350 MB); time is the upload and what it set off, as the analyst
  waits for it (the app's own start-up is not counted).

A file is within bounds when both peaks are at most 1 GB and both times at most 10 s. Children are killed past 4 GB
or 120 s (reported as such) so a lost bound cannot take the machine down. Files that cannot be uploaded (a folder, a
missing path) have no app column.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import retention_core.io as rio
from retention_core.cli import main as cli_main
from bench.badinput.bounded import MAX_PEAK_MB, MAX_SECONDS, inspect_bounded, upload_bounded
from bench.badinput.corpus import build_corpus

KILL_MB, KILL_S = 4096, 120


@contextlib.contextmanager
def _limit(case):
    old = rio.DEFAULT_MAX_MB
    if case.max_mb is not None:
        rio.DEFAULT_MAX_MB = case.max_mb
    try:
        yield
    finally:
        rio.DEFAULT_MAX_MB = old


def _cli(*args) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli_main([str(a) for a in args])
    return rc, out.getvalue() + err.getvalue() if rc == 0 else err.getvalue()


def _contract(rc: int, text: str) -> str | None:
    if rc not in (0, 2):
        return f"exit {rc}"
    if "Traceback" in text:
        return "traceback"
    if rc == 2 and sum(ln.startswith("error: ") for ln in text.splitlines()) != 1:
        return "not exactly one error line"
    return None


def cli_outcome(case, work: Path) -> tuple[bool, str]:
    """The CLI contract for one file, in-process: (passes cleanly, exit codes or what went wrong)."""
    with _limit(case):
        rc, text = _cli("inspect", case.path)
        if (bad := _contract(rc, text)) is not None:
            return False, f"inspect: {bad}"
        if case.expect == "ok" and rc != 0:
            return False, "inspect refused a file that should be read"
        if case.expect == "error" and (rc != 2 or (case.needle and case.needle not in text.lower())):
            return False, "inspect did not refuse it clearly"
        steps = [("build-dataset", case.path, "--out", work / f"{case.name}.ds.csv")]
        if rc == 0:
            steps.append(("train", case.path, "--out", work / "runs" / case.name, "--models", "recency"))
        codes = [f"inspect={rc}"]
        for args in steps:
            rc2, text2 = _cli(*args)
            if (bad := _contract(rc2, text2)) is not None:
                return False, f"{args[0]}: {bad}"
            codes.append(f"{args[0]}={rc2}")
    return True, " ".join(codes)


def cli_bounds(case) -> dict:
    """`inspect` in a child process: outcome (read | error | killed ...), peak MB, seconds."""
    res = inspect_bounded(case, max_mb=KILL_MB, timeout=KILL_S)
    outcome = f"killed ({res.killed})" if res.killed else "read" if res.rc == 0 else "error" if res.rc == 2 \
        else f"exit {res.rc}"
    return {"outcome": outcome, "peak_mb": res.peak_mb, "seconds": res.seconds, "detail": res.stderr.strip()[:200]}


def app_bounds(case) -> dict:
    """The upload in an app of its own: outcome, peak MB of the app process, seconds of the upload, clean or not."""
    res, report = upload_bounded(case, max_mb=KILL_MB, timeout=KILL_S)
    if report is None:
        what = f"killed ({res.killed})" if res.killed else f"no report (exit {res.rc})"
        return {"outcome": what, "peak_mb": res.peak_mb, "seconds": res.seconds, "ok": False,
                "detail": res.stderr.strip()[-200:]}
    outcome = report["outcome"]
    ok = outcome != "crash" and not (case.expect == "ok" and outcome != "read") and \
        not (case.expect == "error" and outcome != "error") and report["after"] is None
    detail = report["detail"] + (f"; then the sample fails: {report['after']}" if report["after"] else "")
    return {"outcome": outcome, "peak_mb": res.peak_mb, "seconds": report["seconds"], "ok": ok, "detail": detail}


def _within(m: dict | None) -> bool:
    return m is None or (not m["outcome"].startswith(("killed", "no report", "exit"))
                         and m["peak_mb"] <= MAX_PEAK_MB and m["seconds"] <= MAX_SECONDS)


def _cell(m: dict | None) -> str:
    return f"{'-':<10} {'':>7} {'':>6}" if m is None else f"{m['outcome'][:10]:<10} {m['peak_mb']:>7.0f} {m['seconds']:>6.1f}"


def print_table(cases, cli: dict, bounds: dict, app: dict) -> None:
    print(f"{'file':<24} {'expect':<6}  {'contract':<8} | {'cli':<10} {'peak MB':>7} {'s':>6} | "
          f"{'app':<10} {'peak MB':>7} {'s':>6} | bounds")
    for c in cases:
        b, a = bounds[c.name], app.get(c.name)
        clean = cli[c.name][0] and (a is None or a["ok"])
        ok = _within(b) and _within(a)
        print(f"{c.name:<24} {c.expect:<6}  {'ok' if clean else 'FAIL':<8} | {_cell(b)} | {_cell(a)} | "
              f"{'within' if ok else 'OVER'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-app", action="store_true", help="skip the app (AppTest) part")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="only these corpus files")
    ap.add_argument("--verbose", action="store_true", help="what each file got, one line per surface")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = [c for c in build_corpus(work / "corpus") if not a.only or c.name in a.only]
        t0 = time.perf_counter()
        cli = {c.name: cli_outcome(c, work) for c in cases}
        bounds = {c.name: cli_bounds(c) for c in cases}
        t_cli = time.perf_counter() - t0
        t0 = time.perf_counter()
        app = {} if a.no_app else {c.name: app_bounds(c) for c in cases if c.upload}
        t_app = time.perf_counter() - t0
    print(f"corpus: {len(cases)} files ({sum(c.upload for c in cases)} uploadable in the app); bounds: "
          f"{MAX_PEAK_MB} MB peak and {MAX_SECONDS} s per file, through the CLI (inspect) and the app (upload)")
    print_table(cases, cli, bounds, app)
    if a.verbose:
        for c in cases:
            print(f"  {c.name}: cli {cli[c.name][1]}; {bounds[c.name]['detail'][:160]}")
            if c.name in app:
                print(f"  {'':<{len(c.name)}}  app {app[c.name]['detail'][:160]}")
    n_cli = sum(ok for ok, _ in cli.values())
    print(f"cli: {n_cli}/{len(cli)} pass cleanly; {sum(map(_within, bounds.values()))}/{len(bounds)} within bounds "
          f"({t_cli:.1f} s)")
    for name, (ok, detail) in cli.items():
        if not ok:
            print(f"  cli FAIL {name}: {detail}")
    if not a.no_app:
        print(f"app: {sum(m['ok'] for m in app.values())}/{len(app)} pass cleanly; "
              f"{sum(map(_within, app.values()))}/{len(app)} within bounds ({t_app:.1f} s)")
        for name, m in app.items():
            if not m["ok"]:
                print(f"  app FAIL {name}: {m['outcome']}: {m['detail'][:140]}")


if __name__ == "__main__":
    main()
