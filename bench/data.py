"""The data the steps measure on: generated event logs (kept in the cache folder and reused between runs), their
canonical tables, and synthetic user tables; the ``generate`` and ``canonical`` steps prepare the files before any
measured step runs."""
from __future__ import annotations

import time
from pathlib import Path

from bench.common import size_label
from bench.measures import Job
from bench.registry import step


def events_file(cache: str, n: int) -> Path:
    return Path(cache) / f"events_{n}.parquet"


def canonical_file(cache: str, n: int) -> Path:
    return Path(cache) / f"canonical_{n}.parquet"


def load_raw(cache: str, n: int):
    import pandas as pd

    return pd.read_parquet(events_file(cache, n))


def canonical(raw):
    from retention_core.events import canonical_events
    from retention_core.roles import infer_schema

    return canonical_events(raw, infer_schema(raw))


@step("generate", section="prep")
def generate(cache: str, n: int, csv: bool = False) -> dict:
    """Generate a log of about ``n`` events once and keep it (Parquet, as the generator writes it; gzip CSV too for
    the upload test)."""
    from assets.generator import generate_for_events, write_events

    path = events_file(cache, n)
    info = {}
    if not path.exists():
        t = time.perf_counter()
        raw = generate_for_events(n, seed=0)
        info["generate_seconds"] = time.perf_counter() - t
        write_events(raw, path)
    if csv:
        gz = Path(cache) / f"events_{n}.csv.gz"
        if not gz.exists():
            raw = load_raw(cache, n)
            raw.to_csv(gz, index=False, compression={"method": "gzip", "compresslevel": 1})
        info["csv_mb"] = gz.stat().st_size / 1e6
    return {"measures": {}, "info": info}


@step("canonical", section="prep")
def canonical_log(cache: str, n: int) -> dict:
    """The canonical event table of the generated log of ``n`` events, kept beside it (steps that start from the
    canonical table read it, so their peak memory is not the cleaning's)."""
    path = canonical_file(cache, n)
    if not path.exists():
        ev = canonical(load_raw(cache, n))
        ev.to_parquet(path)
    return {"measures": {}, "info": {"canonical_mb": path.stat().st_size / 1e6}}


def canonical_job(cache: str, n: int) -> Job:
    """The preparation job that writes :func:`canonical_file` (a section plans it in its ``Plan.prep``)."""
    return Job("prep", f"canonical/{size_label(n)}", "canonical", {"cache": cache, "n": n})


def synthetic(rows: int, extra: int = 0):
    """``rows + extra`` synthetic users: (X, y, sequences, numeric, categorical)."""
    from bench.bench_models import synthetic_users

    return synthetic_users(rows + extra)


def fit_model(key: str, rows: int, epochs: int, X, y, seq, numeric, categorical):
    """The registry's model ``key`` fitted on the first ``rows`` users: (model, seconds of the fit alone)."""
    from retention_core.models import REGISTRY, make_model, model_input

    spec = REGISTRY[key]
    params = {"epochs": epochs} if spec.family == "deep" else {}
    model = make_model(key, numeric=numeric, categorical=categorical, horizon_days=90, **params)
    s = seq[:rows] if spec.needs_sequences else None
    if spec.family == "deep":
        import keras  # noqa: F401  (the import is not training time)
    t = time.perf_counter()
    model.fit(model_input(key, X.iloc[:rows], s), y[:rows])
    return model, time.perf_counter() - t
