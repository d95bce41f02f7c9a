"""The Explain page's panels: the explanation (SHAP values computed once per run, model and sample, also read by the
Segments page), what drives churn overall, one feature's effect, drivers per segment and one user's reasons."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from retention_core import bundle, plots

from . import cache
from .state import Key, widget_key
from .widgets import NONE, guard, show_error

INSIGHT_SEGMENTATIONS = {"attribute": "Attribute", "rfm": "RFM group"}
TOP_USERS = 20


def _k(data: cache.RunData, e: cache.Explanation):
    return lambda n: widget_key(Key.W_EXPLAIN, data.name, e.model, n)


def _labels(e: cache.Explanation) -> dict:
    return dict(zip(e.importance["feature"], e.importance["label"]))


def explanation_status(data: cache.RunData, model: str, sample: int) -> cache.Explanation | None:
    """The explanation of this model (computed once per run version, model and sample size; the status shows the
    work when it runs) and what it was computed on."""
    digest = bundle.run_id(data.path)
    label = data.labels().get(model, model)
    error = None
    with st.status(f"Explaining {label} on up to {sample:,} validation users (once per run and model)...",
                   expanded=False) as box:
        try:
            e = cache.explanation(data.path, digest, model, int(sample))
        except Exception as exc:  # shown below; the page and the session carry on
            error, e = exc, None
        if e is None:
            box.update(label=f"{label} could not be explained", state="error")
        else:
            st.markdown(f"Method: {e.method_note}")
            box.update(label=f"Explanations of {label} ready: {e.size:,} of {e.n_total:,} users", state="complete")
    if error is not None:
        show_error(error, "explaining the model")
        return None
    st.caption(f":material/science: {e.note} Effects are in percentage points (pts) of churn probability. "
               f"Method: {e.method_note}")
    return e


def explain_overall(data: cache.RunData, e: cache.Explanation) -> None:
    """Global importance (bar) and a beeswarm of each user's effects."""
    from retention_core import explain

    st.subheader("What drives churn overall", anchor=False)
    k = _k(data, e)
    c = st.columns(2)
    c[0].plotly_chart(plots.importance_bar(e.importance), width="stretch", key=k("importance"))
    bees = explain.beeswarm_data(e.points, e.values, max_features=12)
    c[1].plotly_chart(plots.beeswarm(bees), width="stretch", key=k("beeswarm"))
    top = e.importance.head(3)
    if len(top):
        st.caption("Most important: " + ", ".join(f"**{r.label}** ({r.mean_abs_shap:.1f} pts on average)"
                                                   for r in top.itertuples()) + ".")


def explain_dependence(data: cache.RunData, e: cache.Explanation) -> None:
    """How churn risk moves with one feature, optionally coloured by another."""
    from retention_core import explain

    st.subheader("How one feature moves the risk", anchor=False)
    feats = e.importance["feature"].tolist()
    if not feats:
        return
    labels = _labels(e)
    k = _k(data, e)
    c = st.columns(2)
    feature = c[0].selectbox("Feature", feats, format_func=lambda f: labels.get(f, f), key=k("dep_feature"))
    others = [NONE] + [f for f in feats if f != feature]
    colour = c[1].selectbox("Colour by", others, format_func=lambda f: labels.get(f, f), key=k("dep_colour"))
    with guard("drawing the dependence plot"):
        dep = explain.dependence(e.points, e.values, feature, None if colour == NONE else colour)
        st.plotly_chart(plots.dependence_plot(dep, labels.get(feature, feature),
                                              color_label=None if colour == NONE else labels.get(colour, colour)),
                        width="stretch", key=k("dependence"))


