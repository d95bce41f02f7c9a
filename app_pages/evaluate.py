"""Evaluate: how well a trained model separates churners from retained users, and the threshold to act on."""
from __future__ import annotations

import streamlit as st

from ui import components


def main() -> None:
    components.page_header("Evaluate", ":material/query_stats:",
                           "Read a trained model's metrics and choose the threshold that fits your campaign.")
    names, _ = components.run_names()
    if not names:
        components.model_status()
        components.coming_next([
            "compare ROC and precision-recall curves, calibration, lift and gain charts",
            "move the threshold and see precision, recall and the expected profit of a retention campaign",
            "check the metrics per segment (country, channel, device...)",
        ])
        return
    picked = components.run_and_model_picker()
    if picked is None:
        return
    data, model = picked
    st.divider()
    components.threshold_panel(data, model)
    st.divider()
    components.curves_panel(data, model)
    st.divider()
    components.segment_panel(data, model)
    components.backtest_panel(data)


main()
