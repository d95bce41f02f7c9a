"""The registry's ``encoder``: the pre-trained sequence encoder's frozen embeddings beside the aggregate features in
gradient boosting (late fusion).

``fit`` learns the item vocabulary from the training rows' tokens, pre-trains the encoder on them without labels
(CoLES, :mod:`.pretrain`), embeds each row and fits :class:`~retention_core.models.sklearn_models.GradientBoostingModel`
on the features and the embedding columns ``recent_pattern_1..k``. Each row's tokens hold only events at or before its
snapshot's cutoff (:func:`retention_core.event_tokens.tokenize`), so the embedding and the score learn from the past
only. The event tokens arrive in ``sequences`` (:class:`~retention_core.event_tokens.SequenceInputs` or
:class:`~retention_core.event_tokens.EventTokens`).
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from retention_core.errors import ModelError
from retention_core.event_tokens import EventTokens
from retention_core.models.base import ParamsMixin, Progress, check_frame, check_labels, report_progress

from .vocabulary import Vocabulary, arrays

EMBEDDING_PREFIX = "recent_pattern_"


def event_tokens(sequences: Any, n: int) -> EventTokens:
    """The event tokens inside ``sequences``; ModelError when there are none or their rows do not match."""
    tokens = getattr(sequences, "tokens", sequences)
    if not isinstance(tokens, EventTokens):
        raise ModelError("The sequence encoder reads each customer's events: build the dataset from an event log "
                         "with event tokens (user tables have none).")
    if len(tokens) != n:
        raise ModelError(f"Event tokens for {len(tokens)} rows, {n} users; they must match row for row.")
    return tokens


class EncoderModel(ParamsMixin):
    """Late fusion of the pre-trained encoder's embedding and the aggregate features (see the module)."""

    _param_names = ("numeric", "categorical", "item_dim", "units", "dim", "vocab_size", "epochs", "batch_size",
                    "learning_rate", "temperature", "view_events", "pretrain_rows", "max_iter", "min_samples_leaf",
                    "early_stopping", "seed")
    needs_sequences = True
    needs_events = True

    def __init__(self, numeric: list[str] | None = None, categorical: list[str] | None = None, *, item_dim: int = 256,
                 units: int = 128, dim: int = 32, vocab_size: int = 8000, epochs: int = 6, batch_size: int = 128,
                 learning_rate: float = 2e-3, temperature: float = 0.1, view_events: int = 48,
                 pretrain_rows: int = 8000, max_iter: int = 300, min_samples_leaf: int = 100,
                 early_stopping: bool = True, seed: int = 0):
        self.numeric, self.categorical = numeric, categorical
        self.item_dim, self.units, self.dim, self.vocab_size = item_dim, units, dim, vocab_size
        self.epochs, self.batch_size, self.learning_rate = epochs, batch_size, learning_rate
        self.temperature, self.view_events, self.pretrain_rows = temperature, view_events, pretrain_rows
        self.max_iter, self.min_samples_leaf, self.early_stopping, self.seed = (max_iter, min_samples_leaf,
                                                                              early_stopping, seed)

    # ------------------------------------------------------------------------------------------------ the encoder
    def _network(self) -> Any:
        from .network import build_encoder

        return build_encoder(self.vocab_.size, item_dim=self.item_dim, units=self.units, dim=self.dim, seed=self.seed)

    @property
    def encoder(self) -> Any:
        """The fitted Keras encoder (rebuilt from its weights after loading a saved run)."""
        if getattr(self, "encoder_", None) is None:
            if not hasattr(self, "weights_"):
                raise ModelError("The sequence encoder is not fitted yet: call fit first.")
            self.encoder_ = self._network()
            self.encoder_.set_weights(self.weights_)
        return self.encoder_

    def embeddings(self, sequences: Any, n: int) -> np.ndarray:
        """Each row's frozen embedding ``(n, dim)``."""
        from .pretrain import embed

        return embed(self.encoder, arrays(event_tokens(sequences, n), self.vocab_))

    def fused(self, X: pd.DataFrame, sequences: Any) -> pd.DataFrame:
        """``X`` with the embedding columns beside its features: what the boosting reads."""
        E = self.embeddings(sequences, len(X))
        cols = [f"{EMBEDDING_PREFIX}{i + 1}" for i in range(E.shape[1])]
        return pd.concat([X.reset_index(drop=True), pd.DataFrame(E, columns=cols)], axis=1)

    @property
    def embedding_columns(self) -> list[str]:
        return [f"{EMBEDDING_PREFIX}{i + 1}" for i in range(int(self.dim))]

    # ------------------------------------------------------------------------------------------------ fit, predict
    def fit(self, X: pd.DataFrame, y: Any, *, sequences: Any = None, X_val: pd.DataFrame | None = None,
            y_val: Any = None, seq_val: Any = None, progress: Progress | None = None, **kw: Any) -> "EncoderModel":
        from .pretrain import pretrain

        X = check_frame(X, "EncoderModel")
        yv = check_labels(y, len(X), "EncoderModel")
        tokens = event_tokens(sequences, len(X))
        t0 = time.perf_counter()
        self.vocab_ = Vocabulary.learn(tokens, self.vocab_size)
        self.encoder_ = self._network()
        self.n_parameters_ = int(self.encoder_.count_params())
        self.n_train_rows_ = len(tokens)
        report_progress(progress, 0.0, f"pre-training the sequence encoder ({self.n_parameters_:,} parameters) on "
                        f"{len(tokens):,} customers' events")
        self.history_ = pretrain(self.encoder_, arrays(tokens, self.vocab_, self.view_events), tokens.length,
                                 epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                                 temperature=self.temperature, width=self.view_events, max_rows=self.pretrain_rows,
                                 seed=self.seed, progress=lambda f, m: report_progress(progress, 0.8 * f, m))
        self.pretrain_seconds_ = time.perf_counter() - t0
        self.weights_ = self.encoder_.get_weights()
        self._fit_head(X, yv, sequences, X_val, y_val, seq_val)
        report_progress(progress, 1.0, f"pre-trained in {self.pretrain_seconds_:.0f} s, boosting fitted")
        return self

    def _fit_head(self, X, yv, sequences, X_val, y_val, seq_val) -> None:
        from retention_core.models.sklearn_models import GradientBoostingModel

        num = list(self.numeric if self.numeric is not None else X.select_dtypes("number").columns)
        self.head_ = GradientBoostingModel(num + self.embedding_columns, self.categorical, max_iter=self.max_iter,
                                           min_samples_leaf=self.min_samples_leaf, early_stopping=self.early_stopping,
                                           random_state=self.seed)
        val = {}
        if X_val is not None and y_val is not None and seq_val is not None:
            val = {"X_val": self.fused(X_val, seq_val), "y_val": y_val}
        self.head_.fit(self.fused(X, sequences), yv, **val)

    def predict_proba(self, X: pd.DataFrame, *, sequences: Any = None, **kw: Any) -> np.ndarray:
        if not hasattr(self, "head_"):
            raise ModelError("The sequence encoder is not fitted yet: call fit first.")
        X = check_frame(X, "EncoderModel")
        return self.head_.predict_proba(self.fused(X, sequences))

    def refit_settings(self, scale: float = 1.0) -> dict[str, Any]:
        """The boosting's tree count found by early stopping, scaled with the rows."""
        kept = self.head_.refit_settings(scale)
        return {"max_iter": kept["max_iter"], "early_stopping": False}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("encoder_", None)  # the weights travel as arrays; Keras is loaded only to score
        return state
