"""Every cached call into :mod:`retention_core`, keyed by the table's content digest and the settings.

Two kinds of cache:

- ``st.cache_resource`` for the large tables (the raw table and its canonical events). They are shared across
  sessions without copying, so callers must treat them as read-only; the key (content digest + column choices)
  guarantees one analyst never sees another's data unless the files are identical.
- ``st.cache_data`` for everything else (schemas, reports, matrices, datasets): each caller gets its own copy.

Arguments whose name starts with ``_`` (the table itself, raw bytes) are not hashed: the ``table_key`` (content digest,
plus the Excel sheet) and the JSON of the schema/config stand for them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from retention_core import bundle, dataset, events, io, roles, segments, validation
from retention_core.errors import RetentionError
from retention_core.lifecycle import StageRules
from retention_core.roles import Schema


def table_key(digest: str, sheet: str | None = None) -> str:
    """The key of one table: the content digest, plus the sheet for Excel workbooks."""
    return f"{digest}:{sheet}" if sheet else digest


def _schema(schema_json: str) -> Schema:
    return Schema.from_dict(json.loads(schema_json))


# ----------------------------------------------------------------------------------------------- reading
@st.cache_resource(max_entries=2, show_spinner="Reading the sample data...")
def _sample(path: str, mtime: float) -> pd.DataFrame:
    return io.read_table(path)


def sample_table() -> pd.DataFrame:
    """The shipped sample event log (read once per process)."""
    from assets.generator import sample_path

    path = Path(sample_path())
    return _sample(str(path), path.stat().st_mtime)


@st.cache_resource(max_entries=6, show_spinner="Reading the file...")
def read_table(key: str, name: str, sheet: str | None, _data: bytes) -> pd.DataFrame:
    """An uploaded table, read once per content digest and sheet."""
    return io.read_table(_data, name=name, sheet=sheet)


# ----------------------------------------------------------------------------------------------- understanding
@st.cache_data(max_entries=64, show_spinner="Working out what each column means...")
def infer_schema(key: str, overrides_json: str, _df: pd.DataFrame) -> Schema:
    return roles.infer_schema(_df, json.loads(overrides_json) or None)


@st.cache_data(max_entries=64, show_spinner="Checking the data...")
def validate(key: str, schema_json: str, _df: pd.DataFrame) -> validation.ValidationReport:
    return validation.validate(_df, _schema(schema_json))


@st.cache_data(max_entries=64, show_spinner=False)
def column_values(key: str, column: str, _df: pd.DataFrame, limit: int = 50) -> list:
    """The most frequent values of a column (as plain Python values), most frequent first."""
    counts = _df[column].dropna().value_counts()
    return [v.item() if hasattr(v, "item") else v for v in counts.index[:limit]]


@st.cache_resource(max_entries=4, show_spinner="Preparing the events...")
def canonical_events(key: str, schema_json: str, _df: pd.DataFrame) -> pd.DataFrame:
    return events.canonical_events(_df, _schema(schema_json))


@st.cache_data(max_entries=64, show_spinner=False)
def table_facts(key: str, schema_json: str, _df: pd.DataFrame) -> dict:
    """Rows, columns, distinct users and (event logs) the time span of the usable events."""
    schema = _schema(schema_json)
    user = schema.roles.get("user_id")
    facts = {"rows": len(_df), "columns": len(_df.columns),
             "users": int(_df[user].nunique(dropna=True)) if user else None, "start": None, "end": None}
    if schema.kind == "events" and user and schema.roles.get("timestamp"):
        try:
            ev = canonical_events(key, schema_json, _df)
        except RetentionError:
            return facts
        facts["start"], facts["end"] = ev["ts"].min(), ev["ts"].max()
        facts["users"] = int(ev["user_id"].nunique())
    return facts


@st.cache_data(max_entries=32, show_spinner="Computing cohort retention...")
def cohort_retention(key: str, schema_json: str, period: str, max_periods: int, _df: pd.DataFrame) -> pd.DataFrame:
    ev = canonical_events(key, schema_json, _df)
    return segments.cohort_retention(ev, period=period, max_periods=max_periods)


# ----------------------------------------------------------------------------------------------- datasets
@st.cache_data(max_entries=32, show_spinner=False)
def snapshot_defaults(key: str, schema_json: str, _df: pd.DataFrame) -> dict:
    """Default snapshot settings for this log and the dates that bound the cutoff."""
    ev = canonical_events(key, schema_json, _df)
    cfg = dataset.default_config(ev)
    end = dataset.data_end(ev)
    return {"config": cfg.as_dict(), "start": pd.Timestamp(ev["ts"].min()).floor("D"), "end": end,
            "cutoff": end - pd.Timedelta(days=cfg.horizon_days)}


@st.cache_data(max_entries=16, show_spinner="Building the dataset...")
def build_dataset(key: str, schema_json: str, config_json: str, _df: pd.DataFrame) -> dataset.Dataset:
    ev = canonical_events(key, schema_json, _df)
    cfg = dataset.SnapshotConfig(**json.loads(config_json))
    return dataset.build_dataset(ev, cfg)


@st.cache_data(max_entries=16, show_spinner="Building the dataset...")
def user_dataset(key: str, schema_json: str, _df: pd.DataFrame):
    schema = _schema(schema_json)
    report = validate(key, schema_json, _df)
    return dataset.user_dataset(_df, schema, report)


@st.cache_data(max_entries=8, show_spinner="Building the dataset for training...")
def training_dataset(key: str, schema_json: str, config_json: str, cutoffs_json: str, sequences: bool,
                     _df: pd.DataFrame, event_tokens: int = 0) -> dataset.Dataset:
    """An event-log dataset built for training: with the weekly activity sequences deep models read, and/or at the
    cutoffs time-aware validation needs (``cutoffs_json``: a JSON list of dates, or ``null`` for the settings' own; ``event_tokens``: each row's latest events as tokens,
    for the pre-trained encoder)."""
    ev = canonical_events(key, schema_json, _df)
    cfg = dataset.SnapshotConfig(**json.loads(config_json))
    cutoffs = json.loads(cutoffs_json)
    return dataset.build_dataset(ev, cfg, sequences=sequences, cutoffs=cutoffs, event_tokens=int(event_tokens))


@st.cache_data(max_entries=8, show_spinner=False)
def training_cutoffs(key: str, schema_json: str, config_json: str, _df: pd.DataFrame) -> list[str]:
    """The cutoffs an event log needs for time-aware validation (see ``retention_core.dataset.training_cutoffs``)."""
    ev = canonical_events(key, schema_json, _df)
    cfg = dataset.SnapshotConfig(**json.loads(config_json))
    return [str(pd.Timestamp(t).date()) for t in dataset.training_cutoffs(ev, cfg)]


# ----------------------------------------------------------------------------------------------- saved runs
@dataclass(frozen=True)
class RunData:
    """What the analysis pages read from a saved run (loaded after its signature and file hashes are checked)."""

    name: str
    path: str
    info: dict
    metrics: dict
    leaderboard: pd.DataFrame
    validation: pd.DataFrame  # user_id, snapshot_date, attributes, churned, p:<model> per model
    backtest: pd.DataFrame  # cutoff, model, metrics (empty when the run has no backtest)

    @property
    def best(self) -> str:
        return str(self.info["best_model"])

    @property
    def threshold(self) -> float:
        return float(self.info["threshold"])

    @property
    def task(self) -> str:
        """``"churn"``, or ``"uplift"`` for a run of uplift learners (ui/uplift_panels.py)."""
        return str(self.info.get("task") or "churn")

    @property
    def models(self) -> list[str]:
        """Models (uplift runs: learners) with validation predictions, in leaderboard order."""
        keys = [str(k) for k in self.leaderboard["model"]] if "model" in self.leaderboard else []
        prefix = "uplift:" if self.task == "uplift" else "p:"
        return [k for k in keys if f"{prefix}{k}" in self.validation]

    def labels(self) -> dict[str, str]:
        b = self.leaderboard
        if "label" in b and "model" in b:
            return dict(zip(b["model"].astype(str), b["label"].astype(str)))
        return {}

    def model_threshold(self, model: str) -> float:
        t = (self.info.get("thresholds") or {}).get(model)
        return float(t) if t is not None else self.threshold

    @property
    def attributes(self) -> list[str]:
        """User attributes (categorical columns) to split quality by; numeric features are banded on Segments."""
        cats = self.info.get("categorical")
        if cats is not None:
            return [c for c in cats if c in self.validation.columns]
        skip = {"user_id", "snapshot_date", "churned"}
        return [c for c in self.validation.columns if c not in skip and not str(c).startswith("p:")]


@st.cache_data(max_entries=16, show_spinner="Loading the run...")
def run_data(path: str, stamp: str) -> RunData:
    """A saved run's metrics, leaderboard, validation predictions and backtest (BundleError when it was changed)."""
    run = bundle.load_run(path)
    return RunData(run.path.name, str(run.path), run.info, run.metrics, run.leaderboard(), run.validation(),
                   run_backtest(path, stamp))


