"""Why a model calls a user at risk: SHAP values for every model family, reasons in plain words, per-segment views.

Computation lives here; the app only asks for DataFrames. An :class:`Explainer` wraps one fitted model, builds its
SHAP explainer on first use and caches every result it computes (keyed by a digest of the rows), so a page that
reruns never recomputes what it already has::

    ex = Explainer(model, "gbm", X_background, numeric, categorical, reference_y=y_background)
    sample = sample_for_explanation(X, y, n=1000)          # bounded and stratified: say so on screen (sample.note)
    sv = ex.shap_values(sample.X)                          # one column per readable unit, rows aligned with X
    global_importance(sv, ex.unit_values(sample.X))        # feature, label, mean_abs_shap, direction
    ex.reasons(X_at_risk, n=3)                             # per user: texts such as "No purchase for 94 days ..."

The package, by concern:

* ``sampling``: bounded, stratified samples of the users explained and of the background users.
* ``units``: readable units (one per original column; weekly activity units for sequence models) and their values.
* ``wording``: feature labels, "typical for retained users" references and reasons in plain words.
* ``backend``: the one interface every family is explained through (``units``, ``space``, ``method``,
  ``expected_value()``, ``values(X, sequences)``) and the exact / permutation game the model-agnostic ones share;
  one backend per family: ``encoded`` (trees and logistic regression), ``deep`` (neural models), ``baseline``
  (recency rule, BG/NBD and any other model).
* ``explainer``: :class:`Explainer` (picks its backend once, by family; caches; effects in points; reasons) and the
  ensemble's explainer.
* ``aggregates``: importance, beeswarm, dependence and mean |SHAP| per segment for charts.
* ``run``: the explainer of a saved run's model and the top reasons of scored users.

How each family is explained (``Explainer.method`` / ``Explainer.space``):

* ``tree`` (random forest, gradient boosting): ``shap.TreeExplainer`` on the encoded matrix the trees see
  (categoricals are ordinal codes, never native categories). Gradient boosting is explained in **log-odds**, the
  random forest in **probability** (its trees average probabilities).
* ``linear`` (logistic regression): ``shap.LinearExplainer`` on the encoded matrix with a background sample, in
  **log-odds**.
* ``deep`` (MLP, CNN, GRU, Transformer), in **probability**: by default (``deep_method="gradient"``) expected
  gradients (SHAP's GradientExplainer method, with TensorFlow gradients) over the model inputs, summed into readable
  units and adjusted so each user's values add up exactly; with ``deep_method="permutation"``,
  ``shap.PermutationExplainer`` over the readable units, with the Keras model called directly (not
  ``model.predict``) on inputs assembled from the user's and the background users' values. Each permutation is
  exactly additive; more permutations lower the noise.
* ``baseline`` (recency rule, BG/NBD): ``shap.ExactExplainer``'s definition over their one to three inputs with a
  small background, in **probability**. For BG/NBD, a background mix where days since the last purchase exceed the
  customer's age is clipped to the age (the model cannot score impossible histories).
* A calibrated model is explained through its underlying model (``CalibratedModel.base_``); calibration is monotone
  and keeps the ranking of users. Effects in points (:meth:`Explainer.effects_points`) are rescaled to the calibrated
  churn probability.

SHAP values satisfy ``expected_value + row sum == model output`` in ``Explainer.space``. Reasons and "+12 pts" are
in percentage points of churn probability: log-odds values are shared out in proportion to their size, so a user's
points add up to their churn probability minus the average one.

Importing this package is light (numpy, pandas, scipy); shap, scikit-learn, Keras and TensorFlow are imported when a
model of theirs is first explained.
"""
from __future__ import annotations

from .aggregates import (SegmentShap, beeswarm_data, dependence, global_importance,
                         segment_mean_abs_shap)
from .explainer import GRADIENT_SAMPLES, EnsembleExplainer, Explainer, make_explainer
from .run import ScoringExplanation, depends_on_population, explainer_for_run, top_reasons
from .sampling import DEEP_BACKGROUND, DEFAULT_BACKGROUND, DEFAULT_SAMPLE, ExplanationSample, sample_for_explanation
from .wording import MIN_POINTS, Reference, feature_label, reason_texts

__all__ = [
    "DEEP_BACKGROUND",
    "DEFAULT_BACKGROUND",
    "DEFAULT_SAMPLE",
    "EnsembleExplainer",
    "Explainer",
    "ExplanationSample",
    "GRADIENT_SAMPLES",
    "MIN_POINTS",
    "Reference",
    "ScoringExplanation",
    "SegmentShap",
    "beeswarm_data",
    "dependence",
    "depends_on_population",
    "explainer_for_run",
    "feature_label",
    "global_importance",
    "make_explainer",
    "reason_texts",
    "sample_for_explanation",
    "segment_mean_abs_shap",
    "top_reasons",
]
