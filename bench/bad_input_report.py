"""How the product copes with hostile files: the corpus size and how many pass cleanly through the CLI and the app.

    python -m bench.bad_input_report [--no-app] [--verbose]

The corpus (tests/badinput/corpus.py) is written into a temp folder. CLI: `inspect`, `build-dataset` and, for files
`inspect` accepts, `train --models recency`, run in-process; a file passes cleanly when every command exits 0 or 2
with exactly one `error:` line on failure, no traceback, and the outcome the corpus expects (read or refused).
App: the file is uploaded on the Data page through streamlit.testing AppTest; it passes cleanly when it is read or
answered with an error box as expected, nothing unexpected is raised, and the built-in sample loads afterwards.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import retention_core.io as rio  # noqa: E402
from retention_core.cli import main as cli_main  # noqa: E402
from tests.badinput.corpus import build_corpus  # noqa: E402


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


def app_outcomes(cases) -> dict[str, tuple[bool, str]]:
    import streamlit.logger
    from streamlit.testing.v1 import AppTest

    streamlit.logger.set_log_level("error")  # no "no runtime" notices: the app runs headless here

    from tests.app.test_bad_inputs_app import APP, back_to_sample, upload_outcome

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    out = {}
    for case in cases:
        if not case.upload:
            continue
        with _limit(case):
            outcome, detail = upload_outcome(at, case)
        ok = outcome != "crash" and not (case.expect == "ok" and outcome != "read") and \
            not (case.expect == "error" and outcome != "error")
        after = back_to_sample(at)
        if after is not None:
            ok, detail = False, f"{detail}; then the sample fails: {after}"
        out[case.name] = (ok, f"{outcome}: {detail}"[:140])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-app", action="store_true", help="skip the app (AppTest) part")
    ap.add_argument("--verbose", action="store_true", help="one line per file")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = build_corpus(work / "corpus")
        t0 = time.perf_counter()
        cli = {c.name: cli_outcome(c, work) for c in cases}
        t_cli = time.perf_counter() - t0
        t0 = time.perf_counter()
        app = {} if a.no_app else app_outcomes(cases)
        t_app = time.perf_counter() - t0
    uploadable = sum(c.upload for c in cases)
    print(f"corpus: {len(cases)} files ({uploadable} uploadable in the app)")
    if a.verbose:
        for c in cases:
            ok, detail = cli[c.name]
            print(f"  {c.name:<24} [{c.expect:<6}] cli {'ok  ' if ok else 'FAIL'} {detail}")
            if c.name in app:
                ok, detail = app[c.name]
                print(f"  {'':<24} {'':<8} app {'ok  ' if ok else 'FAIL'} {detail}")
    n_cli = sum(ok for ok, _ in cli.values())
    print(f"cli: {n_cli}/{len(cli)} pass cleanly ({t_cli:.1f} s)")
    for name, (ok, detail) in cli.items():
        if not ok:
            print(f"  cli FAIL {name}: {detail}")
    if not a.no_app:
        n_app = sum(ok for ok, _ in app.values())
        print(f"app: {n_app}/{len(app)} pass cleanly ({t_app:.1f} s)")
        for name, (ok, detail) in app.items():
            if not ok:
                print(f"  app FAIL {name}: {detail}")


if __name__ == "__main__":
    main()
