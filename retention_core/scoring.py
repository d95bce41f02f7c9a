"""Scoring a saved run on new data, each customer's lifecycle stage, and the at-risk list: who to contact (an
audience, then a number of contacts ranked by expected net value or uplift, a threshold, top K, a budget or value at
risk, within segments), with reasons. :func:`select` is the one way users are chosen, for the command line, the app
and the lists they write. What is handed out is written by :mod:`retention_core.export`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .campaign import (
    ID_COLUMNS,
    Assumptions,
    budget_contacts,
    choose_by_expected_value,
    user_value,
    value_order,
    with_assumptions,
)
from .dataset import SnapshotConfig, scoring_snapshot
from .errors import ConfigError, DataError, RetentionError
from .events import canonical_events
from .explain import ScoringExplanation
from .export import pseudonymise_list
from .features import apply_user_spec
from .lifecycle import StageRules, assign_stages, audience_mask, shop_gaps
from .models import churn_probability, for_population, model_input
from .recommend.offers import offers_for_run
from .roles import Schema, infer_schema
from .segments import ranks, risk_deciles


# ----------------------------------------------------------------------------------------------- scoring a run
def features_for_run(run, df: pd.DataFrame, *, as_of=None, cancel_ids: bool | None = None):
    """The saved run's feature rows for new data, computed with the same code path as training.

    Event logs: features as of ``as_of`` (default: the end of the data) for users who bought in the lookback window.
    User tables: the saved feature specification. The saved column roles are applied by column name
    (:meth:`~retention_core.roles.Schema.for_new_data`). ``cancel_ids``: see :func:`retention_core.events.canonical_events`.
    """

    saved = Schema.from_dict(run.info["schema"])
    schema = infer_schema(df, saved.for_new_data(df.columns, label=saved.kind != "users"))
    if saved.kind == "events":
        ev = canonical_events(df, schema, cancel_ids=cancel_ids)
        snap = {k: v for k, v in run.info["snapshot"].items() if k in SnapshotConfig.__dataclass_fields__}
        snap["cutoff"] = None
        needs_seq = bool(run.info.get("sequence_weeks"))
        ds = scoring_snapshot(ev, SnapshotConfig(**snap), as_of, sequences=needs_seq,
                              event_tokens=int(run.info.get("event_tokens") or 0))
        frame, seq = ds.frame, ds.sequences
    else:
        frame, seq = apply_user_spec(df, schema, run.info["user_spec"]), None
    cols = run.info["numeric"] + run.info["categorical"]
    missing = [c for c in cols if c not in frame.columns]
    # a count of events the data could hold but does not (no return at all): 0; a feature the new data cannot have
    # (e.g. no ratings column): unknown, not zero. The Spark engine fills with the same rule.
    frame = fill_absent(frame, cols, schema.held() if saved.kind == "events" else frozenset())
    if len(missing) == len(cols):
        raise DataError("None of the model's features can be computed from this file. Score data of the same kind "
                        "and columns as the training data.")
    return frame, seq


#: Counts whose column a snapshot's table lacks when no event of the log had what they count, by the role of the
#: column that holds it (``events_<type>_...``: ``event_type``).
_COUNTS_OF = {"ratings_count": "rating", "n_products": "product", "n_categories": "category", "units_total": "quantity"}


def zero_when_absent(feature: str, roles: set[str] | frozenset[str]) -> bool:
    """Whether ``feature``, absent from a snapshot's table, counts events the log could have held but did not: a type
    no event had (``events_<type>_30d`` ...) in a log with event types, ratings, products, categories or units in a
    log with that column (``roles``: the roles the log's columns hold). A bigger log has the column, with 0 for every
    user without such events, so the value is 0, not unknown; e.g. one customer's events that hold no return."""
    if feature.startswith("events_") and feature != "events_total":
        return "event_type" in roles
    return _COUNTS_OF.get(feature) in roles


def absent_value(feature: str, roles: set[str] | frozenset[str]) -> float:
    """The value of a model feature that a snapshot's table lacks, in every scoring path (DuckDB, NumPy, Spark):
    0 for a count the log could hold but does not (:func:`zero_when_absent`), missing otherwise (a feature the new
    data cannot have, such as ratings in a log without a rating column: unknown, not zero). ``roles``: the roles the
    scored log's columns hold (:meth:`~retention_core.roles.Schema.held`)."""
    return 0.0 if zero_when_absent(feature, roles) else np.nan


def fill_absent(frame: pd.DataFrame, columns: list[str], roles: set[str] | frozenset[str]) -> pd.DataFrame:
    """``frame`` with each of ``columns`` it lacks, valued by :func:`absent_value` (added together: one new table,
    not one per column)."""
    missing = [c for c in columns if c not in frame.columns]
    return frame.assign(**{c: absent_value(c, roles) for c in missing}) if missing else frame


def score(run, df: pd.DataFrame, *, as_of=None, model: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, object]:
    """Churn probability, risk decile and rank for every user; returns (scores, feature rows, sequences). The same on
    Spark: :func:`retention_core.spark.scoring.score`."""
    if getattr(run, "task", "churn") == "uplift":
        raise ConfigError("This run holds uplift learners, not churn models: score its customers by uplift (the "
                          "At-risk page, or the score command, which writes uplift, p_treated and p_control).")
    key = model or run.best
    m = run.model(key)  # an unknown key: a message listing the run's models
    frame, seq = features_for_run(run, df, as_of=as_of)
    X = frame[run.info["numeric"] + run.info["categorical"]]
    m = for_population(m, X)  # BG/NBD learns from all purchases up to the scoring date
    p = churn_probability(m, model_input(key, X, seq))
    return run_scores(run, frame, p), frame, seq


def run_scores(run, frame: pd.DataFrame, p) -> pd.DataFrame:
    """The scores table of a run's scoring, whichever engine computed the probabilities ``p`` of the feature rows
    ``frame``: probability, risk decile, rank and each user's lifecycle stage (measured against the run's
    :func:`stage_reference`)."""
    return add_stages(scores_table(frame["user_id"], p), frame, reference=stage_reference(run))


def stage_reference(run) -> np.ndarray | None:
    """The usual gaps of the shop's repeat customers that a run's scorings measure stages against: those of its
    validation users (the latest labelled snapshot it learned from), so that a file, the app and one customer sent
    to the service get the same stage (none at all when those rows hold no gaps: the library's fallback rhythm, as
    in the service). None for a user table or a run whose validation rows cannot be read."""
    if run.info.get("kind") != "events":
        return None
    try:
        gaps = shop_gaps(run.validation())
    except (RetentionError, OSError, ValueError):
        return None
    return gaps if gaps is not None else np.zeros(0)


def add_stages(scores: pd.DataFrame, frame: pd.DataFrame | None, *, reference=None,
               rules: StageRules | None = None) -> pd.DataFrame:
    """``scores`` (a copy) with each user's lifecycle ``stage`` after ``rank`` (:func:`retention_core.lifecycle.
    assign_stages` of the feature rows ``frame``, aligned with the scores; ``reference``: see there). Users of a table
    without purchase dates get no stage."""
    out = scores.drop(columns=["stage"], errors="ignore").copy()
    rows = frame.reset_index(drop=True) if frame is not None else pd.DataFrame(index=range(len(out)))
    if len(rows) != len(out):
        raise ConfigError(f"The scores ({len(out):,} users) and the feature rows ({len(rows):,}) do not match.")
    at = out.columns.get_loc("rank") + 1 if "rank" in out.columns else len(out.columns)
    out.insert(at, "stage", assign_stages(rows, rules, reference=reference).array)
    out.attrs.update(scores.attrs)
    return out


def scores_table(user_ids, p) -> pd.DataFrame:
    """``user_id, churn_probability, risk_decile, rank`` from ids and churn probabilities (rank 1 = most at risk)."""
    p = np.clip(np.asarray(p, dtype=float), 0, 1)
    out = pd.DataFrame({"user_id": pd.Series(user_ids).astype(str).to_numpy(), "churn_probability": p})
    out["risk_decile"] = risk_deciles(p).to_numpy(dtype=int)
    out["rank"] = ranks(p)
    return out


def validation_scores(validation: pd.DataFrame, model: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores and feature rows of a run's validation users, from the predictions saved with the run."""
    col = f"p:{model}"
    if col not in validation.columns:
        raise ConfigError(f"The run holds no validation predictions of model {model!r}.")
    drop = [c for c in validation.columns if str(c).startswith("p:") or c == "churned"]
    frame = validation.drop(columns=drop).reset_index(drop=True)
    scores = scores_table(frame["user_id"], validation[col].to_numpy(dtype=float))
    return add_stages(scores, frame, reference=shop_gaps(frame)), frame


@dataclass
class ScoredFile:
    """What scoring a file gives: every user's score, the chosen users with their columns, and how."""

    scores: pd.DataFrame  # user_id, churn_probability, risk_decile, rank for every user scored
    chosen: pd.DataFrame  # the chosen users: the score columns, reason_1..N, attributes, model, threshold, date
    model: str
    frame: pd.DataFrame  # the feature rows of every user scored
    sequences: np.ndarray | None = None


def score_file(run, df: pd.DataFrame, *, as_of=None, model: str | None = None, top: int | None = None,
               threshold: float | None = None, contacts: int | None = None, share: float | None = None,
               audience: str | None = None, reasons: int = 0, offers: int = 0,
               pseudonymise_key: str | None = None) -> ScoredFile:
    """Score a table with a saved run (its best model unless ``model`` is named) and choose users (:func:`scored_list`:
    an audience, then top-K, a probability threshold or a number of contacts; everyone when none is given)."""
    if reasons < 0:
        raise ConfigError(f"The number of reasons must be 0 or more, got {reasons}.", field="reasons", value=reasons)
    key = model or run.best
    scores, frame, seq = score(run, df, as_of=as_of, model=key)
    return scored_list(run, key, scores, frame, seq, df=df, as_of=as_of, top=top, threshold=threshold,
                       contacts=contacts, share=share, audience=audience, reasons=reasons, offers=offers,
                       pseudonymise_key=pseudonymise_key)


def file_choice(*, top: int | None = None, threshold: float | None = None, contacts: int | None = None,
                share: float | None = None) -> dict:
    """The :func:`select` arguments of a file's choice: the top ``top`` by churn probability, everyone at or above
    ``threshold``, ``contacts`` users (or a ``share`` of those scored) ranked by expected net value or uplift, or
    (none given) everyone."""
    given = [n for n, v in (("top", top), ("threshold", threshold), ("contacts", contacts), ("share", share))
             if v is not None]
    if len(given) > 1:
        raise ConfigError(f"Choose users one way: {' or '.join(given)}.", field=given[1])
    if top is not None:
        return {"method": "top_k", "k": top}
    if threshold is not None:
        return {"method": "threshold", "threshold": threshold}
    if contacts is not None or share is not None:
        if contacts is not None and int(contacts) < 1:
            raise ConfigError(f"Contact at least 1 user, got {contacts}.", field="contacts", value=contacts)
        return {"method": "contacts", "k": contacts, "share": share}
    return {"method": "everyone"}


def scored_list(run, key: str, scores: pd.DataFrame, frame: pd.DataFrame, seq, *, df: pd.DataFrame | None = None,
                as_of=None, top: int | None = None, threshold: float | None = None, contacts: int | None = None,
                share: float | None = None, audience: str | None = None, reasons: int = 0, offers: int = 0,
                pseudonymise_key: str | None = None) -> ScoredFile:
    """The users chosen from scores by :func:`select` (see :func:`file_choice`; within an ``audience`` of
    :data:`retention_core.lifecycle.AUDIENCES`), in the choice's order (most at risk first, or most worth contacting),
    with each user's lifecycle ``stage``, the top ``reasons``, ``offer_1..offer_N`` made from the raw log ``df``, the
    user's attributes, the model, its threshold and the scoring date; ids replaced by keyed pseudonyms when a key is
    given. Whichever engine scored (DuckDB or Spark), the list is made here."""
    if reasons < 0:
        raise ConfigError(f"The number of reasons must be 0 or more, got {reasons}.", field="reasons", value=reasons)
    full = scores.reset_index(drop=True)
    for a in run.info["categorical"]:
        if a in frame.columns and a not in full.columns:
            full[a] = frame[a].to_numpy()
    pick = select(full, frame, audience=audience, **file_choice(top=top, threshold=threshold, contacts=contacts,
                                                                  share=share))
    out = full.iloc[pick.positions].reset_index(drop=True)
    if pick.env is not None:  # ranked by expected net value: the value and the assumptions in every row
        out["value"] = pick.value[pick.positions]
        out["expected_net_value"] = pick.env[pick.positions]
        out = with_assumptions(out, pick.assumptions)
    if reasons:
        texts = ScoringExplanation(run, key, frame, seq).at(pick.positions, n=reasons)
        for i in range(reasons):
            out.insert(4 + i, f"reason_{i + 1}", texts[i] if i < len(texts) else "")
    if offers:  # offer_1..offer_N, made before the ids are pseudonymised
        if not isinstance(df, pd.DataFrame):
            raise ConfigError("Offers are made from a table read on this machine, not from a Parquet source read by "
                              "Spark: score without offers, or read the log as a file.", field="offers", value=offers)
        out = offers_for_run(run, df, out, n=offers, as_of=as_of)
    if pseudonymise_key is not None:
        out = pseudonymise_list(out, pseudonymise_key)
    out["model"] = key
    out["threshold"] = float(run.info.get("thresholds", {}).get(key, run.threshold))
    out["scoring_date"] = scoring_date(frame) if len(frame) else str(pd.Timestamp.now().date())
    return ScoredFile(scores, out, key, frame, seq)


# ----------------------------------------------------------------------------------------------- at-risk lists
METHODS = ("contacts", "threshold", "top_k", "budget", "value", "expected_value", "everyone")
SCORE_COLUMNS = ["user_id", "churn_probability", "risk_decile", "rank"]
#: Score columns carried into a list when the scores have them: the lifecycle stage, and the uplift of a run that
#: estimates it (then ``contacts`` ranks by it).
EXTRA_SCORE_COLUMNS = ("stage", "uplift")
#: The default number of contacts: this share of the users scored (the top 10%).
DEFAULT_SHARE = 0.10


def contacts_for(n: int, k: int | None = None, share: float | None = None) -> int:
    """How many users a campaign contacts: ``k`` when given, else ``share`` (default :data:`DEFAULT_SHARE`) of the
    ``n`` users scored, rounded up (at least 1 when anyone was scored)."""
    if k is not None:
        if int(k) < 1:
            raise ConfigError(f"The number of users to contact must be at least 1, got {k}.", field="top", value=k)
        return int(k)
    share = DEFAULT_SHARE if share is None else share
    try:
        f = float(share)
    except (TypeError, ValueError):
        raise ConfigError(f"The share of users to contact must be a number, got {share!r}.", field="share",
                          value=share) from None
    if not (np.isfinite(f) and 0 < f <= 1):
        raise ConfigError(f"The share of users to contact is above 0 and at most 1 (0.10 for 10%), got {share!r}.",
                          field="share", value=share)
    return max(int(np.ceil(round(f * n, 9))), 1) if n else 0


@dataclass
class Selection:
    """The users :func:`select` chose: their rows of the scores, in the list's order, and how they were ranked."""

    positions: np.ndarray  # rows of the scores chosen, in the list's order
    eligible: int  # users in the audience and the segments
    value: np.ndarray  # every user's value (see retention_core.campaign.user_value)
    basis: str | None  # the column the value came from (None: one per user)
    ranked_by: str = "churn_probability"  # or value_at_risk, expected_net_value, uplift
    env: np.ndarray | None = None  # every user's expected net value, when ranked by it
    assumptions: Assumptions | None = None  # save rate, cost per contact and value basis, when ranked by it


def scoring_date(frame: pd.DataFrame | None) -> str:
    """The date the scores describe: the snapshot date of the feature rows, else today (YYYY-MM-DD)."""
    if frame is not None and "snapshot_date" in frame.columns and len(frame):
        d = pd.Timestamp(frame["snapshot_date"].iloc[0])
        if not pd.isna(d):
            return str(d.date())
    return str(pd.Timestamp.now().date())


def segment_columns(frame: pd.DataFrame | None) -> list[str]:
    """Attribute columns of the scored users that make segments (text or categories: country, channel, plan...)."""
    if frame is None:
        return []
    out = []
    for c in frame.columns:
        if c in ID_COLUMNS or str(c).startswith("p:") or str(c).startswith("reason_"):
            continue
        dt = frame[c].dtype
        if dt == object or pd.api.types.is_string_dtype(dt) or isinstance(dt, pd.CategoricalDtype) or \
                pd.api.types.is_bool_dtype(dt):
            out.append(c)
    return out


def segment_values(frame: pd.DataFrame, column: str, limit: int = 200) -> list[str]:
    """The values of a segment column as the filter compares them (text; missing values as ``(missing)``)."""
    s = frame[column]
    txt = s.astype(object).where(s.notna(), "(missing)").astype(str)
    return sorted(txt.unique().tolist())[:limit]


def _segment_mask(table: pd.DataFrame, segment_filter: dict | None) -> np.ndarray:
    mask = np.ones(len(table), dtype=bool)
    for col, allowed in (segment_filter or {}).items():
        if allowed is None:
            continue
        if col not in table.columns:
            raise ConfigError(f"Cannot filter by {col!r}: the scored users have no such column "
                              f"(they have {', '.join(map(str, table.columns[:12]))}).")
        values = list(allowed) if isinstance(allowed, (list, tuple, set, frozenset, np.ndarray, pd.Series)) \
            else [allowed]
        if not values:
            continue
        s = table[col]
        wanted = {str(v) for v in values}
        txt = s.astype(object).where(s.notna(), "(missing)").astype(str)
        mask &= txt.isin(wanted).to_numpy()
    return mask


def _reason_frame(reasons, n: int) -> pd.DataFrame | None:
    if reasons is None:
        return None
    if isinstance(reasons, pd.DataFrame):
        if len(reasons) != n:
            raise ConfigError(f"Reasons are given for {len(reasons):,} users but {n:,} were scored.")
        return reasons.reset_index(drop=True)
    lists = list(reasons)
    for r in lists:
        if len(r) != n:
            raise ConfigError(f"Reasons are given for {len(r):,} users but {n:,} were scored.")
    return pd.DataFrame({f"reason_{i + 1}": list(r) for i, r in enumerate(lists)})


def select(scores: pd.DataFrame, frame: pd.DataFrame | None = None, *, method: str = "contacts",
           audience: str | None = None, threshold: float | None = None, k: int | None = None,
           share: float | None = None, budget: float | None = None, cost_per_contact: float | None = None,
           value_col: str | None = None, save_rate: float | None = None, segment_filter: dict | None = None,
           lookup: pd.DataFrame | None = None) -> Selection:
    """Who to contact: the one choice of users, for the command line, the app and the lists they write.

    Users are narrowed to an ``audience`` (``saveable``: everyone but the lapsed, ``winback``: the lapsed, ``all`` or
    None: everyone; read from the scores' ``stage``) and to ``segment_filter`` (column -> allowed value or values, on
    ``lookup``: the scores with the segment columns beside them), then chosen by ``method``:

    - ``"contacts"`` (the default): ``k`` users, else ``share`` (default 10%) of all the users scored, ranked by
      ``uplift`` when the scores have it (a run that estimates the effect of a contact), else by expected net value
      (:mod:`retention_core.campaign`);
    - ``"threshold"``: everyone whose churn probability is at least ``threshold``;
    - ``"top_k"``: the ``k`` users most at risk; ``"everyone"``: all of them, most at risk first;
    - ``"budget"``: as many of the users most at risk as ``budget / cost_per_contact`` pays for;
    - ``"value"``: ranked by value at risk, keeping the top ``k``, what the budget pays for, or everyone above
      ``threshold`` (whichever is given, in that order), else everyone;
    - ``"expected_value"``: ranked by expected net value, keeping the top ``k``, what the budget pays for among
      users worth contacting, else every user worth contacting.
    """
    _check_choice(scores, frame, method, threshold, k)
    base = scores.reset_index(drop=True)
    fr = frame.reset_index(drop=True) if frame is not None else None
    if lookup is None:
        lookup = _segment_lookup(base[_score_columns(base)], fr, segment_filter, [])[0]
    n = len(base)
    p = base["churn_probability"].to_numpy(dtype=float)
    value, basis = user_value(fr, n, value_col)
    aud = audience_mask(base["stage"] if "stage" in base.columns else pd.Series([None] * n, dtype=object), audience)
    keep = np.flatnonzero(_segment_mask(lookup, segment_filter) & aud)
    by_rank = keep[np.argsort(base["rank"].to_numpy()[keep], kind="stable")]
    pick = Selection(by_rank, len(keep), value, basis)
    if method == "contacts" and "uplift" in base.columns:
        u = np.nan_to_num(base["uplift"].to_numpy(dtype=float), nan=-np.inf)
        pick.positions = by_rank[value_order(u[by_rank], p[by_rank])][:contacts_for(n, k, share)]
        pick.ranked_by = "uplift"
    elif method in ("contacts", "expected_value"):
        want = contacts_for(n, k, share) if method == "contacts" else k
        pick.positions, pick.env, a = choose_by_expected_value(p, value, by_rank, k=want, budget=budget,
                                                               save_rate=save_rate, cost_per_contact=cost_per_contact)
        pick.assumptions, pick.ranked_by = Assumptions(a.save_rate, a.cost_per_contact, basis), "expected_net_value"
    elif method != "everyone":
        pick.positions = _choose(method, by_rank, p, p * value, threshold=threshold, k=k, budget=budget,
                                 cost_per_contact=cost_per_contact)
        pick.ranked_by = "value_at_risk" if method == "value" else "churn_probability"
    return pick


def above_threshold(p, threshold: float) -> np.ndarray:
    """Who a selection by threshold keeps: churn probability at or above ``threshold`` (the service's ``at_risk``)."""
    return np.asarray(p, dtype=float) >= float(threshold)


def _check_choice(scores: pd.DataFrame, frame: pd.DataFrame | None, method: str, threshold, k) -> None:
    if method not in METHODS:
        raise ConfigError(f"Unknown selection method {method!r}: use one of {', '.join(METHODS)}.")
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise ConfigError(f"The scores lack the columns {', '.join(missing)}; score the users first.")
    if frame is not None and len(frame) != len(scores):
        raise ConfigError(f"The scores ({len(scores):,} users) and the feature rows ({len(frame):,}) do not match.")
    if threshold is not None and not 0 <= float(threshold) <= 1:
        raise ConfigError(f"The threshold must be a probability between 0 and 1, got {threshold}.", field="threshold",
                          value=threshold)
    if k is not None and int(k) < 1:
        raise ConfigError(f"The number of users to contact must be at least 1, got {k}.", field="top", value=k)


def _score_columns(scores: pd.DataFrame) -> list[str]:
    return SCORE_COLUMNS + [c for c in EXTRA_SCORE_COLUMNS if c in scores.columns]


def at_risk_list(scores: pd.DataFrame, frame: pd.DataFrame | None = None, *, method: str = "contacts",
                 audience: str | None = None, threshold: float | None = None, k: int | None = None,
                 share: float | None = None, budget: float | None = None, cost_per_contact: float | None = None,
                 value_col: str | None = None, segment_filter: dict | None = None,
                 segment_cols: list[str] | None = None, reasons=None, model: str | None = None,
                 date: str | None = None, save_rate: float | None = None) -> pd.DataFrame:
    """The users to contact, as :func:`select` chooses them (``audience``, ``method`` and its settings, segments), in
    the choice's order.

    ``scores`` comes from :func:`score` and ``frame`` is its feature rows (same rows, same order). A user's value is
    ``value_col`` when given, else past revenue (``revenue_365d``, ``revenue_total``), else past orders (the purchases
    a churner takes away), else 1. ``reasons`` (optional) are per-user reason texts aligned with ``scores``: ``n``
    lists or a DataFrame of ``reason_1..N``. ``model`` and ``date`` fill the ``model`` and ``scoring_date`` columns
    (``date`` defaults to the snapshot date of ``frame``). ``threshold`` filters only for the ``"threshold"`` method
    (and ``"value"`` without a K or a budget); otherwise it is reported as the model's decision threshold.

    Columns: ``user_id, churn_probability, risk_decile, rank``, ``stage`` (and ``uplift``) when the scores have them,
    the segment columns, ``reason_1..N`` when given, ``value, value_at_risk`` (then ``expected_net_value`` and the
    assumptions ``save_rate, cost_per_contact, value_basis`` when ranked by expected net value), ``threshold, model,
    scoring_date``. ``rank`` is always the rank by churn probability among all scored users. ``attrs``: ``method``,
    ``ranked_by``, ``eligible`` (users in the audience and segments), ``value_basis``, ``audience``.
    """
    _check_choice(scores, frame, method, threshold, k)
    base = scores.reset_index(drop=True)
    fr = frame.reset_index(drop=True) if frame is not None else None
    lookup, segs = _segment_lookup(base[_score_columns(base)], fr, segment_filter, segment_cols)
    pick = select(base, fr, method=method, audience=audience, threshold=threshold, k=k, share=share, budget=budget,
                  cost_per_contact=cost_per_contact, value_col=value_col, save_rate=save_rate,
                  segment_filter=segment_filter, lookup=lookup)
    chosen = pick.positions
    out = lookup.iloc[chosen].reset_index(drop=True)
    out = out[_score_columns(base) + [c for c in segs if c not in _score_columns(base)]]
    rf = _reason_frame(reasons, len(base))
    if rf is not None:
        part = rf.iloc[chosen].reset_index(drop=True)
        for c in part.columns:
            out[c] = part[c].fillna("").to_numpy()
    out["value"] = pick.value[chosen]
    out["value_at_risk"] = base["churn_probability"].to_numpy(dtype=float)[chosen] * pick.value[chosen]
    out["threshold"] = float(threshold) if threshold is not None else np.nan
    out["model"] = model if model is not None else ""
    out["scoring_date"] = date or scoring_date(fr)
    if pick.env is not None:  # retention_core.campaign
        out.insert(out.columns.get_loc("value_at_risk") + 1, "expected_net_value", pick.env[chosen])
        out = with_assumptions(out, pick.assumptions)
    out.attrs.update(value_basis=pick.basis, method=method, ranked_by=pick.ranked_by, eligible=int(pick.eligible),
                     audience=audience or "all")
    return out


def _choose(method: str, by_rank: np.ndarray, p: np.ndarray, var: np.ndarray, *, threshold, k, budget,
            cost_per_contact) -> np.ndarray:
    """Positions of the users ``method`` picks from the eligible ones (``by_rank``: most at risk first)."""
    if method == "threshold":
        if threshold is None:
            raise ConfigError("Choose a churn-probability threshold to select users by threshold.", field="threshold")
        return by_rank[above_threshold(p[by_rank], threshold)]
    if method == "top_k":
        if k is None:
            raise ConfigError("Choose how many users to contact (K).", field="top")
        return by_rank[:int(k)]
    if method == "budget":
        if budget is None or cost_per_contact is None:
            raise ConfigError("Give both the campaign budget and the cost per contact.", field="budget")
        return by_rank[:budget_contacts(budget, cost_per_contact)]
    by_value = by_rank[np.argsort(-var[by_rank], kind="stable")]
    if k is not None:
        return by_value[:int(k)]
    if budget is not None or cost_per_contact is not None:
        if budget is None or cost_per_contact is None:
            raise ConfigError("Give both the campaign budget and the cost per contact.", field="budget")
        return by_value[:budget_contacts(budget, cost_per_contact)]
    if threshold is not None:
        return by_value[p[by_value] >= float(threshold)]
    return by_value


def _segment_lookup(base: pd.DataFrame, fr: pd.DataFrame | None, segment_filter, segment_cols) -> tuple:
    """The score columns with the segment columns beside them, and the segment columns' names."""
    segs = list(segment_cols) if segment_cols is not None else segment_columns(fr)
    if fr is None:
        if segs:
            raise ConfigError("Segment columns need the scored users' feature rows.")
        return base, segs
    for c in segs:
        if c not in fr.columns:
            raise ConfigError(f"Segment column {c!r} is not among the scored users' columns.")
    for c in (segment_filter or {}):
        if c not in segs and c in fr.columns and c not in base.columns:
            segs.append(c)
    lookup = pd.concat([base, fr[[c for c in segs if c not in base.columns]]], axis=1) if segs else base
    return lookup, segs


def attach_reasons(list_df: pd.DataFrame, reasons) -> pd.DataFrame:
    """``list_df`` with ``reason_1..N`` (``n`` lists aligned with its rows) placed before ``value`` (a copy)."""
    rf = _reason_frame(reasons, len(list_df))
    out = list_df.drop(columns=[c for c in list_df.columns if str(c).startswith("reason_")])
    at = out.columns.get_loc("value") if "value" in out.columns else len(out.columns)
    for i, c in enumerate(rf.columns if rf is not None else []):
        out.insert(at + i, c, rf[c].fillna("").to_numpy())
    out.attrs.update(list_df.attrs)
    return out


def list_positions(scores: pd.DataFrame, list_df: pd.DataFrame) -> np.ndarray:
    """The rows of ``scores`` (and of its feature rows) that the users of ``list_df`` came from, in list order."""
    ids = pd.Index(scores["user_id"].astype(str))
    if not ids.is_unique:
        raise ConfigError("Some users appear more than once in the scored data; give one row per user.")
    pos = ids.get_indexer(list_df["user_id"].astype(str))
    if (pos < 0).any():
        raise ConfigError("The list holds users that were not scored; score the data again.")
    return pos


def list_summary(list_df: pd.DataFrame) -> dict:
    """Users selected, expected churners among them (sum of churn probabilities) and value at risk."""
    p = list_df["churn_probability"].to_numpy(dtype=float) if len(list_df) else np.zeros(0)
    var = list_df["value_at_risk"].to_numpy(dtype=float) if "value_at_risk" in list_df and len(list_df) \
        else np.zeros(0)
    return {"users": int(len(list_df)), "expected_churners": float(p.sum()), "value_at_risk": float(var.sum()),
            "mean_probability": float(p.mean()) if len(p) else float("nan")}


# ----------------------------------------------------------------------------------------------- export
