"""Retention studio's library: data in, leakage-safe datasets, models, explanations and at-risk lists out.

Pure Python; it never imports Streamlit, and imports TensorFlow only when a deep model is trained or loaded.
"""
__version__ = "0.1.0"
