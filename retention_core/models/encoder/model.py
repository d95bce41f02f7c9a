"""The registry's ``encoder``: the pre-trained sequence encoder's frozen embeddings beside the aggregate features in
gradient boosting (late fusion).

``fit`` learns the item vocabulary from the training rows' tokens, pre-trains the encoder on them without labels
(CoLES, :mod:`.pretrain`), embeds each row and fits :class:`~retention_core.models.sklearn_models.GradientBoostingModel`
on the features and the embedding columns ``recent_pattern_1..k``. Each row's tokens hold only events at or before its
snapshot's cutoff (:func:`retention_core.event_tokens.tokenize`), so the embedding and the score learn from the past
only. The event tokens travel in the input's own columns (``models.model_input`` adds them;
:func:`retention_core.event_tokens.tokens_of` reads them), as the weekly activity does.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from retention_core.errors import ModelError
from retention_core.event_tokens import EventTokens, tokens_of
from retention_core.models.base import Progress, check_frame, check_labels, is_sequence_column, report_progress
from retention_core.models.estimator import ChurnClassifier

from .vocabulary import Vocabulary, arrays

EMBEDDING_PREFIX = "recent_pattern_"


def event_tokens(X: Any) -> EventTokens:
    """The event tokens a model input carries; ModelError when it carries none."""
    tokens = tokens_of(X) if isinstance(X, pd.DataFrame) else None
    if tokens is None:
        raise ModelError("The sequence encoder reads each customer's events: build the dataset from an event log "
                         "with event tokens (models.model_input adds them; user tables have none).")
    return tokens


class EncoderModel(ChurnClassifier):
    """Late fusion of the pre-trained encoder's embedding and the aggregate features (see the module)."""

    needs_sequences = True
    needs_events = True

    def __init__(self, numeric: list[str] | None = None, categorical: list[str] | None = None, *, item_dim: int = 256,
                 units: int = 128, dim: int = 32, vocab_size: int = 8000, epochs: int = 6, batch_size: int = 128,
                 learning_rate: float = 2e-3, temperature: float = 0.1, view_events: int = 48,
                 pretrain_rows: int = 8000, components: int = 4, max_iter: int = 300, min_samples_leaf: int = 100,
                 early_stopping: bool = True, seed: int = 0):
        self.numeric, self.categorical = numeric, categorical
        self.item_dim, self.units, self.dim, self.vocab_size = item_dim, units, dim, vocab_size
        self.epochs, self.batch_size, self.learning_rate = epochs, batch_size, learning_rate
        self.temperature, self.view_events, self.pretrain_rows = temperature, view_events, pretrain_rows
        self.components = components
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

    def embeddings(self, X: pd.DataFrame) -> np.ndarray:
        """Each row's frozen embedding ``(n, dim)``, from the event tokens ``X`` carries."""
        from .pretrain import embed

        return embed(self.encoder, arrays(event_tokens(X), self.vocab_))

    def pattern(self, X: pd.DataFrame, embeddings: np.ndarray | None = None) -> np.ndarray:
        """What the boosting reads of each row's embedding (``embeddings``, when already computed): its first
        principal components (``components``; learned without labels from the training rows' embeddings), or the
        whole embedding (``components`` 0 or at least ``dim``)."""
        E = self.embeddings(X) if embeddings is None else embeddings
        pca = getattr(self, "pca_", None)
        return E if pca is None else pca.transform(E).astype(np.float32)

    def fused(self, X: pd.DataFrame, embeddings: np.ndarray | None = None) -> pd.DataFrame:
        """The features of ``X`` with the embedding's columns (:meth:`pattern`) beside them: what the boosting reads."""
        E = self.pattern(X, embeddings)
        static = X.drop(columns=[c for c in X.columns if is_sequence_column(c)]).reset_index(drop=True)
        return pd.concat([static, pd.DataFrame(E, columns=self.embedding_columns[:E.shape[1]])], axis=1)

    @property
    def embedding_columns(self) -> list[str]:
        k = int(self.components)
        return [f"{EMBEDDING_PREFIX}{i + 1}" for i in range(k if 0 < k < int(self.dim) else int(self.dim))]

    # ------------------------------------------------------------------------------------------------ fit, predict
    def fit(self, X: pd.DataFrame, y: Any, *, progress: Progress | None = None) -> "EncoderModel":
        from .pretrain import pretrain

        X = check_frame(X, "EncoderModel")
        yv = check_labels(y, len(X), "EncoderModel")
        tokens = event_tokens(X)
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
        E = self.embeddings(X)  # the training rows', embedded once for the components and the boosting
        self._fit_components(E)
        self._fit_head(X, yv, E)
        self._fitted_classes()
        report_progress(progress, 1.0, f"pre-trained in {self.pretrain_seconds_:.0f} s, boosting fitted")
        return self

    def _fit_components(self, E: np.ndarray) -> None:
        """The principal components of the training rows' embeddings (no labels; each row's own past only): fewer,
        steadier columns for the boosting than the whole embedding, whose 32 columns it overfits on a few thousand
        customers (bench/published/encoder.md)."""
        from sklearn.decomposition import PCA

        k = int(self.components)
        self.pca_ = None
        if 0 < k < int(self.dim):
            self.pca_ = PCA(k, random_state=self.seed).fit(E)

    def _fit_head(self, X: pd.DataFrame, yv: np.ndarray, E: np.ndarray) -> None:
        """Gradient boosting on the features and the embedding; its early stopping holds out its own rows."""
        from retention_core.models.sklearn_models import GradientBoostingModel

        static = [c for c in X.columns if not is_sequence_column(c)]
        num = list(self.numeric if self.numeric is not None else X[static].select_dtypes("number").columns)
        self.head_ = GradientBoostingModel(num + self.embedding_columns, self.categorical, max_iter=self.max_iter,
                                           min_samples_leaf=self.min_samples_leaf, early_stopping=self.early_stopping,
                                           random_state=self.seed)
        self.head_.fit(self.fused(X, E), yv)

    def _churn(self, X: Any) -> np.ndarray:
        if not hasattr(self, "head_"):
            raise ModelError("The sequence encoder is not fitted yet: call fit first.")
        X = check_frame(X, "EncoderModel")
        return self.head_.predict_proba(self.fused(X))[:, 1]

    def refit_settings(self, scale: float = 1.0) -> dict[str, Any]:
        """The boosting's tree count found by early stopping, scaled with the rows."""
        kept = self.head_.refit_settings(scale)
        return {"max_iter": kept["max_iter"], "early_stopping": False}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("encoder_", None)  # the weights travel as arrays; Keras is loaded only to score
        return state
