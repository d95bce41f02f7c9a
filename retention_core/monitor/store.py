"""The scoring history: every scoring of a saved run, kept in the workspace in one DuckDB file.

``RETENTION_WORKSPACE/history.duckdb`` holds four tables (schema version in ``meta``):

- ``runs``: one row per saved run version that scored (``run_id``: :func:`retention_core.bundle.run_id`, from the run's manifest), with its name,
  folder, kind and what monitoring needs once the run folder is gone (column roles, snapshot settings, features,
  thresholds, validation figures, the training reference for drift) as JSON in ``info``;
- ``scorings``: one row per scoring: run, model, threshold, as-of date, horizon and lookback, when and from where it
  was recorded (``cli``, ``app``, ``service`` or ``demo``), the data file's name, users scored, mean churn probability and the segment
  columns kept; for a campaign with a control group, its share, seed and strata (``control_share, control_seed,
  control_strata``; null without one) and its measurement window in days (``control_days``: the campaign is judged
  on purchases in ``(as-of, as-of + days]``; null: the scoring's horizon);
- ``scores``: one row per user scored: ``user_id, churn_probability, risk_decile, rank`` (rank 1 = most at risk,
  unique within a scoring) and ``campaign_group``: ``contact`` or ``control`` for the users of a list with a control
  group, null for users outside the list (or without a control group);
- ``score_segments``: one row per user (by ``rank``) and segment column (``segment``, ``value``), for per-segment
  outcomes.

The service's recordings are grouped when read: each request with ``"record": true`` is written as it comes (one
short append while the customer waits, whatever was recorded before), and every recording of the service (``source``
``service``) of one run version, model and as-of date reads back as ONE scoring (:func:`scorings`, :func:`scores_of`:
its first recording's id, its distinct users, a customer scored twice counted once with the latest probability,
ranks recomputed across the group). So a day of one-user requests is one scoring of all the customers it scored, for
the monitor and its verdict, in the list of scorings and when deleted (:func:`delete_scoring` removes the whole
group, under the same lock and in one transaction like a write).

Schema versions: 1 had no control groups; 2 adds the three ``control_*`` columns and ``campaign_group``; 3 adds
``control_days``. A file of an older version is migrated in place the first time this version opens it (columns
added, null for the scorings already kept: a campaign recorded before its window was kept is judged over its
scoring's horizon, as it was then), under the lock; a file of a newer version than this one is refused with a
message, never changed.

Writers and readers hold an exclusive lock on ``history.duckdb.lock`` (``flock``, released by the system when a
process dies) around short connections, so two scorings at the same time both land, one after the other; each
scoring is one transaction, so a process killed mid-write leaves the file readable without a half scoring in it (DuckDB
replays only committed work from its log). Nothing in the history depends on the run folder: a run deleted from the
workspace keeps its history readable.
"""
from __future__ import annotations

import json
import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..control import GROUP
from ..bundle import run_id
from ..bundle import workspace as _workspace
from ..errors import DataError
from ..locking import exclusive

HISTORY_FILE = "history.duckdb"
SCHEMA_VERSION = 3
#: Seconds a scoring waits for another one to finish writing before it gives up (RETENTION_HISTORY_TIMEOUT).
LOCK_TIMEOUT = 120.0

