"""The one registry of churn models: key -> :class:`ModelSpec` (label, family, settings with their ranges, factory).

Usage::

    from retention_core.models import REGISTRY, DEFAULT_AUTO, make_model

    model = make_model("gbm", numeric=ds.numeric, categorical=ds.categorical, horizon_days=90, learning_rate=0.1)
    model.fit(X, y, progress=callback)            # a scikit-learn classifier (clone, cross_validate, ...)
    p = churn_probability(model, X_new)           # predict_proba(X_new)[:, churned]; shape (n,)

A sequence model (``needs_sequences``) reads each user's weekly activity from the same table:
``X = with_sequences(frame[features], ds.sequences)`` (see :mod:`retention_core.models.base`).

Importing this package is cheap: scikit-learn and Keras (TensorFlow) are imported only when a model is built, and the
model classes are reachable as attributes (``retention_core.models.GRUModel``) that import their module on first use.
"""
from __future__ import annotations

import importlib
import math
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

from retention_core.errors import ConfigError

__all__ = [
    "DEFAULT_AUTO",
    "FAMILIES",
    "Param",
    "ModelSpec",
    "for_population",
    "REGISTRY",
    "churn_probability",
    "make_model",
    "model_input",
    "model_label",
    "resolve_model_keys",
]

FAMILIES = ("baseline", "linear", "tree", "deep", "ensemble")
KINDS = ("int", "float", "choice", "bool")


@dataclass(frozen=True)
class Param:
    """One model setting, described for forms and checks.

    ``kind``: ``"int"`` or ``"float"`` (with ``low`` / ``high`` bounds, inclusive; ``log=True`` suggests a log-scale
    slider), ``"choice"`` (one of ``choices``; values may be None or tuples), ``"bool"``. ``optional=True`` lets a
    number be None (e.g. no depth limit). ``advanced=True`` marks settings a form may fold away.
    """

    name: str
    default: Any
    kind: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    help: str = ""
    log: bool = False
    optional: bool = False
    advanced: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Param {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"Param {self.name!r}: a choice needs choices")

    def check(self, value: Any, model: str = "") -> Any:
        """The value, converted to the setting's type; ConfigError (quoting it) when it is not allowed."""
        where = f"{model}: " if model else ""
        if self.kind == "choice":
            for c in self.choices or ():
                if value == c and type(value) is not bool or (value is None and c is None):
                    return c
                if isinstance(c, tuple) and isinstance(value, list) and tuple(value) == c:
                    return c
                if isinstance(value, str) and _choice_text(value) == _choice_text(c):
                    return c  # the same choice written as text (command line, query string)
            raise ConfigError(f"{where}{self.name} must be one of {list(self.choices or ())}, got {value!r}.")
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
                return value.strip().lower() in ("true", "yes", "1")
            raise ConfigError(f"{where}{self.name} must be true or false, got {value!r}.")
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "")):
            if self.optional:
                return None
            raise ConfigError(f"{where}{self.name} must be {self._range()}, got {value!r}.")
        number: float
        try:
            if isinstance(value, bool):
                raise TypeError
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}{self.name} must be {self._range()}, got {value!r}.") from None
        if not math.isfinite(number):
            raise ConfigError(f"{where}{self.name} must be {self._range()}, got {value!r}.")
        if self.kind == "int":
            if not number.is_integer():
                raise ConfigError(f"{where}{self.name} must be {self._range()}, got {value!r}.")
            number = int(number)
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            raise ConfigError(f"{where}{self.name} must be {self._range()}, got {value!r}.")
        return number

    def _range(self) -> str:
        kind = "a whole number" if self.kind == "int" else "a number"
        if self.low is not None and self.high is not None:
            text = f"{kind} from {self.low:g} to {self.high:g}"
        elif self.low is not None:
            text = f"{kind} of at least {self.low:g}"
        elif self.high is not None:
            text = f"{kind} of at most {self.high:g}"
        else:
            text = kind
        return text + (" or None" if self.optional else "")


def _choice_text(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value).strip().strip("()[]").replace(" ", "").rstrip(",").lower()


