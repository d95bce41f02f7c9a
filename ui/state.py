"""Session state: every key the app keeps, and typed accessors.

Nothing outside this module reads or writes ``st.session_state`` by string. Values the app keeps across pages (the
loaded file, the analyst's column choices, the built dataset) live under :class:`Key`; widgets get their keys from
:func:`widget_key`, which ties a widget to the table it edits so that loading another file starts from fresh widgets.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

try:
    from enum import StrEnum
except ImportError:  # Python 3.10
    from enum import Enum

    class StrEnum(str, Enum):  # type: ignore[no-redef]
        def __str__(self) -> str:
            return str(self.value)

import streamlit as st

SAMPLE = "sample"
UPLOAD = "upload"


class Key(StrEnum):
    # values kept across pages
    SOURCE = "source"  # SAMPLE | UPLOAD
    UPLOAD = "upload"  # Upload: the last file the analyst uploaded
    SHEETS = "sheets"  # digest -> chosen Excel sheet
    OVERRIDES = "overrides"  # table key -> schema overrides (role -> column, kind, attributes, ...)
    TABLE = "table"  # TableInfo of the table on screen (for the sidebar and other pages)
    DATASET = "dataset"  # retention_core Dataset built on the Data page
    DATASET_INFO = "dataset_info"  # DatasetInfo: what the dataset was built from
    RUNS = "runs"  # name -> trained run (filled by the Train page)
    ACTIVE_RUN = "active_run"  # name of the run the analysis pages look at
    TRAIN_JOB = "train_job"  # TrainJob: the training in progress (or just finished) in this session
    THRESHOLDS = "thresholds"  # run name -> ThresholdChoice: the model and threshold the analyst chose per run
    # widget keys (used through widget_key)
    W_SOURCE = "w_source"
    W_UPLOADER = "w_uploader"
    W_SHEET = "w_sheet"
    W_KIND = "w_kind"
    W_ROLE = "w_role"
    W_ATTRIBUTES = "w_attributes"
    W_PURCHASE = "w_purchase"
    W_POSITIVE = "w_positive"
    W_COHORT = "w_cohort"
    W_FEATURE = "w_feature"
    W_BUILD = "w_build"
    W_TRAIN = "w_train"
    W_EVAL = "w_eval"
    W_EXPLAIN = "w_explain"
    W_SEGMENTS = "w_segments"
    W_AT_RISK = "w_at_risk"
    W_MODELS = "w_models"
    INSIGHT = "insight"  # run name -> InsightChoice: the model and sample the Explain and Segments pages look at
    SEGMENT_FILTERS = "segment_filters"  # run name -> the custom segment conditions built on the Segments page
    STAGE_RULES = "stage_rules"  # run name -> the lifecycle stage rules the analyst set (StageRules as a dict)
    RECORDED = "recorded"  # scoring key (run version, data, as-of date, model) -> what was said when it was recorded
    MONITOR_DEMO = "monitor_demo"  # the Monitor page's demo on the sample (a MonitorReport), while it is shown
    W_MONITOR = "w_monitor"


def widget_key(base: Key, *parts: Any) -> str:
    """A widget key: the base name plus parts (e.g. the table key and a role), joined by ``:``."""
    return ":".join([str(base), *(str(p) for p in parts)])


# ----------------------------------------------------------------------------------------------- plain values
@dataclass(frozen=True)
class Upload:
    """A file the analyst uploaded: its name, content, content digest and the uploader's file id."""

    name: str
    data: bytes = field(repr=False)
    digest: str
    file_id: str | None = None

    @property
    def size_mb(self) -> float:
        return len(self.data) / 1e6


@dataclass(frozen=True)
class TableInfo:
    """The table on screen: where it came from and what it is."""

    source: str  # SAMPLE | UPLOAD
    name: str
    table_key: str  # digest + sheet: identifies the table in caches and widget keys
    kind: str | None = None  # "events" | "users"
    rows: int | None = None
    users: int | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """What the dataset in state was built from."""

    table_key: str
    name: str
    schema_json: str
    config: dict
    kind: str