@st.cache_data(max_entries=16, show_spinner=False)
def run_backtest(path: str, stamp: str) -> pd.DataFrame:
    """The metrics per earlier validation cutoff saved with a run (``backtest.csv``), or an empty table."""
    f = Path(path) / "backtest.csv"
    if not f.is_file():
        return pd.DataFrame()
    bt = pd.read_csv(f)
    if "cutoff" in bt:
        bt["cutoff"] = pd.to_datetime(bt["cutoff"])
    return bt


def workspace_runs() -> pd.DataFrame:
    """Runs saved in the workspace (empty when there is no workspace yet; reading it never creates one)."""
    root = bundle.workspace(create=False)
    if not (root / "runs").is_dir():
        return pd.DataFrame(columns=["run", "created", "kind", "best_model", "roc_auc", "models"])
    return bundle.list_runs(root)


@st.cache_data(max_entries=64, show_spinner=False)
def model_curves(path: str, stamp: str, model: str) -> dict[str, pd.DataFrame]:
    """ROC, precision-recall, calibration, lift and threshold frames of one model of a run."""
    from retention_core import evaluation

    d = run_data(path, stamp)
    y, p = d.validation["churned"].to_numpy(float), d.validation[f"p:{model}"].to_numpy(float)
    return {"roc": evaluation.roc_frame(y, p), "pr": evaluation.pr_frame(y, p),
            "calibration": evaluation.calibration_frame(y, p), "lift": evaluation.lift_frame(y, p),
            "threshold": evaluation.threshold_frame(y, p)}


