"""The pre-trained sequence encoder in the app, through AppTest: a run with the encoder scores an uploaded log on the
At-risk page, which then shows, for a listed customer, which weeks and which of their recent events moved the
encoder's part of the risk (each event left out in turn), in the analyst's words."""
from __future__ import annotations

import pytest

from assets.generator import generate_events, write_events
from retention_core import bundle
from retention_core.dataset import SnapshotConfig, build_dataset, training_cutoffs
from retention_core.events import canonical_events
from retention_core.roles import infer_schema
from retention_core.training import TrainConfig, train_and_save
from ui.state import Key, widget_key

from tests.app.helpers import no_exception, texts, with_upload
from tests.app.helpers import env as _env

RUN = "encoder run"
TINY = dict(item_dim=8, units=16, dim=8, epochs=2, learning_rate=0.01, batch_size=32, pretrain_rows=256,
            view_events=16, max_iter=50, min_samples_leaf=20)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A run of the encoder (tiny, for speed) trained on a generated shop's log, saved in the workspace."""
    tmp = tmp_path_factory.mktemp("encoder-app")
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, tmp)
        raw = generate_events(300, seed=3, days=420)
        schema = infer_schema(raw)
        ev = canonical_events(raw, schema)
        cfg = SnapshotConfig(horizon_days=60)
        ds = build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg), event_tokens=32)
        result, _ = train_and_save(bundle.run_path(RUN, tmp / "workspace"), ds, schema,
                                   TrainConfig(models=["encoder"], params={"encoder": TINY}),
                                   snapshot=cfg.as_dict(), digest="", name=RUN)
        assert "encoder" in result.models, result.errors
        yield {"tmp": tmp, "data": write_events(raw, tmp / "shop_log.csv")}


def test_the_at_risk_page_shows_which_recent_events_moved_the_encoders_part(shop, monkeypatch):
    _env(monkeypatch, shop["tmp"])
    at = with_upload("shop_log.csv", shop["data"].read_bytes())
    at.switch_page("pages/at_risk.py").run()
    at.radio(key=widget_key(Key.W_AT_RISK, RUN, "source")).set_value("table").run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert "Which recent events moved the risk" in [s.value for s in at.subheader], texts(at)
    pick = at.selectbox(key=f"encoder_events:{RUN}:encoder")
    assert pick.label == "Customer from the list" and len(pick.options) > 0
    shown = 0
    for customer in pick.options[:8]:  # a customer whose events moved the risk: a chart and a table of them
        at.selectbox(key=f"encoder_events:{RUN}:encoder").set_value(customer).run()
        no_exception(at)
        events = [d.value for d in at.dataframe if "product" in d.value.columns and "effect" in d.value.columns]
        if not events:  # none of their events alone moved it: said in words
            assert "does not change their risk" in texts(at), texts(at)
            continue
        top = events[-1]
        assert 0 < len(top) <= 10 and set(top["kind"]) <= {"purchase", "return", "cancel", "fee", "other"}
        assert top["effect"].abs().is_monotonic_decreasing and (top["effect"].abs() > 0).all()
        assert (top["days before"] >= 0).all()
        chart = [c for c in at.get("plotly_chart") if "Effect of each week" in c.proto.spec]
        assert chart, "the chart of the effects per week before the scoring date"
        shown += 1
        break
    assert shown, "some listed customer's events moved the encoder's part of the risk"
