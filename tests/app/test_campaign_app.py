"""Control groups and campaign results in the app, through AppTest: the At-risk page's export holds out a control group
(share, seed and the campaign's window in days, default 90; the same draw as the command line's), downloads the list
for a campaign tool without the control rows, and keeps the groups with the scoring; the Monitor page shows a
campaign's results (the library's figures, a chart of retention per group and one of the uplift by segment, the
return on the cost per contact the analyst enters) in plain words."""
from __future__ import annotations

import io as _io

import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from assets.generator import write_events
from assets.planted import history_log, plant_outcomes
from retention_core import bundle, control, io, monitor
from retention_core.dataset import SnapshotConfig, build_dataset, training_cutoffs
from retention_core.events import canonical_events
from retention_core.monitor.campaigns import summary
from retention_core.roles import infer_schema
from retention_core.scoring import score_file
from retention_core.training import TrainConfig, train_and_save
from ui.state import Key, widget_key

from tests.app.helpers import at_risk_list, no_exception, texts, with_upload
from tests.app.helpers import env as _env

RUN = "spring campaign"
AS_OF = "2023-12-01"


def _k(*parts) -> str:
    return widget_key(Key.W_AT_RISK, *parts)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A run trained on a shop's log up to AS_OF, its scoring with 30% held out kept in the workspace's history, and
    the log with a planted horizon after it (the contacted come back more often)."""
    tmp = tmp_path_factory.mktemp("campaign-app")
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, tmp)
        ws = tmp / "workspace"
        hist = history_log(500, seed=31, as_of=AS_OF)
        schema = infer_schema(hist)
        ev = canonical_events(hist, schema)
        cfg = SnapshotConfig(horizon_days=60)
        ds = build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg))
        _, path = train_and_save(bundle.run_path(RUN, ws), ds, schema, TrainConfig(models=["logreg"]),
                                 snapshot=cfg.as_dict(), digest="", name=RUN)
        run = bundle.load_run(path)
        scored = score_file(run, hist, as_of=AS_OF)
        listed = control.assign_control(scored.chosen, 0.3, seed=7)
        monitor.record_scoring(run, scored, source="cli", control=listed, data_name="history.csv")
        full, _ = plant_outcomes(hist, listed, as_of=AS_OF, horizon_days=60, contact_rate=0.5, control_rate=0.25)
        data = write_events(full, tmp / "shop_orders.csv")
        yield {"tmp": tmp, "ws": ws, "run": run, "data": data}


def _with_the_later_log(shop) -> AppTest:
    """A new session with the shop's later log uploaded on the Data page."""
    return with_upload("shop_orders.csv", shop["data"].read_bytes())


