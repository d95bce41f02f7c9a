"""Monitor panels: pick a run with recorded scorings (saved, or deleted with its history kept) and the table to check
them against, then the report: the verdict, the scorings against their validation figures, realised quality,
calibration, drift with its bands, outcomes per segment and the results of campaigns with a control group
(:mod:`ui.campaign_results`). With nothing recorded yet: what to do, and a demo on the
sample that fills the page without touching the real history."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from retention_core import monitor
from retention_core.models import model_label
from retention_core.monitor import plots

from . import campaign_results, monitor_cache, run_picker, state, tables
from .state import Key, widget_key
from .tables import LoadedTable
from .widgets import DATA_PAGE, guard, nothing_to_show

AT_RISK_PAGE = "pages/at_risk.py"
VERDICTS = {"ok": (st.success, ":material/check_circle:", "Holding up"),
            "waiting": (st.info, ":material/hourglass_top:", "Waiting for outcomes"),
            "watch": (st.warning, ":material/visibility:", "Watch"),
            "retrain": (st.error, ":material/model_training:", "Retrain")}
BANDS = {"stable": "stable (below 0.1)", "moderate": "moderate (0.1 to 0.25)", "act": "act (above 0.25)"}
DEMO_SCORINGS = 3


def _k(*parts: Any) -> str:
    return widget_key(Key.W_MONITOR, *parts)


def _pct(name: str, help: str | None = None):
    return st.column_config.NumberColumn(name, format="percent", help=help)


def _num(name: str, help: str | None = None):
    return st.column_config.NumberColumn(name, format="%.3f", help=help)


# ================================================================================================ empty state
def recorded_history() -> pd.DataFrame | None:
    """Every recorded scoring of the workspace (None, with the error shown, when the history cannot be read)."""
    with guard("reading the scoring history") as g:
        h = monitor_cache.history()
    return None if g.failed else h


def empty_state() -> None:
    """Nothing recorded yet: what to do (train, score, come back after the horizon) and the demo on the sample."""
    names, _ = run_picker.run_names()
    if not names:
        nothing_to_show([
            ("see how each scoring of a saved run turned out once its horizon passed: realised ROC-AUC and recall in "
             "the top 10% against the validation figures"),
            "compare predicted with realised churn, overall, per risk decile and per segment",
            ("watch each feature drift from the training population (PSI, with its 0.1 and 0.25 bands) and read a "
             "plain verdict: holding up, watch, or retrain"),
        ])
    else:
        active = state.get_active_run_name()
        name = active if active in names else names[0]
        with guard("reading the scoring history"):
            st.info(monitor.what_next(name), icon=":material/info:")
        with st.container(border=True):
            st.markdown("**To monitor a run**")
            st.markdown("1. **Score new data** with it on the At-risk page (the table loaded on the Data page) or "
                        "with *Score a file* on the Models page, and **download the list** (or press *Record this "
                        "scoring for monitoring*): that scoring is kept in the workspace's scoring history. Trying "
                        "dates records nothing; the `score` command records too.\n"
                        "2. **Wait for the horizon** to pass after the scoring date (as-of date + horizon).\n"
                        "3. **Come back with the newer data** loaded on the Data page: this page compares each "
                        "scoring with what happened and says whether to retrain.")
            st.page_link(AT_RISK_PAGE, label="Score users on the At-risk page", icon=":material/person_alert:")
    demo_offer()


def demo_offer() -> None:
    """Run the monitoring demo on the sample (in a workspace of its own) with a progress bar, then show it."""
    st.subheader("See it filled: a demo on the sample", anchor=False)
    st.caption("Trains a logistic regression on the early months of the built-in sample, scores it at three early "
               "dates and checks each against the sample's later months. It runs apart from your workspace's runs "
               "and scoring history, which it never changes; it takes about 15 seconds.")
    if not st.button("Show a demo on the sample", icon=":material/play_circle:", key=_k("demo"), type="primary"):
        return
    bar = st.progress(0.0, text="Starting the demo...")
    done = {"steps": 0}

    def say(text: str) -> None:
        done["steps"] += 1
        bar.progress(min(done["steps"] / (DEMO_SCORINGS + 2), 1.0), text=f"{text[:1].upper()}{text[1:]}...")

    with guard("running the demo on the sample") as g:
        report = monitor_cache.run_demo(say)
    bar.empty()
    if not g.failed:
        state.set_monitor_demo(report)
        st.rerun()


def demo_panel() -> bool:
    """The demo's report while it is open (True), with a way to close it; False when no demo is open."""
    report = state.get_monitor_demo()
    if report is None:
        return False
    dates = ", ".join(str(d) for d in report.scorings["as_of"])
    c = st.columns([5, 1], vertical_alignment="center")
    c[0].info(f"**Demo on the built-in sample**: a logistic regression trained on the sample's early months, scored "
              f"as of {dates} and checked against the months that followed. It ran apart from your workspace: your "
              "runs and scoring history are unchanged.", icon=":material/science:")
    if c[1].button("Close the demo", icon=":material/close:", key=_k("demo", "close")):
        state.set_monitor_demo(None)
        st.rerun()
    report_view(report, "demo", "the sample")
    return True


