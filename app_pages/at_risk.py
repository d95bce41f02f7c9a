"""At-risk: the users most likely to churn, ready to export for a retention campaign."""
from __future__ import annotations

import streamlit as st

from retention_core import scoring
from ui import cache, components, state
from ui.state import Key, widget_key

METHODS = {"threshold": "Above the threshold", "top_k": "Top K users", "budget": "Campaign budget",
           "value": "Most value at risk"}
SOURCES = {"table": "The data loaded on the Data page", "validation": "The run's validation users"}
MAX_FILTER_COLUMNS = 4


def _k(*parts) -> str:
    return widget_key(Key.W_AT_RISK, *parts)


def _source(run_name: str) -> tuple[str, components.LoadedTable | None]:
    """Which users to score: the table loaded on the Data page (when there is one) or the run's validation users."""
    with components.guard("reading the loaded data") as g:
        table = components.loaded_table()
    if g.failed:
        table = None
    options = ["table", "validation"] if table is not None else ["validation"]
    labels = dict(SOURCES)
    if table is not None:
        labels["table"] = f"{SOURCES['table']} ({table.name})"
    source = st.radio("Users to score", options, format_func=labels.get, horizontal=True, key=_k(run_name, "source"))
    if table is None:
        st.caption(":material/info: Load a table on the Data page to score its users; meanwhile the run's "
                   "validation users are listed.")
    return source or options[0], table


def _selection(run_name: str, model: str, n: int, threshold: float, frame) -> dict:
    """The selection controls; returns the keyword arguments of ``at_risk_list``."""
    k = lambda name: _k(run_name, model, name)  # noqa: E731
    method = st.segmented_control("Choose users", list(METHODS), format_func=METHODS.get, default="threshold",
                                  key=k("method")) or "threshold"
    kw: dict = {"method": method, "threshold": threshold}
    top_default = max(1, min(n, 100))
    if method == "threshold":
        kw["threshold"] = float(st.slider("Churn probability at least", 0.0, 1.0, round(threshold, 3), 0.001,
                                          format="%.3f", key=k("threshold"),
                                          help="Starts at the threshold chosen on the Evaluate page."))
        if kw["threshold"] == round(threshold, 3):
            kw["threshold"] = threshold  # keep the exact chosen threshold until the slider is moved
    elif method == "top_k":
        kw["k"] = int(st.number_input("Users to contact (K)", 1, max(n, 1), top_default, key=k("top_k")))
    elif method == "budget":
        c = st.columns(2)
        kw["budget"] = float(c[0].number_input("Campaign budget", 0.0, 1e12, 1000.0, 100.0, key=k("budget")))
        kw["cost_per_contact"] = float(c[1].number_input("Cost per contact", 0.01, 1e9, 2.0, 0.5, key=k("cost"),
                                                         help="What one retention contact costs (voucher, call)."))
        with components.guard("working out the budget") as g:
            paid = scoring.budget_contacts(kw["budget"], kw["cost_per_contact"])
        if not g.failed:
            st.caption(f"The budget pays for **{paid:,}** contacts, given to the users most at risk.")
    else:
        numeric = scoring.value_columns(frame)
        auto = scoring.value_basis(frame)
        c = st.columns(2)
        options = ["(automatic)"] + numeric
        col = c[0].selectbox("User value", options, key=k("value_col"),
                             help="Past revenue by default (last 365 days, else in total), else past orders.")
        kw["value_col"] = None if col == "(automatic)" else col
        kw["k"] = int(c[1].number_input("Users to contact (K)", 1, max(n, 1), top_default, key=k("value_k")))
        basis = kw["value_col"] or auto
        st.caption(f"Value at risk = churn probability x **{basis or 'one per user'}**; users ranked by it."
                   if basis else "The data holds no revenue or orders: every user counts as 1.")
    return kw


