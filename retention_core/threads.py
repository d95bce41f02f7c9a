"""One math-library thread per process, for the scoring service (imported before NumPy, so it imports nothing heavy).

A service runs one worker process per core; each request is small, so a math library that starts a thread per core in
every worker only makes the workers fight over the cores: with default threads, a tree model's p99 rose from about
8 ms to over 500 ms under concurrent requests (DESIGN.md, "Serving, monitoring, scale"). These variables must be set
before NumPy, scikit-learn or TensorFlow load their thread pools; ``python -m retention_core serve`` sets them first
thing, and :func:`retention_core.serve.create_app` also caps the pools already loaded (threadpoolctl).
"""
from __future__ import annotations

import os

#: Environment variables read by OpenMP, OpenBLAS, MKL, Accelerate, numexpr and TensorFlow at start-up.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def one_math_thread() -> None:
    """Set every math library's thread count to 1 unless the operator set it explicitly (inherited by the workers
    uvicorn starts)."""
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