# ================================================================================================ run and data
def _run_label(recorded: dict, saved: set):
    def label(name: str) -> str:
        n = recorded.get(name, 0)
        if not n:
            return f"{name} · no scoring recorded yet"
        return f"{name} · {n} scoring{'s' if n > 1 else ''}" + ("" if name in saved else " (deleted; history kept)")
    return label


def pick_run(h: pd.DataFrame) -> tuple[Any, pd.DataFrame] | None:
    """Pick a run: saved runs and runs deleted since they scored; the run opened and its recorded scorings, or None
    (with what to do) when it has none."""
    runs = monitor_cache.runs_in_history(h)
    recorded, saved = dict(zip(runs["run"], runs["scorings"])), set(run_picker.saved_names())
    names, _ = run_picker.run_names()
    options = names + [n for n in runs["run"] if n not in names]
    active = state.get_active_run_name()
    default = active if recorded.get(active) else str(runs["run"].iloc[0])
    c = st.columns([2, 3], vertical_alignment="bottom")
    name = c[0].selectbox("Run", options, index=options.index(default), key=_k("run"),
                          format_func=_run_label(recorded, saved),
                          help="Saved runs, and runs deleted since they scored (their scoring history is kept).")
    if not recorded.get(name):
        st.info(f"No scoring of run {name!r} is recorded yet: score new data with it on the At-risk page and "
                "download the list (or record the scoring), then come back once its horizon has passed.",
                icon=":material/info:")
        st.page_link(AT_RISK_PAGE, label="Score users on the At-risk page", icon=":material/person_alert:")
        return None
    with guard(f"opening run {name!r}") as g:
        run = monitor_cache.monitored_run(name, name in saved)
        mine = monitor_cache.history(run)
    if g.failed:
        return None
    if not len(mine):
        with guard("reading the scoring history"):
            st.info(f"{monitor.what_next(run)} (Scorings by an earlier version of {name!r}, retrained since, are "
                    "kept in the history but scored with other models.)", icon=":material/info:")
        return None
    where = "saved in the workspace" if name in saved else "deleted from the workspace; the history keeps what " \
        "monitoring needs"
    first, last = mine["as_of"].min(), mine["as_of"].max()
    c[1].caption(f":material/history: {len(mine):,} scoring{'s' if len(mine) > 1 else ''} recorded, as of "
                 f"{first if first == last else f'{first} to {last}'}. Run {where}.")
    return run, mine


SOURCES = {"app": "the app", "cli": "the score command", "service": "the scoring service", "demo": "the demo"}


def _scoring_label(rows: dict):
    def label(sid: str) -> str:
        r = rows[sid]
        when = pd.Timestamp(r["recorded_at"]).strftime("%Y-%m-%d %H:%M")
        return (f"as of {r['as_of']} · {model_label(r['model'])} · {int(r['users']):,} users · by "
                f"{SOURCES.get(r['source'], r['source'] or 'unknown')}, recorded {when}")
    return label


def history_panel(run, mine: pd.DataFrame) -> None:
    """The run's recorded scorings, and deleting one (a date tried by mistake) once the analyst confirms."""
    many = len(mine) > 1
    with st.expander(f"Recorded scoring{'s' if many else ''} of this run ({len(mine)}): delete one",
                     icon=":material/history:"):
        rows = dict(zip(mine["scoring_id"], mine.to_dict("records")))
        c = st.columns([5, 2, 1], vertical_alignment="bottom")
        sid = c[0].selectbox("Scoring", list(rows), index=None, placeholder="Choose a scoring to delete",
                             format_func=_scoring_label(rows), key=_k("delete"))
        sure = c[1].checkbox("Yes, delete it from the history", key=_k("delete", "confirm", sid),
                             disabled=sid is None, help="Its users and their scores are removed for good; the "
                             "list already downloaded is not affected.")
        if c[2].button("Delete", icon=":material/delete:", key=_k("delete", "go"), disabled=not (sid and sure)):
            with guard("deleting the scoring") as g:
                monitor.delete_scoring(sid, run)
            if not g.failed:
                st.toast(f"Deleted the scoring {_scoring_label(rows)(sid)}.", icon=":material/delete:")
                st.rerun()