def explain_segments(data: cache.RunData, e: cache.Explanation, sample: int) -> None:
    """Importance per segment (an attribute or the RFM groups) against the whole population."""
    st.subheader("What drives churn per segment", anchor=False)
    k = _k(data, e)
    attrs = cache.segment_attributes(data)
    c = st.columns([1, 2])
    kind = c[0].radio("Segments", list(INSIGHT_SEGMENTATIONS), format_func=INSIGHT_SEGMENTATIONS.get,
                      horizontal=True, key=k("seg_kind")) or "attribute"
    column = None
    if kind == "attribute":
        if not attrs:
            st.caption("The validation users have no attributes to split by.")
            return
        column = c[1].selectbox("Attribute", attrs, key=k("seg_attr"))
    with guard("comparing the segments") as g:
        _, heat = cache.segment_comparison(data.path, bundle.run_id(data.path), e.model, kind, column, "[]",
                                           bundle.run_id(data.path), sample)
    if g.failed or heat is None:
        return
    st.plotly_chart(plots.segment_heatmap(heat.matrix, flags=heat.flags, labels=heat.labels, users=heat.users,
                                          how=heat.how), width="stretch", key=k("seg_heatmap"))
    st.caption("Each cell: the feature's mean effect in the segment minus its mean effect over everyone explained "
               "(pts). ★ marks each segment's biggest departures. Segment sizes count explained users only.")


def _user_options(data: cache.RunData, model: str, query: str) -> pd.DataFrame:
    v = data.validation.reset_index(drop=True)
    ids = v["user_id"].astype("string")
    if not query:
        return v.loc[v[f"p:{model}"].sort_values(ascending=False, kind="stable").index[:TOP_USERS]]
    q = query.strip().lower()
    exact = ids.str.lower() == q
    hit = exact if exact.any() else ids.str.lower().str.contains(q, regex=False, na=False)
    return v.loc[hit.fillna(False).to_numpy()]


def _user_label(row: pd.Series, model: str, dup: bool) -> str:
    when = f" on {pd.Timestamp(row['snapshot_date']):%Y-%m-%d}" if dup and "snapshot_date" in row else ""
    return f"{row['user_id']}{when} · {row[f'p:{model}']:.0%} churn risk"


def _short_value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return None
    if isinstance(v, (int, float)):
        return f"{v:,.0f}" if abs(v) >= 100 or float(v).is_integer() else f"{v:,.2f}"
    return str(v)


def _pick_user(data: cache.RunData, model: str, k) -> int | None:
    """Search by user id (empty: the users most at risk); the chosen user's position in the validation rows."""
    query = st.text_input("Search a user id", key=k("user_search"), placeholder="e.g. C000123",
                          help="Any validation user; leave empty to pick among the users most at risk.")
    found = _user_options(data, model, query)
    if found.empty:
        st.info(f"No validation user matches {query!r}.", icon=":material/search_off:")
        return None
    if len(found) > 200:
        st.caption(f"{len(found):,} users match; showing the first 200. Type more of the id to narrow it down.")
        found = found.head(200)
    dup = bool(data.validation["user_id"].duplicated().any())
    caption = "Most at risk first." if not query else f"{len(found):,} user(s) match."
    return st.selectbox(f"User ({caption})", [int(i) for i in found.index], key=k(f"user_pick:{query}"),
                        format_func=lambda i: _user_label(found.loc[i], model, dup))


def explain_user(data: cache.RunData, e: cache.Explanation) -> None:
    """One user: search by user id, the waterfall of their effects and the reasons in plain words."""
    st.subheader("Why one user is at risk", anchor=False)
    k = _k(data, e)
    position = _pick_user(data, e.model, k)
    if position is None:
        return
    with guard("explaining this user") as g:
        u = cache.user_explanation(data.path, bundle.run_id(data.path), e.model, int(position))
    if g.failed:
        return
    row = data.validation.reset_index(drop=True).loc[int(position)]
    c = st.columns([2, 3])
    with c[0]:
        m = st.columns(2)
        m[0].metric("Churn probability", f"{u['prediction']:.1f}%",
                    delta=f"{u['prediction'] - u['base']:+.1f} pts vs average", delta_color="inverse")
        outcome = row.get("churned")
        m[1].metric("Outcome", "-" if pd.isna(outcome) else ("churned" if outcome == 1 else "came back"))
        st.markdown("**Reasons the risk is high**")
        if u["reasons"]:
            st.markdown("\n".join(f"{i}. {r}" for i, r in enumerate(u["reasons"], 1)))
        else:
            st.caption("Nothing in this user's behaviour raises the risk above the average user's.")
    values = {f: _short_value(v) for f, v in u["values"].items()}
    c[1].plotly_chart(plots.waterfall(u["points"], base=u["base"], prediction=u["prediction"], labels=_labels(e),
                                      values=values, title=f"Why {row['user_id']}'s churn risk is "
                                      f"{u['prediction']:.0f}%"), width="stretch", key=k("waterfall"))
