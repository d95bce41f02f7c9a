"""Lifecycle stages in the app: the rules (shown, and editable per run), customers by stage and risk, and the
audience a campaign is for. Every stage comes from :mod:`retention_core.lifecycle` (the same rules as the ``score``
command and the service); this module only lays them out."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from retention_core import lifecycle, plots, scoring
from retention_core import segments as seg
from retention_core.errors import RetentionError
from retention_core.lifecycle import AUDIENCES, STAGE_LABELS, StageRules

from . import cache, state
from .widgets import guard

AUDIENCE_HELP = ("Can still be saved: new, active and slipping customers, for a retention offer. Win-back: lapsed "
                 "customers, who stopped buying long ago by their own rhythm and the shop's, for a win-back offer. "
                 "Stages follow the rules under 'Lifecycle stage rules'.")


def rules_for(data: cache.RunData) -> StageRules:
    """The stage rules for this run: the analyst's (set on At-risk or Segments) or the library's defaults."""
    try:
        return StageRules.from_dict(state.get_stage_rules(data.name))
    except RetentionError:
        return StageRules()


def shop_gaps(data: cache.RunData) -> np.ndarray | None:
    """The usual gaps the run's stages are measured against: its validation users' (as the command line and the
    service measure them; none at all: the library's fallback rhythm)."""
    gaps = lifecycle.shop_gaps(data.validation)
    return gaps if gaps is not None else np.zeros(0)


def with_stages(data: cache.RunData, scores: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """``scores`` with each user's stage under this run's rules."""
    return scoring.add_stages(scores, frame, reference=shop_gaps(data), rules=rules_for(data))


def rules_panel(data: cache.RunData, key: str) -> StageRules:
    """The stage rules in words (with the shop's figures) and a form to change them; returns the rules in force."""
    rules = rules_for(data)
    rhythm = lifecycle.shop_rhythm(shop_gaps(data), rules) if lifecycle.has_inputs(data.validation) else None
    changed = rules != StageRules()
    with st.expander("Lifecycle stage rules" + (" (changed)" if changed else ""), icon=":material/rule:"):
        table = lifecycle.rules_table(rules, rhythm)
        st.markdown("\n".join(f"- **{r.stage}**: {r.rule}" for r in table.itertuples()))
        st.caption(table.attrs["note"] + " The first rule that holds wins, in this order: new, lapsed, slipping, "
                   "active." + (f" Shop's gaps measured on the run's {rhythm.repeat_customers:,} validation customers "
                                "who bought more than once." if rhythm and rhythm.repeat_customers else ""))
        tag = "-".join(f"{v:g}" for v in rules.as_dict().values())  # fresh inputs when the rules change
        with st.form(f"{key}:form:{tag}", border=False):
            c = st.columns(4)
            new_days = c[0].number_input("New: first purchase within (days)", 0, 3650, int(rules.new_days), 1,
                                         key=f"{key}:new_days:{tag}")
            slip = c[1].number_input("Slipping after (usual gaps)", 0.1, 50.0, float(rules.slipping_gaps), 0.1,
                                     format="%.1f", key=f"{key}:slipping:{tag}")
            lapse = c[2].number_input("Lapsed after (usual gaps)", 0.2, 100.0, float(rules.lapsed_gaps), 0.5,
                                      format="%.1f", key=f"{key}:lapsed:{tag}")
            pct = c[3].number_input("Shop's long gap (percentile)", 50, 99, int(rules.long_gap_percentile), 5,
                                    key=f"{key}:percentile:{tag}",
                                    help="This share of repeat customers have a shorter usual gap.")
            b = st.columns([1, 1, 3])
            apply = b[0].form_submit_button("Apply the rules", icon=":material/check:", type="primary")
            reset = b[1].form_submit_button("Back to the defaults", icon=":material/restart_alt:", disabled=not changed)
        if apply:
            with guard("checking the stage rules") as g:
                rules = StageRules(new_days=int(new_days), slipping_gaps=float(slip), lapsed_gaps=float(lapse),
                                   long_gap_percentile=float(pct))
            if not g.failed:
                state.set_stage_rules(data.name, rules.as_dict())
                st.rerun()
        elif reset:
            state.set_stage_rules(data.name, None)
            st.rerun()
    return rules


def stage_chart(scores: pd.DataFrame, key: str) -> None:
    """Customers by lifecycle stage and risk tier (stacked bars)."""
    if "stage" not in scores.columns or scores["stage"].isna().all():
        return
    table = seg.stage_risk_table(scores["stage"], scores["churn_probability"].to_numpy(dtype=float))
    st.plotly_chart(plots.stage_risk_bars(table, labels=STAGE_LABELS), width="stretch", key=key)


def audience_choice(scores: pd.DataFrame, key: str) -> str:
    """Who the campaign is for (can still be saved, win-back, everyone), with each audience's size; defaults to the
    customers who can still be saved. Without stages (a user table) everyone is the audience."""
    if "stage" not in scores.columns or scores["stage"].isna().all():
        return "all"
    sizes = {a: int(lifecycle.audience_mask(scores["stage"], a).sum()) for a in AUDIENCES}
    label = lambda a: f"{AUDIENCES[a]} ({sizes[a]:,})"  # noqa: E731
    return st.segmented_control("Audience", list(AUDIENCES), format_func=label, default="saveable", key=key,
                                help=AUDIENCE_HELP) or "saveable"