def pick_data() -> LoadedTable | None:
    """The table to check the scorings against: the one loaded on the Data page."""
    with guard("reading the loaded data") as g:
        table = tables.loaded_table()
    if g.failed:
        return None
    if table is None:
        st.info("Load the newer data on the Data page: the same kind of file the run scored, now reaching past the "
                "scoring dates by the horizon (or, for a user table, with the users' later labels).",
                icon=":material/info:")
        st.page_link(DATA_PAGE, label="Go to the Data page", icon=":material/database:")
        return None
    st.caption(f":material/database: Checked against **{table.name}**, the table loaded on the Data page.")
    return table


def load_report(run, mine: pd.DataFrame, table: LoadedTable) -> monitor.MonitorReport | None:
    """The report of the run against the table (cached), or None with the error and what to do."""
    with guard("comparing the scorings with the data") as g:
        report = monitor_cache.report(monitor_cache.run_key(run), table.table_key, len(mine),
                                      monitor_cache.history_key(mine), run, table.df)
    if g.failed:
        st.caption(":material/lock: The recorded scorings are kept as they were. Load a table with the run's "
                   "columns on the Data page (the newer version of the data it scored) and come back.")
        st.page_link(DATA_PAGE, label="Go to the Data page", icon=":material/database:")
        return None
    return report


# ================================================================================================ the report
def verdict_box(report: monitor.MonitorReport) -> None:
    level, text = report.verdict.level, report.verdict.text
    box, icon, title = VERDICTS.get(level, VERDICTS["watch"])
    body = text[len(level) + 2:] if text.startswith(f"{level}: ") else text
    box(f"**{title}**: {body}", icon=icon)
    for note in report.notes:
        st.caption(f":material/info: {note}")


def _latest(report: monitor.MonitorReport) -> pd.Series | None:
    seen = report.observed
    return seen.sort_values(["as_of", "recorded_at"]).iloc[-1] if len(seen) else None


def summary_cards(report: monitor.MonitorReport, data_name: str) -> None:
    """The latest checked scoring against validation, or what to do when none can be checked yet."""
    r = _latest(report)
    if r is None:
        _nothing_observed(report, data_name)
        return
    c = st.columns(4)
    c[0].metric("Latest checked scoring", str(r["as_of"]), help=f"{int(r['observed']):,} of its "
                f"{int(r['users']):,} users have an outcome in the data.")
    for col, key, label in ((c[1], "roc_auc", "Realised ROC-AUC"), (c[2], "recall_at_10pct", "Recall in the top 10%")):
        val, real = r.get(f"validation_{key}"), r.get(key)
        delta = f"{real - val:+.3f} vs validation" if pd.notna(val) and pd.notna(real) else None
        col.metric(label, "-" if pd.isna(real) else f"{real:.3f}", delta=delta,
                   help=None if pd.isna(val) else f"{val:.3f} on the run's validation users.")
    gap = r["churn_rate"] - r["predicted_rate"] if pd.notna(r["churn_rate"]) else None
    c[3].metric("Realised churn", "-" if gap is None else f"{r['churn_rate']:.1%}", delta_color="off",
                delta=None if gap is None else f"{gap * 100:+.1f} pts vs {r['predicted_rate']:.1%} predicted")


def _nothing_observed(report: monitor.MonitorReport, data_name: str) -> None:
    s = report.scorings
    waiting = s[s["status"] == "waiting"].sort_values("observable_from")
    if len(waiting):
        first = waiting.iloc[0]
        st.info(f"No scoring can be checked with {data_name} yet: the data ends on {report.data_end}, and the "
                f"earliest scoring (as of {first['as_of']}) is observed from {first['observable_from']} (as-of + "
                f"{int(first['horizon_days'])}-day horizon). Load data that reaches that date on the Data page, or "
                "come back then: the scorings stay recorded meanwhile.", icon=":material/hourglass_top:")
    elif (s["status"] == "not in data").any():
        st.warning(f"None of the users scored appear in {data_name} at their scoring dates. Load the full log: it "
                   "must hold the lookback before each scoring date and the horizon after.", icon=":material/warning:")


_SCORING_NUMBERS = ("users", "observed", "predicted_rate", "churn_rate", "roc_auc", "validation_roc_auc",
                    "recall_at_10pct", "validation_recall_at_10pct")


