"""The benchmark's sections, in report order: each module defines its steps (registered in
:data:`bench.registry.STEPS`), how it plans its jobs, the rows it reports and the targets it judges."""
from __future__ import annotations

from bench import data  # noqa: F401  (registers the ``generate`` preparation step)
from bench.registry import Section
from bench.sections import app, features, offers, quality, scoring, serve, shap, spark, training

SECTIONS: dict[str, Section] = {s.name: s for s in (features.SECTION, training.SECTION, scoring.SECTION,
                                                    shap.SECTION, app.SECTION, quality.SECTION, offers.SECTION,
                                                    spark.SECTION, serve.SECTION)}
