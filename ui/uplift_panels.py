"""Uplift panels. On the Train page: the choice between churn models and uplift learners when the loaded table has a
treatment column, the uplift form (treatment, control, treated arm, outcome), and an uplift run's results (the
leaderboard beside random and response targeting, the Qini chart, uplift by decile). On the At-risk page: the
customers of an uplift run ranked by uplift, persuadables first, ready to download."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from retention_core import bundle
from retention_core.uplift import plots as uplift_plots

from . import cache, jobs, run_picker, state, tables, uplift_cache
from .jobs import TrainOutcome
from .state import Key, widget_key
from .tables import LoadedTable
from .widgets import TRAIN_PAGE, guard, list_download

MODES = {"churn": "Churn models", "uplift": "Uplift models (treatment and control)"}
AT_RISK_PAGE = "pages/at_risk.py"
FIGURE_LABELS = {"qini_area": "Qini area", "qini_coefficient": "Qini coefficient",
                 "uplift_top10": "uplift, top 10%", "uplift_top30": "uplift, top 30%"}
KEEP = {"share": "Top share of customers", "top_k": "Top K customers", "positive": "Everyone a contact helps"}


def _k(*parts: Any) -> str:
    return widget_key(Key.W_TRAIN, "uplift", *parts)


def _r(*parts: Any) -> str:
    return widget_key(Key.W_AT_RISK, "uplift", *parts)


def _learners():
    from retention_core.uplift.learners import LEARNERS  # scikit-learn: on the pages that model only

    return LEARNERS


# ================================================================================================ train page
def experiment_table() -> tuple[LoadedTable, list[dict]] | None:
    """The table loaded on the Data page and its treatment columns, when it is a user table that has one."""
    info = state.get_table()
    if info is None or info.kind == "events":
        return None
    with guard("reading the loaded data") as g:
        table = tables.loaded_table()
        found = uplift_cache.candidates(table.table_key, table.df) if table is not None else []
    if g.failed or table is None or not found:
        return None
    return table, found


def experiment_hint() -> None:
    """On the Data page: a table with a treatment column can train uplift learners (a link to the Train page)."""
    found = experiment_table()
    if found is None:
        return
    cand = found[1][0]
    st.info(f"Column **{cand['column']}** looks like a randomised test (control: {cand['control']}; arms: "
            f"{', '.join(map(str, cand['values']))}). Train uplift models on the Train page to learn whom a contact "
            "persuades; no churn label is needed for that.", icon=":material/call_split:")
    st.page_link(TRAIN_PAGE, label="Train uplift models", icon=":material/model_training:")


def wants_uplift() -> bool:
    """What to train, churn models or uplift learners (the loaded table has a treatment column); True for uplift."""
    default = "uplift" if state.get_dataset() is None else "churn"
    mode = st.segmented_control("What to train", list(MODES), format_func=MODES.get, default=default,
                                key=_k("mode"), help="Uplift learners read a randomised test (a treatment column with "
                                "a control group) and learn whom a contact persuades.")
    return (mode or default) == "uplift"


def _arm_inputs(table: LoadedTable, found: list[dict]) -> tuple[str, Any, Any]:
    c = st.columns(3)
    cols = [f["column"] for f in found]
    treat = c[0].selectbox("Treatment column", cols, key=_k(table.table_key, "treatment"),
                           help="The arm each customer was randomly assigned to (contacted or not).")
    cand = found[cols.index(treat)]
    values = cand["values"]
    control = c[1].selectbox("Control group (not contacted)", values, index=values.index(cand["control"]),
                             key=_k(table.table_key, treat, "control"))
    arms = [v for v in values if v != control]
    treated = c[2].selectbox("Treated arm", [None] + arms, key=_k(table.table_key, treat, "treated"),
                             format_func=lambda v: "All other arms, pooled" if v is None else str(v),
                             help=f"Pool every arm but the control ({', '.join(map(str, arms))}: \"any contact "
                                  "against none\"), or compare one arm with the control (the other arms' customers are "
                                  "left out).")
    return treat, control, treated


def _outcome_inputs(table: LoadedTable, treat: str) -> tuple[str, Any, list[str]] | None:
    outcomes = uplift_cache.outcomes(table.table_key, treat, table.df)
    if not outcomes:
        st.warning("The table has no two-valued column to use as the outcome (e.g. visit = 1 or 0).",
                   icon=":material/warning:")
        return None
    c = st.columns(3)
    outcome = c[0].selectbox("Outcome", outcomes, key=_k(table.table_key, "outcome"),
                             help="What the contact should cause, measured after it (a visit, a purchase).")
    values = sorted(pd.unique(table.df[outcome].dropna()), key=str)
    ones = [i for i, v in enumerate(values) if str(v).strip().lower() in ("1", "true", "yes")]
    positive = c[1].selectbox("Value that means it happened", values, index=ones[0] if ones else len(values) - 1,
                              key=_k(table.table_key, outcome, "positive"))
    others = [col for col in table.df.columns if col not in (treat, outcome)]
    exclude = c[2].multiselect("Columns not to learn from", others, key=_k(table.table_key, "exclude"),
                               help="Columns that record what happened after the contact (another outcome, a spend) "
                                    "are found and left out anyway; name others here.")
    return outcome, positive, exclude


def train_form(table: LoadedTable, found: list[dict]) -> None:
    """The uplift form; on submit, the training starts (in the background, or inline for tests)."""
    from retention_core.uplift.data import Experiment
    from retention_core.uplift.training import UpliftConfig

    st.subheader("Uplift models", anchor=False)
    st.caption(f"From the randomised test in **{table.name}**: learn how much a contact changes each customer's "
               "chance of the outcome, judged on held-out customers by the Qini curve beside random targeting and "
               "response targeting.")
    treat, control, treated = _arm_inputs(table, found)
    chosen = _outcome_inputs(table, treat)
    if chosen is None:
        return
    outcome, positive, exclude = chosen
    specs = _learners()
    with st.form(_k("form"), border=True):
        keys = st.multiselect("Learners", list(specs), default=list(specs), format_func=lambda k: specs[k].label,
                              key=_k("learners"), help="; ".join(f"{s.label}: {s.description}" for s in specs.values()))
        c = st.columns([1, 2, 1])
        holdout = c[0].slider("Held-out share", 0.1, 0.5, 0.3, 0.05, key=_k("holdout"))
        name = c[1].text_input("Run name", value=f"uplift {pd.Timestamp.now():%Y-%m-%d %H.%M.%S}", key=_k("name"),
                               max_chars=64)
        seed = c[2].number_input("Seed", 0, 2**31 - 1, 0, key=_k("seed"), help="Same seed, same split and results.")
        submitted = st.form_submit_button("Train uplift models", type="primary", icon=":material/call_split:",
                                          disabled=not keys)
    if not submitted or not keys:
        return
    with guard("preparing the training") as g:
        name = bundle.safe_run_name(name)
        cfg = UpliftConfig(learners=list(keys), holdout=float(holdout), seed=int(seed))
        cfg.keys()
        exp = Experiment(treat, control, outcome, positive, treated)
    if g.failed:
        return
    root = str(bundle.workspace(create=False))
    jobs.start_job(name, cfg.keys(), _work(name, root, table, exp, cfg, list(exclude)))
    if not state.sync_training():
        st.rerun()


def _work(name: str, root: str, table: LoadedTable, exp, cfg, exclude: list[str]):
    """The uplift training as a function of its progress callback (runs in a worker thread: no Streamlit here)."""
    df, digest = table.df, table.table_key.partition(":")[0]

    def work(report) -> TrainOutcome:
        from retention_core.uplift.training import train_uplift_and_save

        result, path = train_uplift_and_save(bundle.run_path(name, root), df, exp, cfg, exclude=exclude,
                                             digest=digest, name=name, progress=report)
        return TrainOutcome(name, str(path), dict(result.errors))

    return work


# ------------------------------------------------------------------------------------------------ results
def _board(data: cache.RunData) -> pd.DataFrame:
    board = data.leaderboard.copy()
    board["label"] = [f"{lab} (best)" if m == data.best else lab for m, lab in zip(board["model"], board["label"])]
    for col in ("uplift_top10", "uplift_top30"):
        board[col] = board[col] * 100
    return board[["label", "kind", *FIGURE_LABELS]]


def _experiment_caption(data: cache.RunData) -> None:
    exp = data.metrics.get("experiment") or {}
    st.caption(f":material/science: Outcome **{data.metrics.get('outcome')}**; treated: "
               f"{', '.join(map(str, exp.get('treated_values', [])))}"
               f"{' (pooled)' if exp.get('pooled') else ''}; control: {exp.get('control')}. "
               f"{exp.get('treated_customers', 0):,} treated and {exp.get('control_customers', 0):,} control "
               f"customers ({exp.get('outcome_rate_treated', 0):.2%} against {exp.get('outcome_rate_control', 0):.2%}"
               f"). Ids: {'column ' + str(exp['id_column']) if exp.get('id_column') else 'row numbers'}.")
    for col, why in (exp.get("outcome_columns") or {}).items():
        st.caption(f":material/block: Column **{col}** was left out: {why}, so it records the outcome.")
    for why, n in (exp.get("left_out") or {}).items():
        st.caption(f":material/filter_alt: {n:,} rows left out ({why}).")


def run_results(data: cache.RunData) -> None:
    """An uplift run's leaderboard beside random and response targeting, its Qini chart and uplift by decile."""
    from retention_core.uplift.metrics import RESPONSE
    from retention_core.uplift.training import refit_text

    st.subheader(f"Uplift learners of {data.name!r}", anchor=False)
    st.caption(f":material/rule: Validation: {data.metrics.get('validation', '')}. {refit_text(data.info.get('refit'))}")
    _experiment_caption(data)
    for key, why in (data.info.get("errors") or {}).items():
        st.warning(f"{jobs.model_label(key.split(' ')[0])} failed: {why}", icon=":material/warning:")
    cfg = {"label": st.column_config.TextColumn("ranking"), "kind": st.column_config.TextColumn("kind"),
           "qini_area": st.column_config.NumberColumn("Qini area", format="%.4f", help="Extra outcomes per customer "
                                                      "above random targeting, averaged over every campaign size."),
           "qini_coefficient": st.column_config.NumberColumn("Qini coefficient", format="%.3f",
                                                             help="The Qini area as a share of a perfect ranking's."),
           "uplift_top10": st.column_config.NumberColumn("uplift, top 10% (pts)", format="%.2f"),
           "uplift_top30": st.column_config.NumberColumn("uplift, top 30% (pts)", format="%.2f")}
    st.dataframe(_board(data), hide_index=True, width="stretch", column_config=cfg)
    with guard("drawing the Qini curves") as g:
        figs = uplift_cache.held_out_figures(data.path, bundle.run_id(data.path))
    if g.failed:
        return
    labels = data.labels()
    unit = f"{(data.metrics.get('experiment') or {}).get('outcome', 'outcome')}s"
    curves = {labels.get(k, k): figs["curves"][k] for k in data.models}
    st.plotly_chart(uplift_plots.qini_chart(curves, best=labels.get(data.best), response=figs["curves"][RESPONSE],
                                            unit=unit), width="stretch", key=_k(data.name, "qini"))
    pick = st.selectbox("Uplift by decile of", data.models + [RESPONSE], key=_k(data.name, "decile"),
                        format_func=lambda k: labels.get(k, "Response targeting") + (" (best)" if k == data.best
                                                                                     else ""))
    st.plotly_chart(uplift_plots.decile_chart(figs["deciles"][pick], average=figs["average"]), width="stretch",
                    key=_k(data.name, "deciles"))
    st.page_link(AT_RISK_PAGE, label="Rank customers by uplift", icon=":material/person_alert:")