def scorings_table(report: monitor.MonitorReport, key: str) -> None:
    st.subheader("Scorings", anchor=False)
    cols = ["as_of", "model", "users", "observed", "status", "observable_from", "predicted_rate", "churn_rate",
            "roc_auc", "validation_roc_auc", "recall_at_10pct", "validation_recall_at_10pct", "source", "data_name"]
    show = report.scorings[[c for c in cols if c in report.scorings.columns]]
    show = show.assign(model=show["model"].map(model_label)) if "model" in show else show  # the registry's names
    show = show.assign(source=show["source"].map(lambda s: SOURCES.get(s, s))) if "source" in show else show
    # a scoring still waiting for its horizon has no outcome yet: empty cells, never the word "None"
    numbers = [c for c in show.columns if c in _SCORING_NUMBERS]
    show = show.assign(**{c: pd.to_numeric(show[c], errors="coerce") for c in numbers})
    text = [c for c in show.columns if c not in numbers and show[c].dtype == object]
    show = show.assign(**{c: show[c].where(show[c].notna(), "") for c in text})
    st.dataframe(show, hide_index=True, width="stretch", key=_k(key, "scorings"), column_config={
        "as_of": st.column_config.TextColumn("scored as of"), "source": st.column_config.TextColumn("from"),
        "model": st.column_config.TextColumn("model"), "status": st.column_config.TextColumn("status"),
        "data_name": st.column_config.TextColumn("data scored"),
        "users": st.column_config.NumberColumn("users scored", format="localized"),
        "observed": st.column_config.NumberColumn("observed", format="localized",
                                                  help="Users scored whose outcome the data shows."),
        "observable_from": st.column_config.TextColumn("observable from", help="As-of date + horizon."),
        "predicted_rate": _pct("predicted churn", "Mean churn probability of the users observed."),
        "churn_rate": _pct("realised churn"), "roc_auc": _num("ROC-AUC"),
        "validation_roc_auc": _num("ROC-AUC at validation"), "recall_at_10pct": _num("recall in top 10%"),
        "validation_recall_at_10pct": _num("recall in top 10% at validation")})
    waiting = report.scorings[report.scorings["status"] == "waiting"]
    if len(waiting):
        nxt = waiting.sort_values("observable_from").iloc[0]
        many = len(waiting) > 1
        st.caption(f":material/hourglass_top: {len(waiting)} scoring{'s' if many else ''} waiting for "
                   f"{'their' if many else 'its'} horizon; the next can be checked from {nxt['observable_from']} "
                   f"(scored as of {nxt['as_of']}).")


def _closer_look(report: monitor.MonitorReport, key: str) -> pd.Series | None:
    """Pick one observed scoring for calibration and segments (the latest by default)."""
    seen = report.observed.sort_values(["as_of", "recorded_at"])
    if not len(seen):
        return None
    ids = seen["scoring_id"].tolist()
    rows = dict(zip(ids, seen.to_dict("records")))
    sid = st.selectbox("Scoring", ids, index=len(ids) - 1, key=_k(key, "scoring"),
                       format_func=lambda i: f"as of {rows[i]['as_of']} · {model_label(rows[i]['model'])} · "
                                             f"{int(rows[i]['observed']):,} users observed")
    return seen[seen["scoring_id"] == sid].iloc[0]


def quality_panel(report: monitor.MonitorReport, key: str) -> None:
    c = st.columns(2)
    c[0].plotly_chart(plots.realised_quality(report.scorings), width="stretch", key=_k(key, "quality"))
    c[1].plotly_chart(plots.predicted_vs_realised(report.scorings), width="stretch", key=_k(key, "predicted"))
    st.caption("Dashed lines: the same model's figures on the run's validation users. Recall in the top 10% is the "
               "share of churners found among the 10% of users ranked most at risk.")


def calibration_panel(report: monitor.MonitorReport, key: str) -> None:
    with st.columns(2)[0]:
        row = _closer_look(report, f"{key}:calibration")
    if row is None:
        st.caption("Calibration shows once a scoring's horizon is observed.")
        return
    calib = report.calibration[report.calibration["scoring_id"] == row["scoring_id"]]
    st.plotly_chart(plots.calibration_by_decile(calib, row["as_of"]), width="stretch", key=_k(key, "calibration"))
    st.dataframe(calib.drop(columns=["scoring_id", "as_of"]), hide_index=True, width="stretch",
                 key=_k(key, "calibration", "table"), column_config={
                     "risk_decile": st.column_config.NumberColumn("risk decile", help="1 = the 10% most at risk"),
                     "predicted": _pct("predicted churn"), "realised": _pct("realised churn"),
                     "expected_churners": st.column_config.NumberColumn("expected churners", format="%.0f"),
                     "churners": st.column_config.NumberColumn("churners", format="%.0f")})


