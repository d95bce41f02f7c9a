"""Peak memory of the scoring service for big request bodies, on the real server (``python -m retention_core serve``).

    python -m bench.serve_memory                                  # this checkout
    python -m bench.serve_memory --code DIR [--code DIR2 ...]     # other checkouts of the product, same run and bodies

For each checkout and body: the server is started afresh on a gradient-boosting run trained on a generated
300-customer shop (cached in ``--work``), its peak counter reset once it answers (``/proc/PID/clear_refs``) and the
body sent: the server's peak (VmHWM) minus its resident memory just before (VmRSS) is what that body cost. The bodies, from the
shop's rows as CSV text cells (the way a site sends them):

- 19.5 MB of short rows (the columns with a role only, empty cells left out, compact JSON: about 150,000 events of
  about 5,000 customers), under the 20 MB body limit and over the 50,000-event row limit: 413 since the limit,
  scored before it;
- 50,000 full rows (about 14 MB, about 1,600 customers): the most the row limit lets through, scored;
- one customer's last 50 events: the ordinary request.

Prints one line per checkout and body; ``--json FILE`` keeps them. Not a timed test: the figures depend on the
machine and the libraries' versions; compare checkouts in one run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from bench.bench_serve import free_port, make_log, peak_mb, train, use_signing_key

ROOT = Path(__file__).resolve().parents[1]
BIG_BODY_BYTES = 19_500_000
AT_LIMIT = 50_000
ROLE_COLUMNS = ["customer_id", "event_time", "event_type", "order_id", "quantity", "unit_price"]


def prepare(work: Path) -> tuple[Path, dict[str, bytes]]:
    """The run (trained once) and the request bodies."""
    use_signing_key()
    work.mkdir(parents=True, exist_ok=True)
    csv, as_of = work / "shop.csv", str((pd.Timestamp("2023-01-01") + pd.Timedelta(days=540)).date())
    if not csv.exists():
        make_log(300, work)
    run = work / "run_gbm"
    if not (run / "run.json").exists():
        train(csv, "gbm", run)
    raw = pd.read_csv(csv, dtype=str, keep_default_na=False)
    raw = raw[raw["event_time"] < as_of]
    one = raw[raw["customer_id"] == raw["customer_id"].value_counts().index[0]].tail(50).to_dict("records")
    short = [{k: v for k, v in r.items() if v != ""} for r in raw[ROLE_COLUMNS].to_dict("records")]
    per_row = len(json.dumps(_copies(short, 2 * len(short)), separators=(",", ":"))) / (2 * len(short))
    n = int(BIG_BODY_BYTES / per_row)
    bodies = {}
    for name, events, separators in ((f"{n:,} short events", _copies(short, n), (",", ":")),
                                     (f"{AT_LIMIT:,} events", _copies(raw.to_dict("records"), AT_LIMIT), None),
                                     ("one customer's 50 events", one, None)):
        bodies[name] = json.dumps({"events": events, "as_of": as_of}, separators=separators).encode()
    return run, bodies


def _copies(rows: list[dict], n: int) -> list[dict]:
    """``n`` rows: the log's rows again and again, each copy with customers of its own (``C000123-2``), so that a
    bigger body holds more customers, as a real one would."""
    return [{**r, "customer_id": f"{r['customer_id']}-{i // len(rows)}"} if i >= len(rows) else r
            for i, r in ((i, rows[i % len(rows)]) for i in range(n))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@contextmanager
def server(code: Path, run: Path):
    """The real server of checkout ``code`` on ``run``, started afresh: (process id, base address)."""
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    env.pop("RETENTION_API_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "retention_core", "serve", str(run), "--port", str(port)], cwd=code,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise SystemExit(f"the service exited: {proc.stderr.read()[-2000:]}")
            try:
                if httpx.get(base + "/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield proc.pid, base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def measure(code: Path, run: Path, name: str, body: bytes) -> dict:
    """One body sent to a fresh server: its answer, and what it added to the server's peak memory."""
    import httpx

    with server(code, run) as (pid, base), httpx.Client(base_url=base, timeout=600) as client:
        client.get("/v1/model")
        before = rss_mb(pid)
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak counter starts again from now
        t0 = time.perf_counter()
        r = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
        seconds = time.perf_counter() - t0
        peak = peak_mb(pid)
    return {"code": str(code), "body": name, "body_mb": len(body) / 1e6, "status": r.status_code,
            "seconds": seconds, "rss_before_mb": before, "peak_mb": peak, "added_mb": peak - before,
            "message": r.json().get("message", "")[:160] if r.status_code != 200 else ""}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--code", action="append", type=Path, help="a checkout of the product (default: this one)")
    p.add_argument("--work", type=Path, default=ROOT / "bench" / "results" / "serve_memory")
    p.add_argument("--json", type=Path, help="write the measurements here too")
    args = p.parse_args(argv)
    run, bodies = prepare(args.work)
    results = []
    for code in args.code or [ROOT]:
        for name, body in bodies.items():
            m = measure(code.resolve(), run, name, body)
            results.append(m)
            print(f"{m['code']}: {m['body']}, {m['body_mb']:.1f} MB -> {m['status']} in {m['seconds']:.2f} s; server "
                  f"{m['rss_before_mb']:.0f} MB before, peak {m['peak_mb']:.0f} MB (+{m['added_mb']:.0f} MB)"
                  + (f"; {m['message']}" if m["message"] else ""), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