@pytest.fixture
def downloads(monkeypatch):
    """What each download button of the last run would hand out: file name -> the function that makes its bytes (made
    on the click, or handed over with the page when the download records the scoring)."""
    made: dict = {}
    deferred, eager = MediaFileManager.add_deferred, MediaFileManager.add

    def keep(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        made[file_name] = data_callable
        return deferred(self, data_callable, mimetype, coordinates, file_name, **kw)

    def keep_bytes(self, path_or_data, mimetype, coordinates, file_name=None, *args, **kw):
        if isinstance(path_or_data, bytes) and file_name:
            made[file_name] = lambda data=path_or_data: data
        return eager(self, path_or_data, mimetype, coordinates, file_name, *args, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", keep)
    monkeypatch.setattr(MediaFileManager, "add", keep_bytes)
    return made


def test_the_export_holds_out_a_control_group_and_leaves_it_out_for_a_campaign_tool(shop, downloads, monkeypatch):
    _env(monkeypatch, shop["tmp"])
    at = _with_the_later_log(shop)
    at.switch_page("pages/at_risk.py").run()
    at.radio(key=_k(RUN, "source")).set_value("table").run()
    no_exception(at)
    assert "Hold out a control group" in [t.label for t in at.toggle]
    listed = at_risk_list(at)
    before = len(monitor.scorings(workspace=shop["ws"]))
    at.toggle(key=f"{_k(RUN, 'control')}:on").set_value(True).run()
    at.number_input(key=f"{_k(RUN, 'control')}:share").set_value(20.0).run()
    no_exception(at)
    window = at.number_input(key=f"{_k(RUN, 'control')}:days")
    assert window.label == "Campaign window (days)" and window.value == control.DEFAULT_DAYS
    window.set_value(45).run()
    no_exception(at)
    day = str(listed["scoring_date"].iloc[0])
    seed = int(day.replace("-", ""))
    n_held = round(len(listed) * 0.2)
    assert f"{n_held:,} of {len(listed):,} users held out as the control group (20% per risk decile and stage, seed " \
           f"{seed}; judged over 45 days)" in texts(at), texts(at)
    whole = pd.read_csv(_io.BytesIO(downloads[f"at_risk_{RUN.replace(' ', '_')}_{day}.csv"]()),
                        dtype={"user_id": str})
    want = control.assign_control(listed, 0.2, seed)  # the same draw as score --control-share 0.2 --seed N
    assert whole["user_id"].tolist() == listed["user_id"].tolist()
    assert whole["group"].tolist() == want["group"].tolist()
    # for a campaign tool: the contacted only
    at.radio(key=f"{_k(RUN, 'control')}:send").set_value("contact").run()
    no_exception(at)
    button = next(b for b in at.get("download_button") if b.proto.label == "Download the contacted only (CSV)")
    sent = pd.read_csv(_io.BytesIO(downloads[f"at_risk_{RUN.replace(' ', '_')}_{day}_contact_only.csv"]()),
                       dtype={"user_id": str})
    assert len(sent) == len(listed) - n_held and (sent["group"] == "contact").all()
    assert sent["user_id"].tolist() == want.loc[want["group"] == "contact", "user_id"].tolist()
    # downloading it keeps the scoring with its control group
    button.click().run()
    no_exception(at)
    assert "Recorded in the scoring history with its control group" in texts(at), texts(at)
    h = monitor.scorings(workspace=shop["ws"])
    assert len(h) == before + 1
    new = h.sort_values("recorded_at").iloc[-1]
    assert new["control_share"] == 0.2 and new["control_seed"] == seed and new["source"] == "app"
    assert new["control_days"] == 45 and new["campaign_days"] == 45  # the campaign's window, kept with it
    users = monitor.scores_of([new["scoring_id"]], workspace=shop["ws"]).set_index("user_id")["group"]
    assert users.reindex(want["user_id"]).tolist() == want["group"].tolist()
    assert users.isna().sum() == len(users) - len(listed)  # users outside the list: no group


def test_the_monitor_page_shows_the_campaigns_results(shop, monkeypatch):
    _env(monkeypatch, shop["tmp"])
    at = _with_the_later_log(shop)
    at.switch_page("pages/monitor.py").run()
    no_exception(at)
    assert [t.label for t in at.tabs][0] == "Campaign results"
    direct = monitor.monitor_report(shop["run"], io.read_table(shop["data"]), workspace=shop["ws"],
                                    require_observed=False, cost_per_contact=1.0)
    camp, segs = direct.campaign_table()
    row = camp[camp["as_of"] == AS_OF].iloc[0]
    assert summary(row) in [str(s.value) for s in at.success], [s.value for s in at.success]
    cards = {m.label: m.value for m in at.metric}
    assert cards["Retention, contacted"] == f"{row['contact_retention']:.1%}"
    assert cards["Retention, control group"] == f"{row['control_retention']:.1%}"
    assert cards["Uplift"] == f"{row['uplift'] * 100:+.1f} pts"
    assert cards["Incremental customers"] == f"{row['incremental_customers']:,.0f}"
    assert cards["Incremental revenue"] == f"{row['incremental_revenue']:,.2f}"
    shown = next(d.value for d in at.dataframe if "contact_retention" in d.value.columns)
    first = at.selectbox(key=widget_key(Key.W_MONITOR, "campaigns", "run", "split")).value
    want = segs[(segs["scoring_id"] == row["scoring_id"]) & (segs["column"] == first)]
    assert shown["segment"].tolist() == want["segment"].tolist()
    assert shown["uplift"].tolist() == pytest.approx((want["uplift"] * 100).tolist())
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("Retention of the contacted and of the control group" in t for t in titles)
    assert any(f"Uplift of the campaign as of {AS_OF}" in t for t in titles)
    # the return follows the cost per contact the analyst enters
    at.number_input(key=widget_key(Key.W_MONITOR, "campaigns", "run", "cost")).set_value(5.0).run()
    no_exception(at)
    again = direct.campaign_table(5.0)[0]
    assert summary(again[again["as_of"] == AS_OF].iloc[0]) in [str(s.value) for s in at.success]
    assert "contacts cost" in texts(at) and "(5.00 each)" in texts(at)
    # the split by risk decile, and no internal name on screen
    at.selectbox(key=widget_key(Key.W_MONITOR, "campaigns", "run", "split")).set_value("risk_decile").run()
    no_exception(at)
    shown = next(d.value for d in at.dataframe if "contact_retention" in d.value.columns)
    assert shown["segment"].tolist() == [str(d) for d in range(1, 11)]
    words = texts(at) + " ".join(str(s.value) for s in at.success)
    for name in ("contact_users", "risk_decile", "ci_low", "control_share", "campaign_group"):
        assert name not in words