def _drift_table(drift: pd.DataFrame, key: str) -> None:
    show = drift.drop(columns=[c for c in ("feature", "kind", "expected_ageing") if c in drift.columns])
    st.dataframe(show.assign(band=show["band"].map(lambda b: BANDS.get(b, b))), hide_index=True, width="stretch",
                 key=key, column_config={
                     "label": st.column_config.TextColumn("feature"), "psi": _num("PSI"),
                     "n_reference": st.column_config.NumberColumn("reference rows", format="localized"),
                     "n_current": st.column_config.NumberColumn("current users", format="localized"),
                     "missing_reference": _pct("missing (reference)"), "missing_current": _pct("missing (current)")})


def drift_panel(report: monitor.MonitorReport, key: str) -> None:
    info, score = report.drift_info, report.score_drift or {}
    st.caption(f"The latest population in the data ({info.get('users') or 0:,} users as of {info.get('as_of')}) "
               f"against the run's {info.get('reference') or 'reference'} ({info.get('reference_rows') or 0:,} rows). "
               "Population stability index: below 0.1 stable, 0.1 to 0.25 moderate, above 0.25 act.")
    if score.get("psi") is not None:
        st.metric("Drift of the churn probability (PSI)", f"{score['psi']:.3f} · {score.get('band')}",
                  help=f"Band: {BANDS.get(score.get('band'), score.get('band'))}.")
    drift = report.drift
    ageing = drift["expected_ageing"].astype(bool) if "expected_ageing" in drift else pd.Series(False, drift.index)
    st.plotly_chart(plots.drift_bars(drift[~ageing], report.score_drift), width="stretch", key=_k(key, "drift"))
    _drift_table(drift[~ageing], _k(key, "drift", "table"))
    if ageing.any():
        st.markdown(f"**Expected ageing** ({int(ageing.sum())} features)")
        st.caption(":material/hourglass_bottom: These features grow as customers' histories get longer: days since "
                   "the first purchase, totals since then, the longest gap so far. The latest customers are older "
                   "than the rows the run learned from, so these features move even when nothing about the "
                   "customers changed. Their drift is expected and is never a reason to watch or retrain.")
        _drift_table(drift[ageing], _k(key, "drift", "ageing"))


def segments_panel(report: monitor.MonitorReport, key: str) -> None:
    c = st.columns(2)
    with c[0]:
        row = _closer_look(report, f"{key}:segments")
    segs = report.segments
    if row is None or not len(segs):
        st.caption("Outcomes per segment show once a scoring's horizon is observed (for runs with user attributes).")
        return
    segs = segs[segs["scoring_id"] == row["scoring_id"]]
    columns = list(dict.fromkeys(segs["column"]))
    if not columns:
        st.caption("This scoring kept no segment column.")
        return
    column = c[1].selectbox("Split by", columns, key=_k(key, "segment"), format_func=plots.segment_name)
    part = segs[segs["column"] == column]
    st.plotly_chart(plots.segment_outcomes(part, column, row["as_of"]), width="stretch", key=_k(key, "segments"))
    st.dataframe(part.drop(columns=["scoring_id", "as_of", "column"]), hide_index=True, width="stretch",
                 key=_k(key, "segments", "table"), column_config={
                     "users": st.column_config.NumberColumn("users observed", format="localized"),
                     "churn_rate": _pct("realised churn"), "predicted_rate": _pct("predicted churn"),
                     "roc_auc": _num("ROC-AUC"), "recall_at_10pct": _num("recall in top 10%"),
                     "reliable": st.column_config.CheckboxColumn("enough users", help="Too few users to judge "
                                                                 "when unticked.")})


def report_view(report: monitor.MonitorReport, key: str, data_name: str) -> None:
    """The whole report: verdict, headline figures, the scorings, then quality, calibration, drift and segments."""
    verdict_box(report)
    summary_cards(report, data_name)
    scorings_table(report, key)
    panels = {"Realised quality": quality_panel, "Calibration": calibration_panel, "Drift": drift_panel,
              "Segments": segments_panel, "Campaign results": campaign_results.campaigns_panel}
    names = list(panels)
    if campaign_results.has_campaigns(report):  # a campaign with a control group: its results first
        names = names[-1:] + names[:-1]
    for tab, name in zip(st.tabs(names), names):
        with tab:
            panels[name](report, key)
