"""The benchmark's registry: every step a child process can run (name -> function and section) and every section
(name -> how it plans its jobs, reports its rows and judges its targets).

Steps register themselves with :func:`step` where they are defined (``bench/sections/*.py``, ``bench/data.py``);
``bench.sections`` imports each section module by name and lists the sections in report order, so importing it fills
both registries. Nothing is found by scanning names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Step:
    """One measured (or preparation) step: ``run(**params)`` returns ``{"measures": {name: seconds}, "info": {...},
    "rows": [...]}``; set-up outside the measures is not timed. A step whose child processes outlive it (the JVM of
    Spark) adds ``"peak_tree_mb"``, the peak it sampled over its whole process tree; the runner keeps the larger of
    that and the peak ``wait4`` reports."""
    name: str
    section: str
    run: Callable[..., dict]


STEPS: dict[str, Step] = {}


def step(name: str, section: str) -> Callable:
    """Register the decorated function as the step ``name`` of ``section``."""
    def register(fn: Callable[..., dict]) -> Callable[..., dict]:
        if name in STEPS:
            raise ValueError(f"benchmark step {name!r} is registered twice")
        STEPS[name] = Step(name, section, fn)
        return fn
    return register


@dataclass
class Plan:
    """A section's jobs for one mode, the generated event logs they read (size -> a gzip CSV is needed too) and the
    preparation jobs that derive files from those logs (run once, after the logs exist and before any measured step;
    a key planned by two sections runs once)."""
    jobs: list = field(default_factory=list)
    events: dict[int, bool] = field(default_factory=dict)
    prep: list = field(default_factory=list)


def _no_targets(t) -> list[dict]:
    return []


@dataclass(frozen=True)
class Section:
    """A section of the report: ``plan(cfg, cache) -> Plan``; ``report(t)`` adds its rows (and any table and details
    of its own) to a :class:`bench.measures.Rows` ``t``; ``targets(t)`` judges what the report holds."""
    name: str
    title: str
    plan: Callable[[dict, str], Plan]
    report: Callable
    targets: Callable[..., list] = _no_targets
