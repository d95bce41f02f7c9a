"""The pre-trained sequence encoder: event tokens from the past only, the network's size, contrastive pre-training,
late fusion with the aggregates, saving, and the registry's ``encoder`` through the command line."""
from __future__ import annotations

import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest

from retention_core.dataset import build_dataset, scoring_snapshot
from retention_core.event_tokens import KINDS, EventTokens, SequenceInputs, tokenize
from retention_core.events import canonical_events
from retention_core.errors import ConfigError
from retention_core.models import DEFAULT_AUTO, REGISTRY, churn_probability, make_model, model_input
from tests.generated import generated_shop

TINY = dict(item_dim=8, units=16, dim=8, epochs=4, learning_rate=0.01, batch_size=32, pretrain_rows=256,
            view_events=16, max_iter=50, min_samples_leaf=20)


@pytest.fixture(scope="module")
def shop():
    return generated_shop(300, seed=3, days=420, horizon_days=60)


@pytest.fixture(scope="module")
def fitted(shop):
    ev = canonical_events(shop.raw, shop.schema)
    cutoffs = sorted(pd.to_datetime(shop.dataset.frame["snapshot_date"]).unique())
    ds = build_dataset(ev, shop.cfg, cutoffs=cutoffs, event_tokens=32).labelled()
    model = make_model("encoder", numeric=ds.numeric, categorical=ds.categorical, **TINY)
    events = []
    model.fit(_input(ds), ds.frame["churned"], progress=lambda f, m: events.append((f, m)))
    return ev, ds, model, events


def _input(ds, X=None):
    """The encoder's input: the features with the rows' event tokens in their own columns."""
    return model_input("encoder", ds.frame[ds.numeric + ds.categorical] if X is None else X, ds.sequences)


def _log(rows):
    return pd.DataFrame(rows, columns=["user_id", "ts", "amount", "quantity", "product", "category", "is_purchase",
                                       "is_return", "is_cancel", "is_nonproduct"])


def test_tokens_keep_the_latest_events_at_or_before_the_cutoff_oldest_first():
    t = pd.Timestamp
    ev = _log([("a", t("2024-01-01"), 10.0, 1, "p1", None, True, False, False, False),
               ("a", t("2024-01-03"), -5.0, -1, "p1", None, False, True, False, False),
               ("a", t("2024-01-05"), 3.0, 2, "p2", None, True, False, False, False),
               ("a", t("2024-01-05"), 1.0, 1, None, "fees", True, False, False, True),
               ("a", t("2024-02-01"), 99.0, 9, "late", None, True, False, False, False),
               ("b", t("2024-01-02"), 7.0, 1, "p3", None, True, False, False, False)])
    rows = pd.DataFrame({"user_id": ["a", "b", "c"], "snapshot_date": [t("2024-01-10")] * 3})
    tok = tokenize(ev, rows, max_events=3)
    assert tok.length.tolist() == [3, 1, 0]
    assert tok.items[0].tolist() == ["p1", "p2", "fees"]  # the oldest of four dropped, the one after T never read
    assert [KINDS[k] for k in tok.kinds[0]] == ["return", "purchase", "fee"]
    assert tok.items[1].tolist() == ["", "", "p3"] and tok.kinds[1, :2].tolist() == [-1, -1]
    assert tok.items[2].tolist() == ["", "", ""]
    np.testing.assert_allclose(tok.age_days[0], [7.0, 5.0, 5.0])
    np.testing.assert_allclose(tok.values[0, :, 0], np.sign([-5, 3, 1]) * np.log1p([5, 3, 1]), rtol=1e-6)
    np.testing.assert_allclose(tok.values[0, :, 2], np.log1p([2.0, 2.0, 0.0]), rtol=1e-6)  # days since the previous
    assert tok.values[1, 2, 2] == -1.0  # a first event has no gap
    later = tokenize(ev, rows.assign(snapshot_date=t("2024-02-01")), max_events=3)
    assert later.items[0].tolist() == ["p2", "fees", "late"]  # an event exactly at the cutoff counts


def test_sequence_inputs_slice_the_weekly_activity_and_the_tokens_together(shop):
    ev = canonical_events(shop.raw, shop.schema)
    ds = build_dataset(ev, shop.cfg, cutoffs=[shop.dataset.frame["snapshot_date"].max()], event_tokens=16,
                       sequences=True)
    assert isinstance(ds.sequences, SequenceInputs) and len(ds.sequences) == len(ds.frame)
    mask = np.arange(len(ds.frame)) % 2 == 0
    part = ds.subset(mask).sequences
    np.testing.assert_array_equal(np.asarray(part), np.asarray(ds.sequences)[mask])
    np.testing.assert_array_equal(part.tokens.items, ds.sequences.tokens.items[mask])
    assert ds.sequences.tokens.length.max() > 0