# ----------------------------------------------------------------------------------------------- explanations
#: How many times SHAP values were computed in this process (once per run version, model and sample size); the
#: pages never ask for them again while the cache holds them.
EXPLAIN_COMPUTATIONS: dict[str, int] = {"count": 0}


def _explained_columns(info: dict, frame: pd.DataFrame) -> list[str]:
    cols = list(info.get("numeric", [])) + list(info.get("categorical", []))
    return [c for c in cols if c in frame.columns]


@st.cache_resource(max_entries=8, show_spinner=False)
def run_explanation(path: str, digest: str, model: str):
    """The explanation of one model of a saved run that does not depend on who is scored (built once, shared; its
    background comes from the run's validation rows)."""
    from retention_core import explain

    return explain.ScoringExplanation(bundle.load_run(path), model)


def explainer(path: str, digest: str, model: str):
    """The SHAP explainer of one model of a saved run, for its validation users. Sequence models cannot be explained
    on those rows: they hold no weekly activity."""
    from retention_core.errors import ModelError
    from retention_core.models import REGISTRY

    spec = REGISTRY.get(model)
    if spec is not None and spec.needs_sequences:
        raise ModelError(f"{spec.label} reads weekly activity, which the saved validation users do not carry; pick "
                         "another model of this run to explain.")
    return run_explanation(path, digest, model).explainer()


@dataclass(frozen=True)
class Explanation:
    """SHAP values of one model on a bounded, stratified sample of a run's validation users.

    ``points``: effect of each feature in percentage points of churn probability (rows indexed by the position of
    the user in the validation rows); ``values``: the users' feature values; ``importance``: each feature's mean
    absolute effect; ``note``: what the sample holds; ``n_total``: the validation users it was drawn from."""

    model: str
    points: pd.DataFrame
    values: pd.DataFrame
    importance: pd.DataFrame
    note: str
    method_note: str
    n_total: int

    @property
    def size(self) -> int:
        return len(self.points)


@st.cache_data(max_entries=16, show_spinner=False)
def explanation(path: str, digest: str, model: str, sample: int) -> Explanation:
    """SHAP values once per (run version, model, sample size); every page reuses them."""
    from retention_core import explain

    EXPLAIN_COMPUTATIONS["count"] += 1
    ex = explainer(path, digest, model)
    d = run_data(path, bundle.run_id(path))
    v = d.validation.reset_index(drop=True)
    X_all = v[_explained_columns(d.info, v)]
    s = explain.sample_for_explanation(X_all, v["churned"], n=int(sample))
    X = s.X
    pts = ex.effects_points(X)
    vals = ex.unit_values(X)
    return Explanation(model, pts, vals, explain.global_importance(pts, vals), s.note, ex.method_note, s.n_total)


@st.cache_data(max_entries=256, show_spinner=False)
def user_explanation(path: str, digest: str, model: str, position: int, reasons: int = 5) -> dict:
    """One validation user's effects (points), feature values, churn probability (%) and plain-language reasons."""
    from retention_core.models import churn_probability

    ex = explainer(path, digest, model)
    d = run_data(path, bundle.run_id(path))
    v = d.validation.reset_index(drop=True)
    X = v.iloc[[int(position)]][_explained_columns(d.info, v)]
    pts = ex.effects_points(X).iloc[0]
    vals = ex.unit_values(X).iloc[0]
    p = float(churn_probability(ex.model, X)[0]) * 100.0
    return {"points": pts, "values": vals, "prediction": p, "base": p - float(pts.sum()),
            "reasons": ex.reasons(X, n=int(reasons))[0]}