def schema_json(schema) -> str:
    """A stable text form of a Schema (used as a cache key and to tell whether a dataset is up to date)."""
    d = schema.to_dict()
    d.pop("notes", None)
    return json.dumps(d, sort_keys=True, default=str)


def _get(key: Key, default: Any = None) -> Any:
    return st.session_state.get(str(key), default)


def _set(key: Key, value: Any) -> None:
    st.session_state[str(key)] = value


def _pop(key: Key) -> None:
    st.session_state.pop(str(key), None)


def _put(key: Key, value: Any) -> None:
    """Keep ``value`` under ``key``, or forget the key when it is None."""
    _pop(key) if value is None else _set(key, value)


# ----------------------------------------------------------------------------------------------- source
def get_source() -> str:
    return _get(Key.SOURCE, SAMPLE)


def set_source(source: str) -> None:
    if source not in (SAMPLE, UPLOAD):
        raise ValueError(f"Unknown source {source!r}")
    _set(Key.SOURCE, source)


def get_upload() -> Upload | None:
    return _get(Key.UPLOAD)


def set_upload(upload: Upload | None) -> None:
    _put(Key.UPLOAD, upload)


def get_sheet(digest: str) -> str | None:
    return _get(Key.SHEETS, {}).get(digest)


def set_sheet(digest: str, sheet: str | None) -> None:
    _set(Key.SHEETS, {**_get(Key.SHEETS, {}), digest: sheet})


# ----------------------------------------------------------------------------------------------- schema overrides
def get_overrides(table_key: str) -> dict:
    """The analyst's choices for this table (a copy); they win over what was detected."""
    return dict(_get(Key.OVERRIDES, {}).get(table_key, {}))


def set_override(table_key: str, name: str, value: Any) -> None:
    """Record one choice (a role -> column or None, or ``kind``, ``attributes``, ``label_positive``,
    ``purchase_values``)."""
    all_overrides = dict(_get(Key.OVERRIDES, {}))
    mine = dict(all_overrides.get(table_key, {}))
    mine[name] = value
    all_overrides[table_key] = mine
    _set(Key.OVERRIDES, all_overrides)


def drop_override(table_key: str, name: str) -> None:
    all_overrides = dict(_get(Key.OVERRIDES, {}))
    mine = dict(all_overrides.get(table_key, {}))
    mine.pop(name, None)
    all_overrides[table_key] = mine
    _set(Key.OVERRIDES, all_overrides)


def clear_overrides(table_key: str) -> None:
    all_overrides = dict(_get(Key.OVERRIDES, {}))
    all_overrides.pop(table_key, None)
    _set(Key.OVERRIDES, all_overrides)


# ----------------------------------------------------------------------------------------------- table on screen
def get_table() -> TableInfo | None:
    return _get(Key.TABLE)


def set_table(info: TableInfo | None) -> None:
    _put(Key.TABLE, info)


# ----------------------------------------------------------------------------------------------- dataset
def get_dataset():
    """The Dataset built on the Data page, or None."""
    return _get(Key.DATASET)


def get_dataset_info() -> DatasetInfo | None:
    return _get(Key.DATASET_INFO)


def set_dataset(dataset, info: DatasetInfo) -> None:
    _set(Key.DATASET, dataset)
    _set(Key.DATASET_INFO, info)


# ----------------------------------------------------------------------------------------------- trained runs
def get_runs() -> dict:
    """Trained runs by name (empty until the Train page adds one)."""
    return dict(_get(Key.RUNS, {}))


def add_run(name: str, run: Any) -> None:
    runs = dict(_get(Key.RUNS, {}))
    runs[name] = run
    _set(Key.RUNS, runs)
    _set(Key.ACTIVE_RUN, name)


def get_active_run_name() -> str | None:
    return _get(Key.ACTIVE_RUN)


