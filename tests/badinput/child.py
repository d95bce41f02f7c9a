"""One corpus file through the app's Data page in a process of its own, so its peak memory and time can be measured.

    python -m tests.badinput.child FILE [--name NAME] [--expect ok|error|either]

Starts the app under streamlit.testing AppTest (not timed), uploads FILE as an analyst would (a read table goes on to
"Build dataset"), switches back to the built-in sample, and prints one JSON line: ``outcome`` (read | error | crash),
``detail``, ``seconds`` (the upload and what it set off) and ``after`` (None when the sample still loads). The size
limit is the product's own (``RETENTION_MAX_UPLOAD_MB`` in the environment). The CLI needs no such helper: it is run
as ``python -m retention_core inspect FILE``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


@dataclass
class _Upload:
    name: str
    data: bytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--name", help="the file name the upload carries (default: the file's)")
    a = ap.parse_args()

    import streamlit.logger
    from streamlit.testing.v1 import AppTest

    streamlit.logger.set_log_level("error")  # no "no runtime" notices: the app runs headless here
    from tests.app.test_bad_inputs_app import APP, back_to_sample, upload_outcome

    path = Path(a.file)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    t0 = time.perf_counter()
    outcome, detail = upload_outcome(at, _Upload(a.name or path.name, path.read_bytes()))
    seconds = time.perf_counter() - t0
    after = back_to_sample(at)
    print(json.dumps({"outcome": outcome, "detail": detail[:300], "seconds": round(seconds, 3), "after": after}))


if __name__ == "__main__":
    main()
