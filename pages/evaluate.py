"""Evaluate: how well a trained model separates churners from retained users."""
from __future__ import annotations

from ui import components

components.page_header("Evaluate", ":material/query_stats:",
                       "Read a trained model's metrics and choose the threshold that fits your campaign.")
components.model_status()
components.coming_next([
    "compare ROC and precision-recall curves, calibration, lift and gain charts",
    "move the threshold and see precision, recall and the expected profit of a retention campaign",
    "check the metrics per segment (country, channel, device...)",
])