def _segment_filter(run_name: str, frame, scores) -> dict:
    """Narrow the list to segments: attribute values and risk deciles."""
    seg_cols = scoring.segment_columns(frame)[:MAX_FILTER_COLUMNS]
    chosen: dict = {}
    with st.expander("Filter by segment", icon=":material/filter_alt:"):
        cols = st.columns(len(seg_cols) + 1)
        for col, box in zip(seg_cols, cols):
            picked = box.multiselect(str(col), scoring.segment_values(frame, col), key=_k(run_name, "segment", col),
                                     placeholder="All")
            if picked:
                chosen[col] = picked
        deciles = cols[-1].multiselect("Risk decile", list(range(1, 11)), key=_k(run_name, "segment", "decile"),
                                       placeholder="All", help="1 = the 10% of users most at risk.")
        if deciles:
            chosen["risk_decile"] = deciles
    return chosen


def _summary(list_df, eligible: int, basis: str | None) -> None:
    s = scoring.list_summary(list_df)
    c = st.columns(3)
    c[0].metric("Users selected", f"{s['users']:,}", help=f"Out of {eligible:,} users in the chosen segments.")
    c[1].metric("Expected churners among them", f"{s['expected_churners']:,.0f}",
                help="The sum of their churn probabilities.")
    c[2].metric("Value at risk", f"{s['value_at_risk']:,.0f}",
                help=f"Sum of churn probability x {basis or 'one per user'}.")


def main() -> None:
    components.page_header("At-risk", ":material/person_alert:",
                           "List the users most likely to churn, with the reasons, and download them for a campaign.")
    names, _ = components.run_names()
    if not names:
        components.model_status()
        components.coming_next([
            "score the latest data (or the run's validation users) with a trained model",
            "keep everyone above the threshold, the top K users, what a campaign budget pays for, or the most value "
            "at risk, within the segments you choose",
            "download the list as CSV with the top reasons for each user, optionally with pseudonymised ids",
        ])
        return
    picked = components.run_and_model_picker()
    if picked is None:
        return
    data, model = picked
    run = state.get_runs().get(data.name)
    if run is None:
        return
    threshold = components.current_threshold(data, model)
    st.caption(f":material/tune: Scoring with **{data.labels().get(model, model)}**; its threshold "
               f"**{threshold:.3f}** is the one chosen on the Evaluate page (or saved with the run).")
    st.page_link(components.EVALUATE_PAGE, label="Change the model or the threshold", icon=":material/query_stats:")
    st.divider()

    source, table = _source(data.name)
    stamp = cache.run_stamp(data.path)
    as_of = None
    with components.guard("scoring the users") as g:
        if source == "table" and table is not None:
            if data.info.get("kind") == "events":
                day = st.date_input("Score as of", value=None, key=_k(data.name, "as_of"),
                                    help="Features use the events up to this day. Empty: the last day in the data.")
                as_of = str(day) if day else None
            scores, frame, seq = cache.score_users(data.path, stamp, table.table_key, as_of, model, run, table.df)
            data_key = table.table_key
        else:
            scores, frame = cache.validation_scores(data.path, stamp, model)
            seq, data_key = None, "validation"
    if g.failed:
        return
    if not len(scores):
        st.warning("No users to score: the data holds no users active in the lookback window.",
                   icon=":material/warning:")
        return
    st.caption(f"{len(scores):,} users scored; as of {scoring.scoring_date(frame)}.")

    st.subheader("Who to contact", anchor=False)
    kw = _selection(data.name, model, len(scores), threshold, frame)
    seg = _segment_filter(data.name, frame, scores)
    with components.guard("choosing the users") as g:
        list_df = scoring.at_risk_list(scores, frame, segment_filter=seg, model=model, **kw)
    if g.failed:
        return
    want_reasons = st.toggle("Add the top 3 reasons for each user", value=len(list_df) <= 10_000,
                             key=_k(data.name, model, "reasons"),
                             help="Worked out for the users in the list only.")
    if want_reasons and len(list_df):
        with components.guard("working out the reasons") as g:
            positions = scoring.list_positions(scores, list_df)
            reasons = components.reasons_with_progress(data.path, stamp, data_key, as_of, model, run, frame, seq,
                                                       positions, n=3)
            list_df = scoring.attach_reasons(list_df, reasons)
    st.divider()
    _summary(list_df, list_df.attrs.get("eligible", len(scores)), list_df.attrs.get("value_basis"))
    components.at_risk_table(list_df, _k(data.name, "table"))
    day = scoring.scoring_date(frame)
    components.list_download(list_df, f"at_risk_{data.name.replace(' ', '_')}_{day}.csv", _k(data.name, "download"))


main()