# ================================================================================================ at-risk page
def _scored(data: cache.RunData, model: str) -> tuple[pd.DataFrame, pd.DataFrame, str] | None:
    """Every customer scored: those of the loaded table when it has the run's columns, else the held-out ones."""
    with guard("reading the loaded data") as g:
        table = tables.loaded_table()
    names = _sources(table if not g.failed else None)
    source = st.radio("Customers to score", list(names), format_func=names.get, horizontal=True,
                      key=_r(data.name, "source"))
    stamp = bundle.run_id(data.path)
    with guard("scoring the customers") as g:
        if source == "table" and table is not None:
            run = run_picker.open_run(data.name)
            scores, frame = uplift_cache.score_customers(data.path, stamp, table.table_key, model, run, table.df)
            where = table.name
        else:
            scores, frame = uplift_cache.held_out_scores(data.path, stamp, model)
            where = "held-out customers"
    return None if g.failed else (scores, frame, where)


def _sources(table: LoadedTable | None) -> dict[str, str]:
    out = {"table": f"The data loaded on the Data page ({table.name})"} if table is not None else {}
    out["held_out"] = "The run's held-out customers"
    return out


def _keep(scores: pd.DataFrame, data: cache.RunData, model: str) -> dict:
    c = st.columns([4, 3, 3], vertical_alignment="bottom")
    by = c[0].segmented_control("Rank by", ["uplift", "p_treated"], default="uplift", key=_r(data.name, model, "by"),
                                format_func={"uplift": "Uplift (persuadables)", "p_treated": "Response if contacted"}.get)
    how = c[1].selectbox("Keep", list(KEEP), format_func=KEEP.get, key=_r(data.name, model, "keep"))
    n = len(scores)
    kw: dict = {"by": by or "uplift"}
    if how == "share":
        share = c[2].slider("Share of customers", 1, 100, 10, key=_r(data.name, model, "share"), format="%d%%")
        kw["top"] = max(1, round(n * share / 100))
    elif how == "top_k":
        kw["top"] = int(c[2].number_input("Customers (K)", 1, max(n, 1), min(n, 100), key=_r(data.name, model, "k")))
    else:
        kw["threshold"] = 1e-12  # uplift above 0
        c[2].caption("Everyone whose expected uplift is above 0: the contact is expected to help them.")
    return kw


