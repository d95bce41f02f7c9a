"""One corpus file through the app's Data page in a process of its own, so its peak memory and time can be measured.

    python -m bench.badinput.child FILE [--name NAME] [--max-mb MB]

Starts the app under streamlit.testing AppTest (not timed), uploads FILE as an analyst would (a read table goes on to
"Build dataset"), switches back to the built-in sample, and prints one JSON line: ``outcome`` (read | error | crash),
``detail``, ``seconds`` (the upload and what it set off) and ``after`` (None when the sample still loads). ``--max-mb``
sets the size limit for the upload only (as ``RETENTION_MAX_UPLOAD_MB`` would), not for the sample loaded after it.
The CLI needs no such helper: it is run as ``python -m retention_core inspect FILE``.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class _Upload:
    name: str
    data: bytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--name", help="the file name the upload carries (default: the file's)")
    ap.add_argument("--max-mb", type=float, help="the size limit for the upload (default: the product's)")
    a = ap.parse_args()

    import streamlit.logger
    from streamlit.testing.v1 import AppTest

    import retention_core.io as rio

    streamlit.logger.set_log_level("error")  # no "no runtime" notices: the app runs headless here
    from bench.badinput.app_upload import APP, back_to_sample, upload_outcome

    path = Path(a.file)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    default = rio.DEFAULT_MAX_MB
    rio.DEFAULT_MAX_MB = a.max_mb if a.max_mb is not None else default  # the app runs in this process
    t0 = time.perf_counter()
    outcome, detail = upload_outcome(at, _Upload(a.name or path.name, path.read_bytes()))
    seconds = time.perf_counter() - t0
    rio.DEFAULT_MAX_MB = default
    after = back_to_sample(at)
    print(json.dumps({"outcome": outcome, "detail": detail[:300], "seconds": round(seconds, 3), "after": after}))


if __name__ == "__main__":
    main()
