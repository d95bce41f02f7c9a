"""Widgets every page shares: the page header, the error box and guard, the sidebar summary, what to do first when
there is nothing to show yet, metric cards and the tables (leaderboard, at-risk list) with their download."""
from __future__ import annotations

import hashlib
import traceback
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from retention_core import campaign, export
from retention_core.errors import RetentionError

from . import jobs, navigation, state
from .state import SAMPLE

NONE = "(none)"
KIND_SHORT = {"events": "Event log", "users": "User table"}
DATA_PAGE = "pages/data.py"
TRAIN_PAGE = "pages/train.py"
EVALUATE_PAGE = "pages/evaluate.py"
CARD_METRICS = ["roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1"]
SHOW_ROWS = 5_000  # rows of an at-risk list drawn in the app; the download always holds the whole list


# ------------------------------------------------------------------------------------------------ errors
class Guard:
    """``with guard("reading the file") as g: ...``: a product error becomes ``st.error`` with its message, anything
    unexpected a short message with the details in an expander. ``g.failed`` tells the caller to skip what depends
    on the result; the rest of the page and the session carry on."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.failed = False
        self.error: BaseException | None = None

    def __enter__(self) -> "Guard":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False  # Streamlit's own stop and rerun signals pass through
        self.failed, self.error = True, exc
        show_error(exc, self.what)
        return True


def guard(what: str) -> Guard:
    return Guard(what)


def show_error(exc: BaseException, what: str | None = None) -> None:
    """An error box: the product's message as it is, or a short note plus details for anything unexpected."""
    if isinstance(exc, RetentionError):
        st.error(str(exc), icon=":material/error:")
        return
    st.error(f"Something went wrong while {what or 'working on this'}. Your data and earlier results are kept: "
             "change a setting and try again, or report the details below.", icon=":material/error:")
    with st.expander("Details"):
        st.code("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)), language=None)


def fmt_int(n: Any) -> str:
    return "-" if n is None or (isinstance(n, float) and pd.isna(n)) else f"{int(n):,}"


# ------------------------------------------------------------------------------------------------ page shell
def page_header(title: str, icon: str, purpose: str) -> None:
    """The page's title and what it is for. Called first on every page, it first makes sure the page runs inside
    the app's navigation (see :func:`ui.navigation.ensure_routed`)."""
    navigation.ensure_routed()
    st.title(f"{icon} {title}", anchor=False)
    st.caption(purpose)


def coming_next(items: list[str]) -> None:
    """A short list of what the page will offer."""
    with st.container(border=True):
        st.markdown("**This page will let you**")
        st.markdown("\n".join(f"- {i}" for i in items))


def sidebar_summary() -> None:
    """Which table is loaded (kind, rows, users), the dataset if one is built, and how the product works."""
    table = state.get_table()
    if table is None:
        st.caption(":material/database: No data loaded yet: open the **Data** page.")
    else:
        kind = KIND_SHORT.get(table.kind or "", "table")
        where = "sample" if table.source == SAMPLE else "upload"
        st.markdown(f":material/database: **{table.name}**  \n{kind} ({where}) · {fmt_int(table.rows)} rows · "
                    f"{fmt_int(table.users)} users")
    ds, info = state.get_dataset(), state.get_dataset_info()
    if ds is not None and info is not None:
        st.markdown(f":material/dataset: Dataset: {len(ds.frame):,} rows, {len(ds.features)} features")
    jobs.training_sidebar()
    st.caption("How it works: load data, check what we understood, build a dataset, train and compare models, read "
               "why users churn, then export the users at risk.")


def dataset_status() -> Any:
    """Whether a dataset is ready: says so and returns it, or points to the Data page and returns None."""
    ds, info = state.get_dataset(), state.get_dataset_info()
    if ds is None or info is None:
        st.info("No dataset yet. Build a dataset on the Data page first.", icon=":material/info:")
        st.page_link(DATA_PAGE, label="Go to the Data page", icon=":material/database:")
        return None
    labelled = ds.frame["churned"].dropna()
    rate = f", churn rate {labelled.mean():.1%}" if len(labelled) else ""
    st.success(f"Dataset ready: {len(ds.frame):,} rows from {info.name}, {len(ds.features)} features{rate}.",
               icon=":material/check_circle:")
    return ds


def model_status() -> None:
    """What to do first when no run is there to look at (and whether the dataset is ready)."""
    if state.get_dataset() is None:
        st.info("Nothing to show yet. Build a dataset on the Data page first, then train a model on the Train page.",
                icon=":material/info:")
        st.page_link(DATA_PAGE, label="Go to the Data page", icon=":material/database:")
    else:
        dataset_status()
        st.info("No model trained yet. Train one on the Train page first.", icon=":material/info:")
        st.page_link(TRAIN_PAGE, label="Go to the Train page", icon=":material/model_training:")


def nothing_to_show(items: list[str], note: str | None = None) -> None:
    """An analysis page with no run yet: what to do first, an optional note, and what the page will offer."""
    model_status()
    if note:
        st.caption(note)
    coming_next(items)


# ------------------------------------------------------------------------------------------------ cards and tables
def metric_cards(m: dict, ref: dict | None = None) -> None:
    """Metric cards at the chosen threshold (ranking metrics do not depend on it); deltas against ``ref``."""
    from retention_core.evaluation import METRIC_LABELS

    cols = st.columns(len(CARD_METRICS))
    for col, k in zip(cols, CARD_METRICS):
        v = m.get(k, float("nan"))
        delta = None
        if ref is not None and k not in ("roc_auc", "pr_auc"):
            d = v - ref.get(k, float("nan"))
            delta = f"{d:+.3f}" if pd.notna(d) and abs(d) >= 5e-4 else None
        col.metric(METRIC_LABELS[k], "-" if pd.isna(v) else f"{v:.3f}", delta=delta,
                   help="Against the threshold that maximises F1." if delta else None)


def leaderboard_table(board: pd.DataFrame) -> None:
    """The leaderboard: every model's validation metrics, sortable by any column."""
    from retention_core.evaluation import METRIC_LABELS

    cols = [c for c in ["label", "family", "roc_auc", "default_roc_auc", "tuned", "pr_auc", "accuracy", "precision",
                        "recall", "f1", "log_loss", "brier", "lift_top10", "recall_top10", "cv_roc_auc_mean", "cv_roc_auc_std", "threshold",
                        "fit_seconds"] if c in board]
    cfg: dict = {"label": st.column_config.TextColumn("model"),
                 "fit_seconds": st.column_config.NumberColumn("fit (s)", format="%.1f"),
                 "cv_roc_auc_mean": st.column_config.NumberColumn("CV ROC-AUC", format="%.3f"),
                 "cv_roc_auc_std": st.column_config.NumberColumn("CV ± sd", format="%.3f"),
                 "default_roc_auc": st.column_config.NumberColumn(
                     "ROC-AUC, defaults", format="%.3f", help="The same model with its fixed default settings, on "
                     "the same validation rows (shown only: the settings were chosen inside the training rows)."),
                 "tuned": st.column_config.TextColumn("tuned", help="yes: the settings search found settings that "
                                                      "beat the defaults inside the training rows."),
                 "threshold": st.column_config.NumberColumn("threshold", format="%.3f",
                                                            help="The threshold that maximises F1.")}
    for m, label in METRIC_LABELS.items():
        cfg.setdefault(m, st.column_config.NumberColumn(label, format="%.3f"))
    if "tuned" in board:  # True/False, or empty for a model without a search (read back from the saved CSV as text)
        board = board.assign(tuned=board["tuned"].map({True: "yes", False: "no", "True": "yes", "False": "no"}))
    st.dataframe(board[cols], hide_index=True, width="stretch", column_config=cfg)


def at_risk_table(list_df: pd.DataFrame, key: str) -> None:
    """The at-risk list as a sortable table (the first rows when it is very long)."""
    show = list_df.head(SHOW_ROWS)
    if len(list_df) > SHOW_ROWS:
        st.caption(f":material/info: Showing the first {SHOW_ROWS:,} of {len(list_df):,} users; the download holds "
                   "them all.")
    basis = list_df.attrs.get("value_basis") or (list_df["value_basis"].iloc[0] if "value_basis" in list_df
                                                  and len(list_df) else None)
    unit = export.value_unit(basis)  # amounts say their unit, as in the download
    cfg = {"user_id": st.column_config.TextColumn("user"),
           "churn_probability": st.column_config.ProgressColumn("churn probability", format="percent", min_value=0.0,
                                                                max_value=1.0),
           "risk_decile": st.column_config.NumberColumn("risk decile", help="1 = the 10% of users most at risk"),
           "rank": st.column_config.NumberColumn("rank", format="localized"),
           "stage": st.column_config.TextColumn("lifecycle stage", help="new, active, slipping or lapsed, from the "
                                                "customer's own rhythm against the shop's"),
           "value": st.column_config.NumberColumn(f"value ({unit})", format="%.2f"),
           "value_at_risk": st.column_config.NumberColumn(f"value at risk ({unit})", format="%.2f",
                                                          help="Churn probability x the user's value"),
           "threshold": st.column_config.NumberColumn("threshold", format="%.3f"),
           "expected_net_value": st.column_config.NumberColumn(
               f"expected net value ({unit})", format="%.2f",
               help="Churn probability x value at stake x save rate - cost per contact"),
           "save_rate": st.column_config.NumberColumn("save rate", format="percent"),
           "cost_per_contact": st.column_config.NumberColumn(f"cost per contact ({unit})", format="%.2f"),
           "value_basis": st.column_config.TextColumn("value at stake")}
    for c in list_df.columns:
        if str(c).startswith(("reason_", "offer_")):
            cfg[c] = st.column_config.TextColumn(str(c).replace("_", " "), width="large")
    ranked = list_df.attrs.get("ranked_by")
    if ranked in ("expected_net_value", "uplift") and ranked in show.columns:  # what orders the list, seen first
        show = show[["user_id", ranked] + [c for c in show.columns if c not in ("user_id", ranked)]]
        cfg.setdefault("uplift", st.column_config.NumberColumn("uplift", format="%.4f"))
    st.dataframe(show, hide_index=True, width="stretch", column_config=cfg, key=key)


def list_download(list_df: pd.DataFrame, file_name: str, key: str, label: str = "Download the list (CSV)",
                  on_download: Callable[[], None] | None = None) -> None:
    """A CSV download of the list (formula-safe: cells a spreadsheet would run are quoted), with the option to
    replace user ids by keyed pseudonyms; ``on_download`` runs when it is downloaded (then the page reruns)."""
    c = st.columns([2, 3], vertical_alignment="bottom")
    pseudo = c[0].toggle("Pseudonymise user ids", key=f"{key}:pseudo",
                         help="Replace each user id by a keyed pseudonym (HMAC-SHA256). The same key always gives the "
                              "same pseudonym, so lists stay joinable for whoever holds the key.")
    secret = ""
    if pseudo:
        secret = c[1].text_input("Pseudonymisation key", type="password", key=f"{key}:secret",
                                 help="At least 8 characters. Keep it safe: with it, ids can be matched again.")
        if len(secret) < 8:
            st.caption(":material/key: Enter a key of at least 8 characters to download pseudonymised ids.")
    ready = not pseudo or len(secret) >= 8

    def data() -> bytes:  # probabilities to 4 decimals, amounts to 2 with their unit (export.readable_list)
        out = export.pseudonymise_list(list_df, secret) if pseudo else list_df
        if out.attrs.get("assumptions"):  # an expected-value campaign: its assumptions in every row
            return campaign.campaign_export(out)
        return export.export_csv_bytes(export.readable_list(out, list_df.attrs.get("value_basis")))

    # A download that reruns the page (``on_download``) hands over its bytes now. Made on the click instead, the file
    # races the rerun the click starts: at the end of every run Streamlit drops the deferred files no session holds,
    # so the file could be gone before the browser fetched it (no download, no error the analyst could act on).
    payload = data if on_download is None else _made_once(f"{key}:bytes", list_df, secret if pseudo else "", data,
                                                          ready)
    st.download_button(label, data=payload, file_name=file_name, mime="text/csv", icon=":material/download:",
                       key=f"{key}:download", disabled=not ready, on_click=on_download or "ignore", type="primary")


def _made_once(key: str, list_df: pd.DataFrame, secret: str, make: Callable[[], bytes], ready: bool) -> bytes:
    """The download's bytes, made once for this very list (same rows and columns, the same assumptions and value basis,
    which the export reads, and the same key) and kept for the session's reruns: rerunning a page with a long list
    does not write its CSV again."""
    if not ready:
        return b""
    try:
        rows = int(pd.util.hash_pandas_object(list_df, index=False).sum())
    except TypeError:  # cells that cannot be hashed: made on every run
        return make()
    mark = (len(list_df), tuple(map(str, list_df.columns)), repr(list_df.attrs.get("assumptions")),
            list_df.attrs.get("value_basis"), rows, hashlib.sha256(secret.encode()).hexdigest())
    held = st.session_state.get(key)
    if held is None or held[0] != mark:
        held = (mark, make())
        st.session_state[key] = held
    return held[1]
