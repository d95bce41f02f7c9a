"""The Streamlit-aware helpers of Retention studio: session state, cached library calls and widget groups.

Pages use only this package and :mod:`retention_core`; the library itself never imports Streamlit.
"""
