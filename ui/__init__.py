"""The Streamlit-aware helpers of Retention studio, and the only code that calls :mod:`retention_core` for the app.

``state`` (session keys), ``cache`` (every cached library call), ``tables`` (the table on screen), ``widgets``
(shared widgets), ``run_picker`` (opening saved runs, the run and model pickers), ``jobs`` (the training job) and one
module of panels per page. Pages import only this package; the library never imports Streamlit.
"""