def test_encoder_has_over_a_million_parameters_at_production_size():
    from retention_core.models.encoder.network import build_encoder

    spec = REGISTRY["encoder"]
    d = spec.defaults()
    # a catalogue of 4,000 products (Online Retail II has about that many before its cutoffs)
    net = build_encoder(4000 + 2, item_dim=d["item_dim"], units=d["units"], dim=d["dim"])
    assert net.count_params() >= 1_000_000
    assert spec.needs_events and spec.needs_sequences and spec.family == "deep"
    assert "encoder" not in DEFAULT_AUTO  # it does not beat gradient boosting on the measured logs (bench/published)


def test_pretraining_learns_and_reports_every_epoch(fitted):
    _, ds, model, events = fitted
    assert [h["epoch"] for h in model.history_] == [1, 2, 3, 4]
    assert model.history_[-1]["loss"] < model.history_[0]["loss"] - 0.1  # the contrastive loss goes down
    epochs = [m for _, m in events if "pre-training epoch" in m]
    assert len(epochs) == 4 and "contrastive loss" in epochs[0]
    proba = model.predict_proba(_input(ds))
    assert proba.shape == (len(ds.frame), 2) and list(model.classes_) == [0, 1]
    p = churn_probability(model, _input(ds))
    assert np.all((p >= 0) & (p <= 1))
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(ds.frame["churned"], p) > 0.6
    fused = model.fused(_input(ds))
    assert [c for c in fused.columns if c.startswith("recent_pattern_")] == model.embedding_columns
    assert fused[model.embedding_columns].std().min() > 0  # customers get different embeddings


def test_an_event_after_the_cutoff_changes_no_embedding_and_no_score(fitted, shop):
    ev, ds, model, _ = fitted
    T = pd.Timestamp(ds.frame["snapshot_date"].max())
    users = ds.frame.loc[pd.to_datetime(ds.frame["snapshot_date"]) == T, "user_id"].iloc[:5]
    extra = ev[ev["user_id"].isin(users)].groupby("user_id").tail(1).copy()
    extra["ts"] = T + pd.Timedelta(hours=1)
    extra["amount"] = 1e6
    before = scoring_snapshot(ev[ev["ts"] <= T], shop.cfg, T, event_tokens=32)
    after = scoring_snapshot(pd.concat([ev, extra], ignore_index=True), shop.cfg, T, event_tokens=32)
    X0, X1 = (d.frame[ds.numeric + ds.categorical] for d in (before, after))
    np.testing.assert_array_equal(model.embeddings(_input(before, X0)), model.embeddings(_input(after, X1)))
    np.testing.assert_array_equal(model.predict_proba(_input(before, X0)), model.predict_proba(_input(after, X1)))


def test_saved_and_loaded_model_scores_the_same(fitted, tmp_path):
    _, ds, model, _ = fitted
    joblib.dump(model, tmp_path / "m.joblib")
    back = joblib.load(tmp_path / "m.joblib")
    assert "encoder_" not in back.__dict__  # Keras is rebuilt from the weights on first use
    np.testing.assert_allclose(back.predict_proba(_input(ds)), model.predict_proba(_input(ds)), rtol=1e-6)


def test_without_event_tokens_the_encoder_says_what_it_needs(fitted):
    from retention_core.errors import ModelError

    _, ds, model, _ = fitted
    with pytest.raises(ModelError, match="event log"):
        model.predict_proba(ds.frame[ds.numeric + ds.categorical])  # no event tokens in the input
    with pytest.raises(ModelError, match="row for row"):
        model_input("encoder", ds.frame[ds.numeric], SequenceInputs(None, ds.sequences.tokens[:3]))
    with pytest.raises(ConfigError, match="event tokens"):  # weekly activity alone is not enough
        model_input("encoder", ds.frame[ds.numeric], np.asarray(ds.sequences))
    assert isinstance(ds.sequences.tokens, EventTokens)