# ----------------------------------------------------------------------------------------------- segments
def segment_attributes(data: RunData) -> list[str]:
    """Columns of the validation users to split by: the mapped attributes and categories first, then the
    numeric features (cut into bands)."""
    v = data.validation
    attrs = list((data.info.get("schema") or {}).get("attributes") or []) + list(data.info.get("categorical", []))
    first = [c for c in dict.fromkeys(attrs) if c in v.columns]
    rest = [c for c in data.info.get("numeric", []) if c in v.columns and c not in first]
    return first + rest


@st.cache_data(max_entries=64, show_spinner=False)
def segment_labels(path: str, stamp: str, model: str, kind: str, column: str | None,
                   conditions_json: str = "[]", rules_json: str = "{}") -> pd.Series:
    """The segment of each validation user (aligned with the validation rows); lifecycle stages by the stage rules
    ``rules_json``, against the shop's rhythm of these same users."""
    d = run_data(path, stamp)
    v = d.validation.reset_index(drop=True)
    p = v[f"p:{model}"].to_numpy(float) if f"p:{model}" in v else None
    rules = StageRules.from_dict(json.loads(rules_json)) if kind == "stage" else None
    labels = segments.make_segments(v, kind, column=column, p=p, conditions=json.loads(conditions_json),
                                    stage_rules=rules, reference=v)
    if kind in segments.GROUPED_KINDS:  # segments too small to judge, grouped as "Other"
        labels = segments.group_small(labels, v["churned"].to_numpy(float))
    return labels


@st.cache_data(max_entries=64, show_spinner=False)
def segment_comparison(path: str, stamp: str, model: str, kind: str, column: str | None, conditions_json: str,
                       digest: str | None = None, sample: int | None = None, rules_json: str = "{}") -> tuple:
    """The segment table and, when an explanation is named (``digest`` and ``sample``), the heatmap data of
    mean |SHAP| per segment against everyone explained."""
    d = run_data(path, stamp)
    v = d.validation.reset_index(drop=True)
    seg = segment_labels(path, stamp, model, kind, column, conditions_json, rules_json)
    y, p = v["churned"].to_numpy(float), v[f"p:{model}"].to_numpy(float)
    if digest is None or sample is None:
        return segments.segment_table(v, y, p, None, seg), None
    e = explanation(path, digest, model, int(sample))
    table = segments.segment_table(v, y, p, e.points, seg)
    heat = segments.segment_shap_heatmap_data(e.points, seg.loc[e.points.index])
    return table, heat


# ----------------------------------------------------------------------------------------------- at-risk scoring
@st.cache_data(max_entries=8, show_spinner="Scoring the users...")
def score_users(path: str, stamp: str, data_key: str, as_of: str | None, model: str, _run=None,
                _df: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame, object]:
    """Churn probability, risk decile and rank of every user of a table (``data_key``: its digest), with the feature
    rows and activity sequences, once per run version, table, as-of date and model."""
    from retention_core import scoring

    run = _run if _run is not None else bundle.load_run(path)
    return scoring.score(run, _df, as_of=as_of, model=model)


@st.cache_data(max_entries=16, show_spinner="Reading the validation users...")
def validation_scores(path: str, stamp: str, model: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores and feature rows of a run's validation users, from the predictions saved with the run."""
    from retention_core import scoring

    return scoring.validation_scores(run_data(path, stamp).validation, model)


@st.cache_resource(max_entries=4, show_spinner="Preparing the explanations...")
def population_explanation(path: str, stamp: str, data_key: str, as_of: str | None, model: str, _run=None,
                           _frame: pd.DataFrame | None = None, _seq=None):
    """The explanation of a model whose explanation depends on the users scored (weekly activity, BG/NBD refitted
    on them), once per run version, table, as-of date and model."""
    from retention_core import explain

    run = _run if _run is not None else bundle.load_run(path)
    return explain.ScoringExplanation(run, model, _frame, _seq)


def scoring_explanation(path: str, stamp: str, data_key: str, as_of: str | None, model: str, run, frame, seq):
    """The explanation of the scored users' reasons (the library's one object): shared by every table when it does
    not depend on who is scored, else one per scoring."""
    from retention_core import explain

    if explain.depends_on_population(run, model):
        return population_explanation(path, stamp, data_key, as_of, model, run, frame, seq)
    return run_explanation(path, bundle.run_id(path), model)


@st.cache_data(max_entries=512, show_spinner=False)
def reason_chunk(path: str, stamp: str, data_key: str, as_of: str | None, model: str, n: int,
                 positions: tuple[int, ...], _explanation=None, _frame: pd.DataFrame | None = None,
                 _seq=None) -> list[list[str]]:
    """The top ``n`` reasons of the scored users at ``positions`` (``n`` lists aligned with them), computed once."""
    idx = list(positions)
    part = _frame.iloc[idx].reset_index(drop=True)
    seq = None if _seq is None else _seq[idx]
    return _explanation.columns(part, n=int(n), sequences=seq)
