"""Monitor: how the scorings of a saved run turned out once their horizon passed, and whether to retrain."""
from __future__ import annotations

from ui import monitor_panels
from ui.widgets import page_header


def main() -> None:
    page_header("Monitor", ":material/monitor_heart:",
                "See how a run's recorded scorings turned out once their horizon passed: realised quality against "
                "validation, predicted against realised churn, calibration, drift and segments, a verdict, and what "
                "each campaign changed against its control group.")
    if monitor_panels.demo_panel():
        return
    history = monitor_panels.recorded_history()
    if history is None:
        return
    if not len(history):
        monitor_panels.empty_state()
        return
    picked = monitor_panels.pick_run(history)
    if picked is None:
        return
    run, scorings = picked
    monitor_panels.history_panel(run, scorings)
    table = monitor_panels.pick_data()
    if table is None:
        return
    report = monitor_panels.load_report(run, scorings, table)
    if report is None:
        return
    monitor_panels.report_view(report, "run", table.name)


main()
