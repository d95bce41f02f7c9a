"""A generated shop log and its labelled snapshots at the training cutoffs, as many tests need them (small, seeded)."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from retention_core.dataset import Dataset, SnapshotConfig, build_dataset, training_cutoffs
from retention_core.events import canonical_events
from retention_core.roles import Schema, infer_schema


@dataclass
class GeneratedShop:
    raw: pd.DataFrame
    schema: Schema
    cfg: SnapshotConfig
    dataset: Dataset


def generated_shop(users: int, *, seed: int, days: int, horizon_days: int = 60, **snapshot) -> GeneratedShop:
    """``users`` customers over ``days`` days (``assets.generator.generate_events``), read as the product reads a log,
    and the dataset of its training cutoffs (``snapshot``: more :class:`SnapshotConfig` settings, e.g. step_days)."""
    from assets.generator import generate_events

    raw = generate_events(users, seed=seed, days=days)
    schema = infer_schema(raw)
    ev = canonical_events(raw, schema)
    cfg = SnapshotConfig(horizon_days=horizon_days, **snapshot)
    return GeneratedShop(raw, schema, cfg, build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg)))