@dataclass(frozen=True)
class ModelSpec:
    """A model the product offers: ``key`` (command line, saved runs), ``label`` (UI), ``family``
    (``baseline | linear | tree | deep``; the explainer picks its SHAP method by it), ``needs_sequences`` (reads
    ``Dataset.sequences``, in its input's own columns: :func:`model_input`), ``params`` (name -> :class:`Param`), and the factory behind :meth:`build`."""

    key: str
    label: str
    family: str
    factory: Callable[..., Any] = field(repr=False)
    params: dict[str, Param] = field(default_factory=dict)
    needs_sequences: bool = False
    # reads each row's raw events as tokens (``event_tokens`` of :func:`retention_core.dataset.build_dataset`), which
    # travel inside ``sequences``; the number is how many of the latest events per row
    needs_events: int = 0
    description: str = ""
    # columns the model reads by name (each entry: one column, or alternatives of which one is enough); the
    # feature-based models read whatever they are given and need none
    requires: tuple[tuple[str, ...], ...] = ()

    def missing_columns(self, columns: Any) -> list[str]:
        """The required columns absent from ``columns`` (alternatives written ``a or b``); empty when usable,
        e.g. to skip the baselines on a user table that has no recency or purchase-count columns."""
        have = set(columns)
        return [" or ".join(alts) for alts in self.requires if not any(a in have for a in alts)]

    def defaults(self) -> dict[str, Any]:
        return {name: p.default for name, p in self.params.items()}

    def check_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``params``, each checked; ConfigError on an unknown name or a bad value."""
        unknown = [k for k in params if k not in self.params]
        if unknown:
            valid = ", ".join(self.params) or "none"
            raise ConfigError(f"Model {self.key!r} has no setting {unknown[0]!r}; its settings are: {valid}.")
        out = self.defaults()
        for k, v in params.items():
            out[k] = self.params[k].check(v, self.label)
        return out

    def build(self, numeric: list[str] | None, categorical: list[str] | None, horizon_days: float = 90,
              **params: Any) -> Any:
        """A new, unfitted model with these settings (unknown or invalid settings raise ConfigError)."""
        return self.factory(numeric=numeric, categorical=categorical, horizon_days=horizon_days,
                            **self.check_params(params))


# --------------------------------------------------------------------------------------------------------------------
# factories (each imports its module on first use)
# --------------------------------------------------------------------------------------------------------------------


def _module(name: str) -> Any:
    return importlib.import_module(f"retention_core.models.{name}")


def _recency(*, numeric: Any, categorical: Any, horizon_days: float) -> Any:
    return _module("baselines").RecencyRule(horizon_days=horizon_days)


def _bgnbd(*, numeric: Any, categorical: Any, horizon_days: float, **p: Any) -> Any:
    return _module("baselines").BGNBDModel(horizon_days=horizon_days, **p)


def _ensemble(*, numeric: Any, categorical: Any, horizon_days: float) -> Any:
    ensemble = _module("ensemble")
    return ensemble.EnsembleModel(ensemble.default_members(numeric, categorical, horizon_days))


def _sklearn_factory(cls_name: str) -> Callable[..., Any]:
    def factory(*, numeric: Any, categorical: Any, horizon_days: float, **p: Any) -> Any:
        return getattr(_module("sklearn_models"), cls_name)(numeric, categorical, **p)

    factory.__name__ = f"make_{cls_name}"
    return factory


def _keras_factory(cls_name: str) -> Callable[..., Any]:
    def factory(*, numeric: Any, categorical: Any, horizon_days: float, **p: Any) -> Any:
        return getattr(_module("keras_models"), cls_name)(numeric, categorical, **p)

    factory.__name__ = f"make_{cls_name}"
    return factory


def _encoder(*, numeric: Any, categorical: Any, horizon_days: float, **p: Any) -> Any:
    return _module("encoder.model").EncoderModel(numeric, categorical, **p)


def _training_params(epochs: int = 30) -> dict[str, Param]:
    return {
        "epochs": Param("epochs", epochs, "int", low=1, high=500, help="Passes over the training rows (at most)."),
        "batch_size": Param("batch_size", 256, "choice", choices=(64, 128, 256, 512, 1024, 2048, 4096, 8192),
                            help="Rows per training step; larger is faster, especially on a GPU.", advanced=True),
        "learning_rate": Param("learning_rate", 1e-3, "float", low=1e-5, high=0.1, log=True,
                               help="Step size of the Adam optimiser."),
        "patience": Param("patience", 5, "int", low=1, high=50,
                          help="Epochs without improvement on validation before training stops.", advanced=True),
        "class_weight": Param("class_weight", "balanced", "choice", choices=("balanced", None),
                              help="'balanced' weighs churned and retained users equally.", advanced=True),
        "seed": Param("seed", 0, "int", low=0, high=2**31 - 1, help="Random seed (same seed, same model).",
                      advanced=True),
    }


def _p(*items: Param) -> dict[str, Param]:
    return {p.name: p for p in items}


_DROPOUT = "Share of units switched off at random during training (regularisation)."
_L2 = "Weight penalty (regularisation)."

REGISTRY: dict[str, ModelSpec] = {
    s.key: s
    for s in [
        ModelSpec(
            "recency", "Recency rule", "baseline", _recency, {},
            description="Churn risk rises with days since the last purchase; the yardstick every model should beat.",
            requires=(("recency_days",),),
        ),
        ModelSpec(
            "bgnbd", "BG/NBD", "baseline", _bgnbd,
            _p(
                Param("penalizer", 0.0, "float", low=0.0, high=10.0,
                      help="Shrinks the four BG/NBD parameters; try 0.001-0.1 on small data.", advanced=True),
                Param("score", "no_purchase", "choice", choices=("no_purchase", "not_alive"),
                      help="'no_purchase': probability of no purchase in the horizon; 'not_alive': 1 - P(alive).",
                      advanced=True),
            ),
            description="Buy-till-you-die model of purchase counts and timing (Fader, Hardie & Lee 2005).",
            requires=(("repeat_purchases",), ("tenure_days",), ("first_to_last_days", "recency_days")),
        ),
        ModelSpec(
            "logreg", "Logistic regression", "linear", _sklearn_factory("LogisticModel"),
            _p(
                Param("penalty", "l2", "choice", choices=("l2", "l1", "elasticnet"),
                      help="'l1' and 'elasticnet' can drop features entirely."),
                Param("C", 0.1, "float", low=1e-4, high=1e4, log=True,
                      help="Inverse regularisation strength: smaller = simpler model (the features overlap a lot: "
                           "trailing windows, totals, rates)."),
                Param("l1_ratio", 0.5, "float", low=0.0, high=1.0, help="L1 share of the elastic-net penalty.",
                      advanced=True),
                Param("class_weight", "balanced", "choice", choices=("balanced", None),
                      help="'balanced' weighs churned and retained users equally.", advanced=True),
                Param("max_iter", 1000, "int", low=50, high=100_000, help="Solver iterations (at most).",
                      advanced=True),
                Param("log_all", True, "bool", help="Every count, amount and duration on a log scale (else only the "
                      "most skewed ones).", advanced=True),
                Param("clip", True, "bool", help="Clip each feature to the range seen in training (lifetime totals "
                      "grow past it in later snapshots).", advanced=True),
            ),
            description="Interpretable linear model on scaled, log-transformed features clipped to the training "
                        "range.",
        ),
        ModelSpec(
            "random_forest", "Random forest", "tree", _sklearn_factory("RandomForestModel"),
            _p(
                Param("n_estimators", 200, "int", low=10, high=2000, help="Number of trees."),
                Param("max_depth", None, "int", low=1, high=64, optional=True,
                      help="Deepest split allowed; None = grow until leaves are small."),
                Param("min_samples_leaf", 20, "int", low=1, high=1000, help="Fewest users in a leaf."),
                Param("class_weight", "balanced_subsample", "choice", choices=("balanced_subsample", "balanced", None),
                      help="Reweighting of churned vs retained users.", advanced=True),
                Param("n_jobs", -1, "int", low=-1, high=256, help="CPU cores to use (-1 = all).", advanced=True),
                Param("random_state", 0, "int", low=0, high=2**31 - 1, help="Random seed.", advanced=True),
                Param("max_samples", 0.3, "float", low=0.01, high=1.0, optional=True,
                      help="Share of users drawn for each tree (None = all); smaller is faster and saves smaller.",
                      advanced=True),
                Param("max_tree_rows", 100_000, "int", low=1000, high=100_000_000, optional=True,
                      help="Most users drawn for one tree, whatever the share (None = no limit): keeps a forest on "
                           "millions of rows to minutes.", advanced=True),
            ),
            description="Many decorrelated decision trees; robust and needs little tuning.",
        ),
        ModelSpec(
            "gbm", "Gradient boosting", "tree", _sklearn_factory("GradientBoostingModel"),
            _p(
                Param("learning_rate", 0.05, "float", low=0.001, high=1.0, log=True,
                      help="Shrinkage per tree: smaller needs more trees."),
                Param("max_iter", 300, "int", low=10, high=5000, help="Number of trees (at most)."),
                Param("max_leaf_nodes", 15, "int", low=2, high=1024, help="Leaves per tree."),
                Param("min_samples_leaf", 100, "int", low=1, high=10_000,
                      help="Fewest users in a leaf (churn labels are noisy: small leaves learn the noise)."),
                Param("l2_regularization", 1.0, "float", low=0.0, high=100.0, help="Penalty on leaf values.",
                      advanced=True),
                Param("early_stopping", True, "bool",
                      help="Stop adding trees when validation loss stops improving.", advanced=True),
                Param("class_weight", None, "choice", choices=(None, "balanced"),
                      help="'balanced' weighs churned and retained users equally.", advanced=True),
                Param("random_state", 0, "int", low=0, high=2**31 - 1, help="Random seed.", advanced=True),
            ),
            description="Histogram gradient-boosted trees; usually the most accurate on tabular features.",
        ),
        ModelSpec(
            "mlp", "Neural network (MLP)", "deep", _keras_factory("MLPModel"),
            {
                **_p(
                    Param("hidden", (128, 64), "choice", choices=((64,), (128, 64), (256, 128), (256, 128, 64)),
                          help="Units per hidden layer."),
                    Param("dropout", 0.3, "float", low=0.0, high=0.9, help=_DROPOUT),
                    Param("l2", 1e-4, "float", low=0.0, high=0.1, help=_L2, advanced=True),
                ),
                **_training_params(),
            },
            description="Feed-forward neural network on the per-user features.",
        ),
        ModelSpec(
            "cnn", "1-D CNN on weekly activity", "deep", _keras_factory("CNNModel"),
            {
                **_p(
                    Param("filters", 32, "int", low=4, high=512, help="Convolution filters."),
                    Param("kernel_size", 3, "int", low=1, high=13, help="Weeks each filter looks at."),
                    Param("dropout", 0.3, "float", low=0.0, high=0.9, help=_DROPOUT),
                    Param("l2", 1e-4, "float", low=0.0, high=0.1, help=_L2, advanced=True),
                ),
                **_training_params(),
            },
            needs_sequences=True,
            description="Convolutions over the weekly activity sequence plus the per-user features.",
        ),
        ModelSpec(
            "gru", "GRU on weekly activity", "deep", _keras_factory("GRUModel"),
            {
                **_p(
                    Param("units", 32, "int", low=4, high=512, help="Recurrent units."),
                    Param("dropout", 0.3, "float", low=0.0, high=0.9, help=_DROPOUT),
                    Param("l2", 1e-4, "float", low=0.0, high=0.1, help=_L2, advanced=True),
                ),
                **_training_params(),
            },
            needs_sequences=True,
            description="Recurrent network over the weekly activity sequence plus the per-user features.",
        ),
        ModelSpec(
            "transformer", "Transformer on weekly activity", "deep", _keras_factory("TransformerModel"),
            {
                **_p(
                    Param("d_model", 32, "choice", choices=(16, 32, 64, 128), help="Width of the encoder."),
                    Param("heads", 2, "choice", choices=(1, 2, 4, 8), help="Attention heads (must divide d_model)."),
                    Param("blocks", 1, "int", low=1, high=6, help="Encoder blocks."),
                    Param("dropout", 0.1, "float", low=0.0, high=0.9, help=_DROPOUT),
                    Param("l2", 1e-4, "float", low=0.0, high=0.1, help=_L2, advanced=True),
                ),
                **_training_params(),
            },
            needs_sequences=True,
            description="Self-attention encoder over the weekly activity sequence plus the per-user features.",
        ),
        ModelSpec(
            "encoder", "Pre-trained sequence encoder", "deep", _encoder,
            _p(
                Param("epochs", 6, "int", low=1, high=200, help="Passes of contrastive pre-training (no labels)."),
                Param("item_dim", 256, "int", low=4, high=1024, help="Width of each product's embedding.",
                      advanced=True),
                Param("units", 128, "int", low=4, high=1024, help="Recurrent units over the events.", advanced=True),
                Param("dim", 32, "int", low=2, high=256, help="Width of a customer's embedding (the recent "
                      "behaviour pattern) handed to the boosting."),
                Param("vocab_size", 8000, "int", low=10, high=200_000, help="Most products the encoder knows by "
                      "name; rarer ones share one bucket.", advanced=True),
                Param("batch_size", 128, "choice", choices=(32, 64, 128, 256, 512),
                      help="Customers per pre-training step (the others of a batch are the negatives).",
                      advanced=True),
                Param("learning_rate", 2e-3, "float", low=1e-5, high=0.1, log=True,
                      help="Step size of the Adam optimiser.", advanced=True),
                Param("temperature", 0.1, "float", low=0.01, high=10.0, help="Softness of the contrastive "
                      "softmax.", advanced=True),
                Param("view_events", 48, "int", low=4, high=1024, help="Longest subsequence drawn as a view.",
                      advanced=True),
                Param("pretrain_rows", 8000, "int", low=8, high=10_000_000, help="Customers drawn per epoch.",
                      advanced=True),
                Param("components", 4, "int", low=0, high=256, help="Principal components of the embedding the "
                      "boosting reads (0: the whole embedding).", advanced=True),
                Param("max_iter", 300, "int", low=10, high=5000, help="Trees of the boosting (at most)."),
                Param("min_samples_leaf", 100, "int", low=1, high=10_000, help="Fewest users in a leaf.",
                      advanced=True),
                Param("early_stopping", True, "bool", help="Stop adding trees when validation loss stops "
                      "improving.", advanced=True),
                Param("seed", 0, "int", low=0, high=2**31 - 1, help="Random seed.", advanced=True),
            ),
            needs_sequences=True, needs_events=128,
            description="A GRU over each customer's latest events (products, amounts, quantities, kinds, time gaps), "
                        "pre-trained without labels on the shop's own log (contrastive, CoLES); its frozen embedding "
                        "joins the aggregate features in gradient boosting.",
        ),
        ModelSpec(
            "ensemble", "Ensemble (average)", "ensemble", _ensemble, {},
            description="Equal-weight average of logistic regression, random forest, gradient boosting and BG/NBD; "
                        "assembled from those members when they are trained in the same run.",
            requires=(("repeat_purchases",), ("tenure_days",), ("first_to_last_days", "recency_days")),
        ),
    ]
}

# What ``--models auto`` trains: fast and strong; neural models only when asked for by name.
DEFAULT_AUTO: list[str] = ["recency", "bgnbd", "logreg", "random_forest", "gbm", "ensemble"]

CALIBRATION_METHODS = ("isotonic", "sigmoid")


def _spec(key: Any) -> ModelSpec:
    spec = REGISTRY.get(key) if isinstance(key, str) else None
    if spec is None:
        raise ConfigError(f"Unknown model {key!r}; choose from: {', '.join(REGISTRY)}.")
    return spec


def model_label(key: Any) -> str:
    """How a model is named on screen and in reports: the registry's label ("Logistic regression" for ``logreg``);
    a key the registry does not know is shown as given."""
    spec = REGISTRY.get(key) if isinstance(key, str) else None
    return spec.label if spec is not None else str(key)


def make_model(key: str, *, numeric: list[str] | None, categorical: list[str] | None, horizon_days: float = 90,
               calibrate: str | None = None, **params: Any) -> Any:
    """A new, unfitted model from the registry.

    ``params`` override the spec's defaults (each is checked: ConfigError quoting the unknown name or bad value and
    listing the valid ones). ``calibrate="isotonic" | "sigmoid"`` wraps the model in
    :class:`~retention_core.models.calibration.CalibratedModel` (the one place that does); None or ``"none"`` leaves
    it as it is.
    """
    spec = _spec(key)
    model = spec.build(numeric, categorical, horizon_days, **params)
    if calibrate is None or calibrate == "none":
        return model
    if calibrate not in CALIBRATION_METHODS:
        raise ConfigError(f"calibrate must be one of {list(CALIBRATION_METHODS)} or None, got {calibrate!r}.")
    return _module("calibration").CalibratedModel(model, method=calibrate)


def model_input(key: str, X: Any, sequences: Any = None) -> Any:
    """The input of the registry's model ``key`` for the rows of ``X``: the rows with their weekly activity
    (``sequences``, rows aligned with ``X``; :func:`~retention_core.models.base.with_sequences`) when the model reads
    it, ``X`` itself otherwise. ConfigError when a sequence model gets no activity."""
    spec = REGISTRY.get(key) if isinstance(key, str) else None
    if spec is None or not spec.needs_sequences:
        return X
    if sequences is None:
        raise ConfigError(f"{spec.label} needs weekly activity sequences: build the dataset from an event log (user "
                          "tables have no sequences).")
    if not spec.needs_events and hasattr(sequences, "tokens"):  # the event tokens are the encoder's alone
        sequences = sequences.weekly
    elif spec.needs_events and not hasattr(sequences, "tokens"):
        raise ConfigError(f"{spec.label} reads each customer's latest events: build the dataset with event tokens "
                          f"(build_dataset(..., event_tokens={spec.needs_events})).")
    return _module("base").with_sequences(X, sequences)


def churn_probability(model: Any, X: Any) -> Any:
    """The churn probability of every row (1-D): see :func:`retention_core.models.base.churn_probability`."""
    return _module("base").churn_probability(model, X)


_POPULATION_FITS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> (rows digest, adapted model)
_POPULATION_LOCK = threading.Lock()


def for_population(model: Any, X: Any) -> Any:
    """The model to score ``X`` with: models that learn without labels from the population itself (BG/NBD, alone,
    in the ensemble or calibrated) are refitted on the users being scored, i.e. on all purchases up to the scoring
    date; every other model is returned unchanged. Batch scoring uses it; a single request keeps the trained
    parameters (see ``BGNBDModel.MIN_POPULATION``).

    The model refitted on a population is kept (one per model, for the latest rows given) and handed out again for
    the same rows: scoring and the explanation of those scores get the very same fitted object, so a reason never
    describes other parameters than the probability it explains."""
    adapt = getattr(model, "for_population", None)
    if not callable(adapt):
        return model
    import pandas as pd

    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    digest = (tuple(map(str, frame.columns)), len(frame),
              int(pd.util.hash_pandas_object(frame, index=False).sum()) if len(frame) else 0)
    with _POPULATION_LOCK:
        kept = _POPULATION_FITS.get(model)
        if kept is not None and kept[0] == digest:
            return kept[1]
    adapted = adapt(X)
    with _POPULATION_LOCK:
        _POPULATION_FITS[model] = (digest, adapted)
    return adapted


def resolve_model_keys(text: str | list[str] | None) -> list[str]:
    """The keys named by a ``--models`` value: ``"auto"`` (or empty) -> :data:`DEFAULT_AUTO`, ``"all"`` -> every
    model, else a comma-separated list (order kept, duplicates dropped); ConfigError names an unknown key."""
    if text is None:
        return list(DEFAULT_AUTO)
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text)]
    items = [t for t in items if t]
    if not items or items == ["auto"]:
        return list(DEFAULT_AUTO)
    if items == ["all"]:
        return list(REGISTRY)
    out: list[str] = []
    for t in items:
        key = "auto" if t == "auto" else _spec(t.lower() if t.lower() in REGISTRY else t).key
        for k in DEFAULT_AUTO if key == "auto" else [key]:
            if k not in out:
                out.append(k)
    return out


_LAZY = {
    "RecencyRule": "baselines",
    "BGNBDModel": "baselines",
    "LogisticModel": "sklearn_models",
    "RandomForestModel": "sklearn_models",
    "GradientBoostingModel": "sklearn_models",
    "CalibratedModel": "calibration",
    "ChurnClassifier": "estimator",
    "EnsembleModel": "ensemble",
    "make_preprocessor": "preprocessing",
    "MLPModel": "keras_models",
    "CNNModel": "keras_models",
    "GRUModel": "keras_models",
    "TransformerModel": "keras_models",
    "EncoderModel": "encoder.model",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(_module(_LAZY[name]), name)
    raise AttributeError(f"module 'retention_core.models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