DDL = [
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY, run_name VARCHAR NOT NULL, run_path VARCHAR, kind VARCHAR, created VARCHAR,
        best_model VARCHAR, info VARCHAR NOT NULL, first_recorded TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS scorings (
        scoring_id VARCHAR PRIMARY KEY, run_id VARCHAR NOT NULL, run_name VARCHAR NOT NULL, run_path VARCHAR,
        model VARCHAR NOT NULL, threshold DOUBLE, as_of DATE, horizon_days INTEGER, lookback_days INTEGER,
        recorded_at TIMESTAMP NOT NULL, source VARCHAR, data_name VARCHAR, users INTEGER NOT NULL,
        mean_probability DOUBLE, segment_columns VARCHAR, control_share DOUBLE, control_seed BIGINT,
        control_strata VARCHAR, control_days INTEGER)""",
    """CREATE TABLE IF NOT EXISTS scores (
        scoring_id VARCHAR NOT NULL, user_id VARCHAR NOT NULL, churn_probability DOUBLE NOT NULL,
        risk_decile TINYINT, "rank" BIGINT, campaign_group VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS score_segments (
        scoring_id VARCHAR NOT NULL, "rank" BIGINT NOT NULL, segment VARCHAR NOT NULL, value VARCHAR)""",
]
SCORING_COLUMNS = ["scoring_id", "run_id", "run_name", "run_path", "model", "threshold", "as_of", "horizon_days",
                   "lookback_days", "recorded_at", "source", "data_name", "users", "mean_probability",
                   "segment_columns", "control_share", "control_seed", "control_strata", "control_days"]
#: What each schema version adds to a file of the version before (columns added in place, null for what was kept).
MIGRATIONS = {2: ["ALTER TABLE scorings ADD COLUMN IF NOT EXISTS control_share DOUBLE",
                  "ALTER TABLE scorings ADD COLUMN IF NOT EXISTS control_seed BIGINT",
                  "ALTER TABLE scorings ADD COLUMN IF NOT EXISTS control_strata VARCHAR",
                  "ALTER TABLE scores ADD COLUMN IF NOT EXISTS campaign_group VARCHAR"],
              3: ["ALTER TABLE scorings ADD COLUMN IF NOT EXISTS control_days INTEGER"]}
#: Columns recorded as segments when the scored rows have them, besides the run's attributes.
EXTRA_SEGMENTS = ("stage",)
#: The source of the scoring service's recordings: those of one run version, model and as-of date are one scoring.
SERVICE = "service"
_GROUP = ["run_id", "model", "as_of"]


def history_path(workspace: str | os.PathLike | None = None, *, create: bool = True) -> Path:
    """``history.duckdb`` in the workspace (:func:`retention_core.bundle.workspace`: ``RETENTION_WORKSPACE`` or
    ./workspace when not given; ``create=False`` makes no folder)."""
    return _workspace(workspace, create=create) / HISTORY_FILE


class HistoryBusy(DataError):
    """Another process held the scoring history's lock for longer than this one would wait."""


def _timeout(given: float | None = None) -> float:
    if given is not None:
        return float(given)
    try:
        return float(os.environ.get("RETENTION_HISTORY_TIMEOUT", LOCK_TIMEOUT))
    except ValueError:
        return LOCK_TIMEOUT


def _file_lock(path: Path, timeout: float | None = None):
    """The history's lock (:func:`retention_core.locking.exclusive` on ``history.duckdb.lock``), waiting at most
    ``timeout`` seconds (default ``RETENTION_HISTORY_TIMEOUT``, 120; :class:`HistoryBusy` past it)."""
    return exclusive(path.parent / f"{path.name}.lock", _timeout(timeout), lambda limit: HistoryBusy(
        f"The scoring history {path.name} is busy (another scoring has held it for over {limit:g} s); try again "
        "shortly."))


def _unreadable(path: Path, exc: BaseException) -> DataError:
    msg = " ".join(str(exc).split())[:200]
    return DataError(f"The scoring history {path.name} in the workspace cannot be read ({msg}). Nothing was changed "
                     f"in it: move it aside to start a new history, or restore a copy.")


@contextmanager
def connect(workspace=None, *, write: bool = False, timeout: float | None = None):
    """A short connection to the history under the lock (None when reading and no history exists yet), waiting for
    the lock at most ``timeout`` seconds (default ``RETENTION_HISTORY_TIMEOUT``, 120; :class:`HistoryBusy` past it).
    Writing opens a transaction committed on success and rolled back on any error."""
    import duckdb

    path = history_path(workspace)
    with _file_lock(path, timeout):
        if not write and not path.exists():
            yield None
            return
        try:
            con = duckdb.connect(str(path))
        except duckdb.Error as exc:
            raise _unreadable(path, exc) from None
        try:
            _ensure_schema(con, path)
            if write:
                con.execute("BEGIN TRANSACTION")
                try:
                    yield con
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
            else:
                yield con
        finally:
            con.close()


def _ensure_schema(con, path: Path) -> None:
    import duckdb

    try:
        for stmt in DDL:
            con.execute(stmt)
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        elif int(row[0]) > SCHEMA_VERSION:
            raise DataError(f"The scoring history {path.name} was written by a newer version of the studio "
                            f"(schema {row[0]}); upgrade to read it.")
        elif int(row[0]) < SCHEMA_VERSION:
            _migrate(con, int(row[0]))
    except duckdb.Error as exc:
        raise _unreadable(path, exc) from None


def _migrate(con, version: int) -> None:
    """Bring a file of an older schema version up to this one, in one transaction (all or nothing)."""
    con.execute("BEGIN TRANSACTION")
    try:
        for v in range(version + 1, SCHEMA_VERSION + 1):
            for stmt in MIGRATIONS.get(v, []):
                con.execute(stmt)
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


# ----------------------------------------------------------------------------------------------- runs
def run_record(run) -> dict:
    """What monitoring needs from a run once its folder is gone (JSON-ready)."""
    from .reference import run_reference, validation_figures

    info = {k: run.info.get(k) for k in ("name", "kind", "schema", "snapshot", "numeric", "categorical", "user_spec",
                                         "sequence_weeks", "best_model", "threshold", "thresholds", "created")}
    info["models"] = sorted(run.info.get("models", {}))
    info["validation"] = validation_figures(run)
    info["reference"] = run_reference(run)
    return info


# ----------------------------------------------------------------------------------------------- recording
@dataclass(frozen=True)
class Recorded:
    """A scoring kept in the history."""

    scoring_id: str
    run_name: str
    model: str
    as_of: str | None
    users: int
    path: Path


def _scores_frame(scores: pd.DataFrame) -> pd.DataFrame:
    """``user_id, churn_probability, risk_decile, rank``: the given deciles and ranks, computed when absent (or when
    the ranks are not 1..n)."""
    from ..segments import risk_deciles

    p = pd.to_numeric(scores["churn_probability"], errors="coerce").to_numpy(dtype=float)
    out = pd.DataFrame({"user_id": scores["user_id"].astype(str).to_numpy(), "churn_probability": p})
    d = scores["risk_decile"] if "risk_decile" in scores else risk_deciles(p)
    out["risk_decile"] = pd.to_numeric(d, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    given = pd.to_numeric(scores["rank"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan) \
        if "rank" in scores else None
    if given is not None and np.array_equal(np.sort(given), np.arange(1, len(p) + 1)):
        out["rank"] = given.astype(np.int64)
    else:
        rank = np.empty(len(p), dtype=np.int64)
        rank[np.argsort(-p, kind="stable")] = np.arange(1, len(p) + 1)
        out["rank"] = rank
    return out


def _segments_frame(rank: pd.Series, source: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """One row per user (by rank) and segment column: ``rank, segment, value`` (text; missing stays missing)."""
    parts = [pd.DataFrame({"rank": rank.to_numpy(), "segment": c,
                           "value": source[c].astype("string").astype("category").to_numpy()}) for c in columns]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["rank", "segment", "value"])


def _checked(scores: pd.DataFrame, frame: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The scores (and their feature rows, same order) of users with a probability."""
    missing = [c for c in ("user_id", "churn_probability") if c not in scores.columns]
    if missing:
        raise DataError(f"Scores to record lack the columns {', '.join(missing)}.")
    if frame is not None and len(frame) != len(scores):
        raise DataError(f"The scores ({len(scores):,} users) and their feature rows ({len(frame):,}) do not match.")
    keep = np.flatnonzero(np.isfinite(pd.to_numeric(scores["churn_probability"], errors="coerce")
                                      .to_numpy(dtype=float, na_value=np.nan)))
    if not len(keep):
        raise DataError("There are no scores to record.")
    return (scores.iloc[keep].reset_index(drop=True),
            frame.iloc[keep].reset_index(drop=True) if frame is not None else None)


def _by_user(table: pd.DataFrame, listed: pd.DataFrame, column: str) -> np.ndarray:
    """``column`` of a list for each scored user of ``table`` (``user_id, rank``), missing outside the list: matched
    by user id, or by rank when the list's ids are not the ones scored (a pseudonymised list)."""
    ids, lid = table["user_id"].astype(str), listed["user_id"].astype(str)
    if lid.isin(ids).all() or "rank" not in listed.columns:
        values = pd.Series(listed[column].to_numpy(), index=lid.to_numpy())
        return table["user_id"].astype(str).map(values[~values.index.duplicated()]).to_numpy(dtype=object)
    rank = pd.to_numeric(listed["rank"], errors="coerce").to_numpy()
    values = pd.Series(listed[column].to_numpy(), index=rank)
    return table["rank"].map(values[~values.index.duplicated()]).to_numpy(dtype=object)


def _control(table: pd.DataFrame, control: pd.DataFrame | None) -> tuple[np.ndarray | None, list]:
    """Each scored user's campaign group (None outside the list) and the scoring's ``control_share, control_seed,
    control_strata, control_days``, from a list drawn by :func:`retention_core.control.assign_control`."""
    if control is None:
        return None, [None, None, None, None]
    info = control.attrs.get("control") or {}
    if GROUP not in control.columns or "share" not in info or "seed" not in info:
        raise DataError("The campaign's list has no control group drawn: hold one out first (control share).")
    groups = _by_user(table, control, GROUP)
    groups = np.where(pd.isna(groups), None, groups).astype(object)
    days = info.get("days")
    return groups, [float(info["share"]), int(info["seed"]), json.dumps(list(info.get("strata") or [])),
                    None if days is None else int(days)]


def _segment_source(run, scores: pd.DataFrame, frame: pd.DataFrame | None, table: pd.DataFrame,
                    control: pd.DataFrame | None) -> tuple[pd.DataFrame, list[str]]:
    """The rows segment values are read from and the columns kept: the run's attributes (from ``frame`` or
    ``scores``), and those of :data:`EXTRA_SEGMENTS` (the lifecycle stage) found in the scores, the feature rows or
    the campaign's list (its users only)."""
    src = frame if frame is not None else scores
    segs = [c for c in run.info.get("categorical", []) if c in src.columns]
    for c in EXTRA_SEGMENTS:
        if c in segs:
            continue
        if c in scores.columns or c in src.columns:
            values = (scores if c in scores.columns else src)[c].to_numpy()
        elif control is not None and c in control.columns:
            values = _by_user(table, control, c)
        else:
            continue
        src, segs = src.assign(**{c: values}), segs + [c]
    return src, segs


def write_scoring(run, scores: pd.DataFrame, *, model: str, as_of: str | None, frame: pd.DataFrame | None = None,
                  threshold: float | None = None, source: str = "app", data_name: str | None = None,
                  control: pd.DataFrame | None = None, workspace=None,
                  lock_timeout: float | None = None) -> Recorded:
    """Record one scoring of ``run`` (all its users; segment columns read from ``frame`` or ``scores``) in the
    workspace's history, in one transaction (waiting for the history's lock at most ``lock_timeout`` seconds).
    ``control`` is the campaign's list with its control group drawn: each of its users' group, the share, the seed
    and the strata are kept with the scoring."""
    scores, frame = _checked(scores, frame)
    table = _scores_frame(scores)
    table["campaign_group"], control_row = _control(table, control)
    source_cols, segs = _segment_source(run, scores, frame, table, control)
    seg_table = _segments_frame(table["rank"], source_cols, segs)
    rid, name = run_id(run), Path(run.path).name
    events = run.info.get("kind") == "events"
    snap = run.info.get("snapshot") or {}
    sid = f"{pd.Timestamp.now():%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
    row = [sid, rid, name, str(run.path), model, None if threshold is None else float(threshold), as_of,
           snap.get("horizon_days") if events else None, snap.get("lookback_days") if events else None,
           pd.Timestamp.now().to_pydatetime(), source, data_name, int(len(table)),
           float(table["churn_probability"].mean()), json.dumps(segs)] + control_row
    record = json.dumps(run_record(run), default=str)
    with connect(workspace, write=True, timeout=lock_timeout) as con:
        con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [rid, name, str(run.path), run.info.get("kind"), run.info.get("created"),
                     run.info.get("best_model"), record, pd.Timestamp.now().to_pydatetime()])
        con.execute(f"INSERT INTO scorings ({', '.join(SCORING_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(SCORING_COLUMNS))})", row)
        con.register("new_scores", table)
        con.execute('INSERT INTO scores (scoring_id, user_id, churn_probability, risk_decile, "rank", campaign_group) '
                    'SELECT ?, user_id, churn_probability, CAST(risk_decile AS TINYINT), CAST("rank" AS BIGINT), '
                    'CAST(campaign_group AS VARCHAR) FROM new_scores', [sid])
        if len(seg_table):
            con.register("new_segments", seg_table)
            con.execute('INSERT INTO score_segments SELECT ?, "rank", segment, CAST(value AS VARCHAR) FROM new_segments',
                        [sid])
    return Recorded(sid, name, model, as_of, int(len(table)), history_path(workspace))


def set_control(scoring_id: str, control: pd.DataFrame, *, workspace=None) -> int:
    """Keep a campaign's control group with a scoring recorded before it was drawn (the app: a list downloaded with
    a control group after its scoring was kept): each listed user's group, the share, the seed and the strata, in
    one transaction; a control group kept before is replaced. Returns the users of the list found in the scoring."""
    sid = str(scoring_id)
    with connect(workspace, write=True) as con:
        table = con.execute('SELECT user_id, "rank" FROM scores WHERE scoring_id = ?', [sid]).df()
        if not len(table):
            raise DataError(f"The recorded scoring {sid!r} is not in the scoring history.", field="scoring_id",
                            value=sid)
        groups, info = _control(table, control)
        con.execute("UPDATE scorings SET control_share = ?, control_seed = ?, control_strata = ?, control_days = ? "
                    "WHERE scoring_id = ?", info + [sid])
        con.register("new_groups", pd.DataFrame({"r": table["rank"].to_numpy(), "g": groups}))
        con.execute('UPDATE scores SET campaign_group = CAST(new_groups.g AS VARCHAR) FROM new_groups '
                    'WHERE scores.scoring_id = ? AND scores."rank" = new_groups.r', [sid])
    return int(pd.notna(groups).sum())


# ----------------------------------------------------------------------------------------------- reading
def _match(con, run) -> tuple[str, list]:
    """A WHERE clause for the scorings of ``run``: a loaded run (that exact version), a run folder, or a run name."""
    if run is None:
        return "", []
    if hasattr(run, "info") and hasattr(run, "path"):
        return "WHERE run_id = ?", [run_id(run)]
    text = str(run)
    p = Path(text)
    if p.exists() or os.sep in text or "/" in text:
        return "WHERE run_path = ?", [str(p.resolve())]
    return "WHERE run_name = ?", [text]


def scorings(run=None, *, workspace=None) -> pd.DataFrame:
    """The recorded scorings, oldest first: of one run (a loaded run: that saved version; a folder; a run name: every
    version under that name), or of every run; the service's recordings of one run version, model and as-of date are
    one scoring (``recordings`` counts what it groups). ``observable_from`` is as-of + horizon (the first day the
    outcome can be known), ``run_exists`` whether the run's folder is still there. ``campaign_days`` is a campaign's
    window: its ``control_days``, or the horizon for one recorded without (null without a control group)."""
    with connect(workspace) as con:
        if con is None:
            return pd.DataFrame(columns=SCORING_COLUMNS + ["recordings", "observable_from", "run_exists",
                                                           "campaign_days"])
        where, params = _match(con, run)
        out = con.execute(f"SELECT * FROM scorings {where} ORDER BY as_of NULLS LAST, recorded_at, scoring_id",
                          params).df()
        out = _grouped(con, out)
    out["as_of"] = pd.to_datetime(out["as_of"]).dt.strftime("%Y-%m-%d").astype(object).where(out["as_of"].notna(),
                                                                                              None)
    out["segment_columns"] = [json.loads(s) if s else [] for s in out["segment_columns"]]
    out["control_strata"] = [json.loads(s) if isinstance(s, str) else None for s in out["control_strata"]]
    due = pd.to_datetime(out["as_of"]) + pd.to_timedelta(pd.to_numeric(out["horizon_days"]), unit="D")
    out["observable_from"] = due.dt.strftime("%Y-%m-%d").astype(object).where(due.notna(), None)
    out["run_exists"] = [bool(p) and Path(p).is_dir() for p in out["run_path"]]
    days = pd.to_numeric(out["control_days"]).fillna(pd.to_numeric(out["horizon_days"]))
    out["campaign_days"] = days.where(out["control_share"].notna()).astype("Int64")
    return out


def _grouped(con, rows: pd.DataFrame) -> pd.DataFrame:
    """The scorings with each group of service recordings (one run version, model and as-of date) as one row: the
    first recording's id and time, the distinct users and their mean probability (a customer's latest)."""
    rows = rows.assign(recordings=1)
    service = rows["source"] == SERVICE
    if service.sum() < 2:
        return rows
    keys = rows[_GROUP].astype(str).agg("|".join, axis=1)
    keep, drop = [], []
    for _, ids in rows.loc[service].groupby(keys[service], sort=False)["scoring_id"]:
        first = ids.index[0]
        if len(ids) > 1:
            users, mean = _group_users(con, ids.tolist())
            segs = dict.fromkeys(c for s in rows.loc[ids.index, "segment_columns"] for c in json.loads(s or "[]"))
            rows.loc[first, ["users", "mean_probability", "recordings", "segment_columns", "data_name"]] = \
                [users, mean, len(ids), json.dumps(list(segs)), f"{len(ids):,} service requests"]
        keep.append(first)
        drop += [i for i in ids.index if i != first]
    return rows.drop(index=drop).reset_index(drop=True)


def _group_users(con, ids: list[str]) -> tuple[int, float]:
    """Distinct users of some recordings and the mean of each one's latest probability."""
    marks = ", ".join("?" * len(ids))
    n, mean = con.execute(f"""
        SELECT count(*), avg(p) FROM (
            SELECT s.churn_probability AS p, row_number() OVER (PARTITION BY s.user_id
                   ORDER BY r.recorded_at DESC, r.scoring_id DESC, s."rank" DESC) AS k
            FROM scores s JOIN scorings r USING (scoring_id) WHERE scoring_id IN ({marks}))
        WHERE k = 1""", ids).fetchone()
    return int(n), float(mean) if mean is not None else float("nan")


def _members(con, scoring_id: str) -> pd.DataFrame:
    """The recordings a scoring id stands for, oldest first: itself, or every service recording of its group."""
    return con.execute("""
        SELECT m.scoring_id, m.recorded_at FROM scorings s JOIN scorings m
          ON m.scoring_id = s.scoring_id OR (s.source = ? AND m.source = ? AND m.run_id = s.run_id
             AND m.model = s.model AND m.as_of IS NOT DISTINCT FROM s.as_of)
        WHERE s.scoring_id = ? ORDER BY m.recorded_at, m.scoring_id""", [SERVICE, SERVICE, scoring_id]).df()


def _scores_of_one(con, sid: str) -> pd.DataFrame:
    """One recording's users in rank order, one column per segment kept."""
    part = con.execute('SELECT scoring_id, user_id, churn_probability, risk_decile, "rank", campaign_group AS "group" '
                       'FROM scores WHERE scoring_id = ? ORDER BY "rank"', [sid]).df()
    segs = con.execute("SELECT DISTINCT segment FROM score_segments WHERE scoring_id = ? ORDER BY 1", [sid]).fetchall()
    for (seg,) in segs:
        v = con.execute('SELECT "rank", value FROM score_segments WHERE scoring_id = ? AND segment = ? '
                        'ORDER BY "rank"', [sid, seg]).df()
        part[seg] = pd.Series(v["value"].to_numpy(), index=v["rank"].to_numpy()).reindex(
            part["rank"].to_numpy()).to_numpy()
    return part


def _scores_of_group(con, sid: str, members: list[str]) -> pd.DataFrame:
    """A group of service recordings as one scoring: each customer once (the latest recording's row), ranked again
    by churn probability (1 = most at risk; ties in recording order)."""
    parts = [_scores_of_one(con, m) for m in members]
    both = pd.concat(parts, ignore_index=True)
    both["user_id"] = both["user_id"].astype(str)
    both = both.drop_duplicates("user_id", keep="last")
    both = both.iloc[np.argsort(-both["churn_probability"].to_numpy(dtype=float), kind="stable")]
    both = both.reset_index(drop=True).assign(scoring_id=sid)
    both["rank"] = np.arange(1, len(both) + 1, dtype=np.int64)
    return both


def scores_of(scoring_ids: list[str], *, workspace=None) -> pd.DataFrame:
    """The users of the given scorings: ``scoring_id, user_id, churn_probability, risk_decile, rank, group`` (the
    campaign group: ``contact``, ``control`` or missing) and one column per segment kept, in rank order within each
    scoring (a group of service recordings: all its customers)."""
    cols = ["scoring_id", "user_id", "churn_probability", "risk_decile", "rank", "group"]
    parts = []
    with connect(workspace) as con:
        for sid in dict.fromkeys(scoring_ids) if con is not None else []:
            members = _members(con, sid)["scoring_id"].tolist()
            parts.append(_scores_of_group(con, sid, members) if len(members) > 1 else _scores_of_one(con, sid))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    out["user_id"] = out["user_id"].astype(str)
    return out


# ----------------------------------------------------------------------------------------------- deleting
def delete_scoring(scoring_id: str, run=None, *, workspace=None) -> dict:
    """Remove one recorded scoring (its users and segments; a group of service recordings: every recording in it)
    from the history, in one transaction under the writers' lock. ``run`` (as :func:`scorings` takes it) restricts
    the id to that run's scorings. Returns what was deleted (the scoring as :func:`scorings` listed it); an unknown
    id raises a :class:`DataError` that says how to list the ids."""
    sid = str(scoring_id).strip()
    listed = scorings(run, workspace=workspace)
    row = listed[listed["scoring_id"] == sid]
    if not len(row):
        whose = f" of run {Path(str(getattr(run, 'path', run))).name!r}" if run is not None else ""
        raise DataError(f"No recorded scoring{whose} has the id {sid!r}. List the recorded scorings and their ids "
                        "first (monitor RUN --list, or the Monitor page).", field="scoring_id", value=sid)
    with connect(workspace, write=True) as con:
        members = _members(con, sid)["scoring_id"].tolist()
        if not members:  # deleted by someone else since it was listed
            raise DataError(f"The recorded scoring {sid!r} was deleted meanwhile.", field="scoring_id", value=sid)
        marks = ", ".join("?" * len(members))
        for table in ("score_segments", "scores", "scorings"):
            con.execute(f"DELETE FROM {table} WHERE scoring_id IN ({marks})", members)
    return row.iloc[0].to_dict()


def recorded_run(run_id: str, *, workspace=None) -> dict | None:
    """What the history keeps of a run version (see :func:`run_record`), or None."""
    with connect(workspace) as con:
        if con is None:
            return None
        row = con.execute("SELECT run_name, run_path, info FROM runs WHERE run_id = ?", [run_id]).fetchone()
    if row is None:
        return None
    return {"run_id": run_id, "run_name": row[0], "run_path": row[1], "info": json.loads(row[2])}