def at_risk(data: cache.RunData, model: str) -> None:
    """Customers ranked by uplift (persuadables first) or by response, the list kept and its download."""
    from retention_core.uplift.scoring import persuadable_summary, uplift_list

    outcome = data.metrics.get("outcome", "the outcome")
    st.caption(f":material/call_split: Uplift run: each customer's **uplift** is P({outcome} if contacted) - "
               f"P({outcome} if not), from **{data.labels().get(model, model)}**. Ranking by uplift contacts the "
               "persuadables first; ranking by response contacts those most likely to respond anyway.")
    st.page_link(TRAIN_PAGE, label="See the Qini chart of this run", icon=":material/model_training:")
    st.divider()
    got = _scored(data, model)
    if got is None:
        return
    scores, frame, where = got
    s = persuadable_summary(scores)
    c = st.columns(3)
    c[0].metric("Customers scored", f"{s['customers']:,}", help=f"From {where}.")
    c[1].metric("Persuadables (uplift > 0)", f"{s['persuadable']:,}")
    c[2].metric("Do not disturb (uplift < 0)", f"{s['do_not_disturb']:,}",
                help="Customers a contact is expected to make less likely to respond.")
    st.subheader("Who to contact", anchor=False)
    kw = _keep(scores, data, model)
    with guard("choosing the customers") as g:
        list_df = uplift_list(data.info, model, scores, frame, **kw)
    if g.failed:
        return
    c = st.columns(3)
    c[0].metric("Customers selected", f"{len(list_df):,}")
    c[1].metric(f"Extra outcomes expected ({outcome})", f"{list_df['uplift'].sum():,.0f}",
                help="The sum of their uplifts: outcomes the contact is expected to add over not contacting them.")
    c[2].metric("Without contact, expected anyway", f"{list_df['p_control'].sum():,.0f}",
                help="The sum of their probabilities if not contacted.")
    cfg = {"user_id": st.column_config.TextColumn("customer"),
           "uplift": st.column_config.NumberColumn("uplift", format="%.4f"),
           "p_treated": st.column_config.ProgressColumn("if contacted", format="percent", min_value=0.0, max_value=1.0),
           "p_control": st.column_config.ProgressColumn("if not", format="percent", min_value=0.0, max_value=1.0),
           "uplift_decile": st.column_config.NumberColumn("uplift decile", help="1 = the 10% with the highest uplift"),
           "rank": st.column_config.NumberColumn("rank", format="localized")}
    st.dataframe(list_df.head(1000), hide_index=True, width="stretch", column_config=cfg, key=_r(data.name, "table"))
    list_download(list_df, f"uplift_{data.name.replace(' ', '_')}.csv", _r(data.name, "download"))