def set_active_run(name: str | None) -> None:
    _put(Key.ACTIVE_RUN, name)


def remove_run(name: str) -> None:
    """Forget a run in this session (after it was deleted): its chosen threshold too, and it stops being active."""
    runs = dict(_get(Key.RUNS, {}))
    runs.pop(name, None)
    _set(Key.RUNS, runs)
    choices = dict(_get(Key.THRESHOLDS, {}))
    if choices.pop(name, None) is not None:
        _set(Key.THRESHOLDS, choices)
    if _get(Key.ACTIVE_RUN) == name:
        _pop(Key.ACTIVE_RUN)


# ----------------------------------------------------------------------------------------------- chosen thresholds
@dataclass(frozen=True)
class ThresholdChoice:
    """What the analyst chose for a run: the model to use and, per model, the churn-probability threshold above
    which a user is flagged (``how`` says how it was chosen: value, top_k, top_share, profit)."""

    model: str
    thresholds: dict = field(default_factory=dict)  # model key -> threshold
    how: str = "value"


def get_threshold_choice(run: str) -> ThresholdChoice | None:
    return _get(Key.THRESHOLDS, {}).get(run)


def chosen_model(run: str) -> str | None:
    """The model the analyst picked on the Evaluate page for this run (None: the run's best model)."""
    c = get_threshold_choice(run)
    return c.model if c is not None else None


def chosen_threshold(run: str, model: str | None = None) -> float | None:
    """The threshold the analyst chose for this run (for ``model``, by default the chosen model); None when none was
    chosen yet (then use the run's saved threshold)."""
    c = get_threshold_choice(run)
    if c is None:
        return None
    t = c.thresholds.get(model or c.model)
    return None if t is None else float(t)


def set_chosen_threshold(run: str, model: str, threshold: float, how: str = "value") -> None:
    """Record the model and threshold chosen for a run (scoring and export read them)."""
    all_choices = dict(_get(Key.THRESHOLDS, {}))
    old = all_choices.get(run)
    thresholds = dict(old.thresholds) if old is not None else {}
    thresholds[model] = float(threshold)
    all_choices[run] = ThresholdChoice(model, thresholds, how)
    _set(Key.THRESHOLDS, all_choices)


def set_chosen_model(run: str, model: str) -> None:
    all_choices = dict(_get(Key.THRESHOLDS, {}))
    old = all_choices.get(run)
    all_choices[run] = ThresholdChoice(model, dict(old.thresholds) if old else {}, old.how if old else "value")
    _set(Key.THRESHOLDS, all_choices)


# ----------------------------------------------------------------------------------------------- training jobs
class TrainJob:
    """Training that runs in a background thread while the analyst keeps using the app.

    The worker only calls :meth:`report` and never touches Streamlit; pages read :meth:`snapshot` to draw progress.
    ``result`` holds what the work returned (e.g. the path of the saved run), ``error`` the exception it raised.
    """

    def __init__(self, name: str, models: list[str]) -> None:
        self.name = name
        self.models = list(models)
        self.started = time.time()
        self.finished: float | None = None
        self.fraction = 0.0
        self.message = "starting"
        self.finished_models: set[str] = set()  # models trained and validated (or failed) so far
        self.search: tuple[float, str] | None = None  # the settings search: share of its budget spent, latest line
        self.result: Any = None
        self.error: BaseException | None = None
        self.handled = False  # the page has taken the result into the session
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # called from the worker (any thread)
    def report(self, event) -> None:
        """Take one progress event of the training (``retention_core.training.TrainProgress``)."""
        fraction, message = event.fraction, event.message
        with self._lock:
            self.fraction = float(min(max(fraction, self.fraction if fraction < 1 else 0.0), 1.0))
            self.message = str(message)
            self.search = self.search if getattr(event, "search", None) is None else (event.search, str(message))
            if event.model is not None and event.stage in ("done", "failed"):
                self.finished_models.add(event.model)

    def run(self, work) -> None:
        """Run ``work(report)`` here and keep its result or error."""
        try:
            result = work(self.report)
        except Exception as exc:  # shown on the page; the session carries on
            with self._lock:
                self.error, self.finished = exc, time.time()
            return
        with self._lock:
            self.result, self.fraction, self.finished = result, 1.0, time.time()

    def start(self, work) -> "TrainJob":
        """Run ``work(report)`` in a daemon thread."""
        self._thread = threading.Thread(target=self.run, args=(work,), name=f"train-{self.name}", daemon=True)
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self.finished is not None

    @property
    def running(self) -> bool:
        return self.finished is None

    @property
    def seconds(self) -> float:
        return (self.finished or time.time()) - self.started

    def snapshot(self) -> tuple[float, str]:
        """The fraction done and the latest message, read together."""
        with self._lock:
            return self.fraction, self.message


