"""A filled Monitor page for a newcomer: train on the early part of the built-in sample, score a few early dates,
record them and monitor them with the whole sample (whose later months hold what really happened)."""
from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ..bundle import load_run, run_path
from ..dataset import build_dataset, data_end, default_config, training_cutoffs
from ..events import canonical_events
from ..io import read_table
from ..roles import infer_schema
from ..scoring import score_file
from ..training import TrainConfig, train_and_save
from .recording import record_scoring
from .report import MonitorReport, monitor_report

DEMO_RUN = "monitor-demo"


def demo_dates(ev: pd.DataFrame, horizon_days: int, scorings: int, step_days: int = 60) -> list[pd.Timestamp]:
    """Scoring dates, earliest first, the last one a full horizon before the end of the data."""
    last = data_end(ev) - pd.Timedelta(days=horizon_days + 1)
    return [last - pd.Timedelta(days=step_days * i) for i in range(scorings)][::-1]


def demo_on_sample(workspace, *, events: pd.DataFrame | None = None, models=("logreg",), scorings: int = 3,
                   run_name: str = DEMO_RUN, progress: Callable[[str], None] | None = None) -> MonitorReport:
    """Train ``models`` (fast ones) on the sample up to its first scoring date, score ``scorings`` dates 60 days
    apart, record them in ``workspace`` (its ``runs/`` gets the run, its ``history.duckdb`` the scorings) and return
    the monitoring report on the whole sample. ``events`` is the raw sample (read from the shipped file when not
    given). Takes seconds; use a workspace of its own (e.g. a temporary folder) to keep the demo apart."""
    say = progress or (lambda text: None)
    if events is None:
        from assets.generator import (
            sample_path,  # the shipped sample lives beside the library
        )

        events = read_table(sample_path())
    schema = infer_schema(events)
    ev = canonical_events(events, schema)
    cfg = default_config(ev)
    dates = demo_dates(ev, cfg.horizon_days, scorings)
    early = ev[ev["ts"] <= dates[0]].reset_index(drop=True)
    say(f"training {', '.join(models)} on the sample up to {dates[0].date()}")
    ds = build_dataset(early, cfg, cutoffs=training_cutoffs(early, cfg))
    _, path = train_and_save(run_path(run_name, workspace), ds, schema, TrainConfig(models=list(models)),
                             snapshot=cfg.as_dict(), digest=events.attrs.get("digest", ""), name=run_name)
    run = load_run(path)
    for T in dates:
        say(f"scoring as of {T.date()}")
        record_scoring(run, score_file(run, events, as_of=T), source="demo", data_name="sample",
                       workspace=workspace)
    say("comparing the scores with what happened")
    return monitor_report(run, events, workspace=workspace)
