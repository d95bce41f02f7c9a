"""A saved run reads new data with the column roles it was trained with: a column that only looks like a role the
run never had (an amount, a rating) must not change what its features mean, in scoring, monitoring, offers or the
service; a role whose saved column is missing is found again."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retention_core.bundle import load_run
from retention_core.cells import coerce_types
from retention_core.dataset import SnapshotConfig, build_dataset, training_cutoffs
from retention_core.events import canonical_events
from retention_core.roles import Schema, infer_schema
from retention_core.scoring import features_for_run
from retention_core.training import TrainConfig, train_and_save


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    from assets.generator import generate_events

    raw = coerce_types(generate_events(250, seed=8, days=400).astype(str))  # typed as the file reader types a CSV
    raw = raw.drop(columns=[c for c in ("rating",) if c in raw.columns])
    schema = infer_schema(raw)
    assert schema.roles.get("amount") is None and schema.roles.get("rating") is None
    ev = canonical_events(raw, schema)
    cfg = SnapshotConfig(horizon_days=60)
    ds = build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg))
    home = tmp_path_factory.mktemp("home")
    mp = pytest.MonkeyPatch()
    mp.setenv("RETENTION_HOME", str(home))
    mp.delenv("RETENTION_BUNDLE_KEY", raising=False)
    out = tmp_path_factory.mktemp("runs") / "run"
    train_and_save(out, ds, schema, TrainConfig(models=["logreg"]), snapshot=cfg.as_dict(), digest="test")
    yield raw, load_run(out)
    mp.undo()


def test_a_look_alike_column_does_not_change_the_features(shop):
    raw, run = shop
    rng = np.random.default_rng(0)
    noisy = raw.assign(amount=rng.uniform(-50, 500, len(raw)).round(2), rating=rng.integers(1, 6, len(raw)))
    assert infer_schema(noisy).roles.get("amount") == "amount"  # inference alone would take it as the amount
    a, _ = features_for_run(run, raw)
    b, _ = features_for_run(run, noisy)
    cols = run.info["numeric"] + run.info["categorical"]
    pd.testing.assert_frame_equal(a[["user_id"] + cols].reset_index(drop=True),
                                  b[["user_id"] + cols].reset_index(drop=True))


def test_a_renamed_column_is_found_again(shop):
    raw, run = shop
    saved = Schema.from_dict(run.info["schema"])
    time_col = saved.roles["timestamp"]
    renamed = raw.rename(columns={time_col: "when"})
    overrides = saved.for_new_data(renamed.columns)
    assert "timestamp" not in overrides  # absent from the data: left to inference
    assert overrides["amount"] is None and overrides["kind"] == "events"
    a, _ = features_for_run(run, raw)
    b, _ = features_for_run(run, renamed)
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_for_new_data_options():
    s = Schema(kind="users", roles={"user_id": "id", "label": "Churn", "amount": None}, attributes=["plan", "x"],
               label_positive="Yes")
    o = s.for_new_data(["id", "Churn", "plan"])
    assert o == {"user_id": "id", "label": "Churn", "amount": None, "kind": "users", "attributes": ["plan"],
                 "label_positive": "Yes"}
    o = s.for_new_data(["id", "plan"], label=False, attributes=False)
    assert o == {"user_id": "id", "amount": None, "kind": "users", "label_positive": "Yes"}
