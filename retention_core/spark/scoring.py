"""Batch scoring on Spark: a saved run applied to the partitions of the feature rows with ``mapInPandas``.

The run is loaded, and so verified (signature and file hashes, :func:`retention_core.bundle.verify_run`), on the driver
only; the model object itself is then broadcast to the executors, which never read the run's files. Features are the
Spark engine's (equal to the DuckDB engine's, column by column), prepared for the model exactly as
:func:`retention_core.scoring.features_for_run` prepares them (a feature the snapshot's table lacks is valued by
:func:`retention_core.scoring.absent_value`: 0 for a count the log could hold, missing otherwise), and
the results are those of :func:`retention_core.scoring.score`: the same probabilities, risk deciles and ranks (ranks
and deciles need every probability, so they are set on the driver from ``user_id, churn_probability``).

Models that learn from the population being scored (BG/NBD, alone, in the ensemble or calibrated) are refitted on the
driver from the collected feature rows first, as ``score`` does, and the refitted model is the one broadcast. Models
that read weekly sequences (GRU, CNN, Transformer) and models that cannot be pickled are applied on the driver to the
collected rows: their features are still built on Spark.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..bundle import Run, load_run
from ..dataset import SnapshotConfig, data_end, nobody_bought, to_cutoff
from ..errors import ConfigError, DataError
from ..events import canonical_events
from ..io import read_table
from ..models import REGISTRY, churn_probability, for_population, model_input
from ..roles import Schema, infer_schema
from ..scoring import absent_value, fill_absent, run_scores
from . import features
from .events import SparkEvents
from .session import get_session, is_spark_frame, utc
from .source import is_parquet_source, parquet_columns, read_parquet_events, read_spark_events


def _saved_overrides(run, columns) -> dict:
    """The run's column roles as overrides for new data (as ``features_for_run`` applies them)."""
    return Schema.from_dict(run.info["schema"]).for_new_data(columns)


def events_for_run(run, data, spark):
    """The scoring log as :class:`SparkEvents` with the run's saved roles: a Parquet file or folder is read by
    Spark; anything else (a path read by the product's reader, or a raw frame) through ``canonical_events``."""

    if run.info["schema"].get("kind") != "events":
        raise ConfigError("The Spark engine scores event logs; this run was trained on a user table: score it with the "
                          "DuckDB engine.")
    if isinstance(data, SparkEvents):
        return data
    if is_spark_frame(data):  # an analyst's raw log on their own session, read there by Spark
        return read_spark_events(data, _saved_overrides(run, data.columns))[0]
    if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        if is_parquet_source(data):
            events, _, _ = read_parquet_events(spark, data, _saved_overrides(run, parquet_columns(spark, data)))
            return events
        data = read_table(data)
    schema = infer_schema(data, _saved_overrides(run, data.columns))
    return SparkEvents.from_pandas(spark, canonical_events(data, schema), schema.held())


def _model_frame(pdf: pd.DataFrame, attributes: list[str], numeric: list[str], categorical: list[str],
                 dropped: set[str], roles: frozenset[str]) -> pd.DataFrame:
    """A batch of Spark feature rows as the model's input, as ``features_for_run`` and ``finish`` give it (a column
    the product drops or the log cannot have: :func:`~retention_core.scoring.absent_value`)."""
    pdf = pdf.rename(columns={f"a{i}": a for i, a in enumerate(attributes)})
    out = {}
    for c in numeric:
        out[c] = pdf[c].astype("float64") if c in pdf.columns and c not in dropped else absent_value(c, roles)
    for c in categorical:
        if c in pdf.columns:
            v = pdf[c].to_numpy(dtype=object)
            col = np.full(len(pdf), None, dtype=object)
            known = pd.notna(v)
            col[known] = v[known]
            out[c] = col
        else:
            out[c] = absent_value(c, roles)
    return pd.DataFrame(out, index=pdf.index)