def test_command_line_trains_and_scores_the_encoder(shop, tmp_path):
    log = tmp_path / "log.csv"
    shop.raw.to_csv(log, index=False)
    run = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "retention_core", "train", str(log), "--out", str(run), "--models",
                        "gbm,encoder", "--epochs", "1", "--horizon", "60"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "pre-training epoch 1/1" in p.stderr and "encoder" in p.stdout
    out = tmp_path / "scores.csv"
    p = subprocess.run([sys.executable, "-m", "retention_core", "score", str(run), str(log), "--out", str(out),
                        "--model", "encoder", "--no-record"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    s = pd.read_csv(out, dtype={"user_id": str})
    assert len(s) > 50 and s["churn_probability"].between(0, 1).all()
    _service_scores_as_the_batch_does(shop, run, s)


def _service_scores_as_the_batch_does(shop, run, batch: pd.DataFrame) -> None:
    """The HTTP service, sent three customers' raw events, gives them the probabilities batch scoring gave."""
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from retention_core.serve import create_app

    users = batch["user_id"].head(3).tolist()
    sub = shop.raw[shop.raw["customer_id"].astype(str).isin(users)]
    rows = sub.astype(object).where(sub.notna(), "").astype(str).to_dict("records")
    as_of = str((pd.to_datetime(shop.raw["event_time"]).max() + pd.Timedelta(days=1)).date())
    with TestClient(create_app(run, model="encoder", warm=False)) as client:
        r = client.post("/v1/score", json={"events": rows, "as_of": as_of, "reasons": 2})
    assert r.status_code == 200, r.text
    got = {a["user_id"]: a["churn_probability"] for a in r.json()["scores"]}
    assert all(a["reasons"] for a in r.json()["scores"])  # explained through the fused trees
    want = batch.set_index("user_id")["churn_probability"]
    for u in users:
        assert got[u] == pytest.approx(float(want[u]), abs=1e-6)


def test_shap_weighs_the_aggregates_and_the_embedding_as_one_unit(fitted):
    from retention_core.explain import Explainer
    from retention_core.explain.fused import PATTERN_UNIT

    _, ds, model, _ = fitted
    X = ds.frame[ds.numeric + ds.categorical]
    ex = Explainer(model, "encoder", X, ds.numeric, ds.categorical, sequences_background=ds.sequences,
                   background_size=50)
    assert ex.units[-1] == PATTERN_UNIT and not any(u.startswith("recent_pattern_") for u in ex.units)
    rows = np.arange(10)
    sv = ex.shap_values(X.iloc[rows], ds.sequences[rows])
    out = ex.model_output(X.iloc[rows], ds.sequences[rows])
    np.testing.assert_allclose(sv.sum(axis=1).to_numpy() + ex.expected_value, out, atol=1e-6)  # exactly additive
    assert np.abs(sv[PATTERN_UNIT]).sum() > 0


def test_event_effects_say_which_recent_events_moved_the_encoders_part(fitted):
    from retention_core.models.encoder.attribution import event_effects, week_effects

    _, ds, model, _ = fitted
    moved = 0
    for i in np.argsort(-ds.sequences.tokens.length, kind="stable")[:10]:  # the longest histories
        x = ds.frame[ds.numeric + ds.categorical].iloc[[i]]
        tok = ds.sequences.tokens[[i]]
        ev = event_effects(model, x, tok)
        assert len(ev) == tok.length[0] and ev["days_before"].is_monotonic_increasing  # most recent first
        moved += ev["effect"].abs().sum() > 0
        if moved:
            break
    assert moved, "leaving events out moves some customer's score through the encoder's part"
    weeks = week_effects(ev)
    assert weeks["events"].sum() == len(ev)
    np.testing.assert_allclose(weeks["effect"].sum(), ev["effect"].sum())


def test_the_boosting_reads_the_embeddings_principal_components_learned_without_labels(fitted):
    from sklearn.base import clone

    _, ds, model, _ = fitted
    rows = _input(ds)
    assert model.components == 4 and model.pca_.n_components_ == 4
    assert model.embedding_columns == [f"recent_pattern_{i}" for i in (1, 2, 3, 4)]
    np.testing.assert_allclose(model.pattern(rows), model.pca_.transform(model.embeddings(rows)), rtol=1e-5, atol=1e-6)
    whole = clone(model).set_params(components=0, epochs=1).fit(rows, ds.frame["churned"])
    assert whole.pca_ is None and len(whole.embedding_columns) == whole.dim
    assert whole.fused(rows)[whole.embedding_columns].shape == (len(rows), whole.dim)
