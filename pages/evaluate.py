"""Evaluate: how well a trained model separates churners from retained users, and the threshold to act on."""
from __future__ import annotations

import streamlit as st

from ui import evaluate_panels, run_picker
from ui.widgets import nothing_to_show, page_header


def main() -> None:
    page_header("Evaluate", ":material/query_stats:",
                "Read a trained model's metrics and choose the threshold that fits your campaign.")
    names, _ = run_picker.run_names()
    if not names:
        nothing_to_show([
            "compare ROC and precision-recall curves, calibration, lift and gain charts",
            "move the threshold and see precision, recall and the expected profit of a retention campaign",
            "check the metrics per segment (country, channel, device...)",
        ])
        return
    picked = run_picker.run_and_model_picker()
    if picked is None:
        return
    data, model = picked
    st.divider()
    evaluate_panels.threshold_panel(data, model)
    st.divider()
    evaluate_panels.curves_panel(data, model)
    st.divider()
    evaluate_panels.segment_panel(data, model)
    evaluate_panels.backtest_panel(data)


main()