def get_train_job() -> TrainJob | None:
    return _get(Key.TRAIN_JOB)


def set_train_job(job: TrainJob | None) -> None:
    _put(Key.TRAIN_JOB, job)


def sync_training() -> bool:
    """Whether to train inline (``RETENTION_SYNC_TRAINING=1``: tests, automation) instead of in the background."""
    return os.environ.get("RETENTION_SYNC_TRAINING", "").strip().lower() in ("1", "true", "yes")


# ----------------------------------------------------------------------------------------------- widgets
def has_widget(key: str) -> bool:
    return key in st.session_state


def widget_value(key: str, default: Any = None) -> Any:
    return st.session_state.get(key, default)


def set_widget(key: str, value: Any) -> None:
    """Set a widget's value before it is drawn in this run (used to show the current choice)."""
    st.session_state[key] = value


# ----------------------------------------------------------------------------------------------- insight pages
@dataclass(frozen=True)
class InsightChoice:
    """What the Explain and Segments pages look at for a run: the model explained and the size of the explanation
    sample. Kept apart from :class:`ThresholdChoice`, so looking at another model never changes what is exported."""

    model: str | None = None
    sample: int = 1000


def get_insight(run: str) -> InsightChoice:
    return _get(Key.INSIGHT, {}).get(run) or InsightChoice()


def set_insight(run: str, *, model: str | None = None, sample: int | None = None) -> None:
    """Record the model and/or sample size the insight pages use for this run."""
    all_choices = dict(_get(Key.INSIGHT, {}))
    old = all_choices.get(run) or InsightChoice()
    all_choices[run] = InsightChoice(model if model is not None else old.model,
                                     int(sample) if sample is not None else old.sample)
    _set(Key.INSIGHT, all_choices)


def get_segment_filter(run: str) -> list:
    """The custom segment conditions for this run: a list of ``(column, op, value)`` (empty when none)."""
    return list(_get(Key.SEGMENT_FILTERS, {}).get(run, []))


def set_segment_filter(run: str, conditions: list) -> None:
    _set(Key.SEGMENT_FILTERS, {**_get(Key.SEGMENT_FILTERS, {}), run: [tuple(c) for c in conditions]})


def get_stage_rules(run: str) -> dict:
    """The lifecycle stage rules the analyst set for this run (empty: the library's defaults)."""
    return dict(_get(Key.STAGE_RULES, {}).get(run, {}))


def set_stage_rules(run: str, rules: dict | None) -> None:
    _set(Key.STAGE_RULES, {**_get(Key.STAGE_RULES, {}), run: dict(rules or {})})


# ----------------------------------------------------------------------------------------------- monitoring
def recorded(key: str) -> str | None:
    return _get(Key.RECORDED, {}).get(key)


def set_recorded(key: str, note: str) -> None:
    _set(Key.RECORDED, {**_get(Key.RECORDED, {}), key: note})


def get_monitor_demo() -> Any:
    return _get(Key.MONITOR_DEMO)


def set_monitor_demo(report: Any) -> None:
    _set(Key.MONITOR_DEMO, report)