def score(run, data, *, as_of=None, model: str | None = None, spark=None, master: str | None = None):
    """:func:`retention_core.scoring.score` on Spark: (scores, feature rows, sequences) for a run and a log (a path,
    a raw pandas frame, a raw Spark DataFrame or :class:`SparkEvents`). ``run`` is a loaded
    :class:`~retention_core.bundle.Run` (verified when it was loaded) or the path of one (verified here). A raw Spark
    DataFrame is scored on its own session (``spark`` and ``master`` are then not used)."""
    run = run if isinstance(run, Run) else load_run(run)  # the signature is checked here, on the driver
    if is_spark_frame(data):  # the analyst's own session: used as it is, its time zone put back after
        with utc(data.sparkSession) as own:
            return _score(run, data, as_of, model, own)
    return _score(run, data, as_of, model, spark or get_session(master))


def _score(run, data, as_of, model, spark):
    import cloudpickle

    key = model or run.best
    m = run.model(key)
    if key in REGISTRY and REGISTRY[key].needs_events:
        raise ConfigError(f"{REGISTRY[key].label} reads each customer's latest events, which the Spark engine does not "
                          "turn into tokens yet: score this model with the default engine.", field="engine",
                          value="spark")
    events = events_for_run(run, data, spark)
    snap = {k: v for k, v in run.info["snapshot"].items() if k in SnapshotConfig.__dataclass_fields__}
    snap["cutoff"] = None
    cfg = SnapshotConfig(**snap)
    bounds = events.bounds()
    T = to_cutoff(as_of) if as_of is not None else data_end(bounds)
    numeric, categorical = list(run.info["numeric"]), list(run.info["categorical"])
    needs_seq = bool(run.info.get("sequence_weeks"))
    with features.Snapshots(events, [T], cfg, end=data_end(bounds), keep_daily=needs_seq) as snaps:
        sdf = snaps.frame.persist()
        try:
            frame = features.finish(sdf.toPandas(), events, cfg)
            frame["churned"] = np.nan  # labels are not known when scoring
            if frame.empty:
                raise nobody_bought(cfg, [T])
            seq = features._sequences(events, snaps.daily, frame, cfg.sequence_weeks) if needs_seq else None
            missing = [c for c in numeric + categorical if c not in frame.columns]
            if len(missing) == len(numeric + categorical):
                raise DataError("None of the model's features can be computed from this file. Score data of the "
                                "same kind and columns as the training data.")
            frame = fill_absent(frame, numeric + categorical, events.held_roles())  # as features_for_run fills
            X = frame[numeric + categorical]
            m = for_population(m, X)  # BG/NBD learns from all purchases up to the scoring date (on the driver)
            if REGISTRY[key].needs_sequences:
                p = churn_probability(m, model_input(key, X, seq))
            else:
                try:
                    payload = cloudpickle.dumps(m)
                except Exception:  # a model that cannot travel (e.g. a compiled graph): applied on the driver
                    payload = None
                p = churn_probability(m, X) if payload is None else _on_partitions(
                    spark, sdf, payload, events, numeric, categorical,
                    set(features.dropped_columns(events, list(frame.columns) + numeric)), frame["user_id"])
        finally:
            sdf.unpersist()
    return run_scores(run, frame, p), frame, seq


def _on_partitions(spark, sdf, payload: bytes, events, numeric, categorical, dropped, order: pd.Series) -> np.ndarray:
    """Churn probabilities computed where the rows are (``mapInPandas``), returned in the order of ``order``."""
    attributes = list(events.attributes)
    model_bc = spark.sparkContext.broadcast(payload)
    roles = events.held_roles()

    def predict(batches):
        import cloudpickle as cp

        model = cp.loads(model_bc.value)
        for pdf in batches:
            if len(pdf) == 0:
                continue
            X = _model_frame(pdf, attributes, numeric, categorical, dropped, roles)
            yield pd.DataFrame({"user_id": pdf["user_id"].astype(str).to_numpy(),
                                "p": churn_probability(model, X)})

    try:
        out = sdf.mapInPandas(predict, "user_id string, p double").toPandas()
    finally:
        model_bc.unpersist()
    p = out.set_index("user_id")["p"]
    return p.reindex(order.astype(str).to_numpy()).to_numpy(dtype="float64")
