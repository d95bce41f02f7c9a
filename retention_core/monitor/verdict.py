"""The plain verdict of a monitoring report: ``ok``, ``watch``, ``retrain`` or ``waiting``, with the reasons.

Quality is judged on every observed scoring at once, each weighed by its observed users: the realised figures (and the
same models' validation figures) are users-weighted means over the observed scorings, and the users and churners are
their totals, so a large scoring counts for what it holds and a one-user scoring cannot decide the verdict.

Rules (that pooled quality against validation, and the drift of the latest population):

- ``retrain`` when recall in the top 10% fell by more than ``RECALL_DROP`` (a fifth) of its validation value, or
  ROC-AUC by more than ``AUC_DROP`` (0.05), or when the score distribution moved (PSI above 0.25) together with at least
  ``DRIFT_FEATURES`` features in the ``act`` band;
- ``watch`` for half those drops, a realised churn rate more than ``CALIBRATION_GAP`` (10 points) away from the
  predicted rate, any feature or the score past its bands, or too few observed users to judge (fewer than
  ``MIN_USERS``, or fewer than ``MIN_CLASS`` churned or retained users, over all observed scorings);
- ``waiting`` when no scoring can be checked yet (and nothing else calls for action); ``ok`` otherwise.

Features whose drift is expected ageing (``expected_ageing`` in the drift table: they grow with the customers' age,
so a longer log moves them with nothing changed) never count as drifted: the verdict names them apart, as expected.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

AUC_DROP = 0.05
RECALL_DROP = 0.20
CALIBRATION_GAP = 0.10
DRIFT_FEATURES = 3
MIN_USERS, MIN_CLASS = 100, 10
LEVELS = ("ok", "waiting", "watch", "retrain")


@dataclass(frozen=True)
class Verdict:
    level: str  # ok | waiting | watch | retrain
    text: str  # one line: "retrain: recall in the top 10% fell from 0.41 to 0.28; 3 features drifted"
    reasons: list[str] = field(default_factory=list)


def _num(v) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def _weighted(seen: pd.DataFrame, key: str, other: str) -> tuple[float, float] | None:
    """Users-weighted means of ``key`` and ``other`` over the scorings that have both (None when none has)."""
    a = pd.to_numeric(seen[key], errors="coerce") if key in seen else None
    b = pd.to_numeric(seen[other], errors="coerce") if other in seen else None
    if a is None or b is None:
        return None
    w = pd.to_numeric(seen["observed"], errors="coerce").fillna(0)
    ok = a.notna() & b.notna() & (w > 0)
    if not ok.any():
        return None
    return float((a[ok] * w[ok]).sum() / w[ok].sum()), float((b[ok] * w[ok]).sum() / w[ok].sum())


def _quality(seen: pd.DataFrame) -> tuple[list[str], list[str], list[str], list[str]]:
    """(retrain reasons, watch reasons, plain facts, what they were weighed over: "weighed over 3 scorings (4,210 users
    observed)" when more than one) from every observed scoring, weighed by its observed users, against validation."""
    retrain, watch, facts = [], [], []
    n = int(pd.to_numeric(seen["observed"], errors="coerce").fillna(0).sum())
    churners = int(pd.to_numeric(seen.get("churners", pd.Series(0, index=seen.index)), errors="coerce").fillna(0)
                   .sum())
    where = f"the scoring of {seen['as_of'].iloc[0]}" if len(seen) == 1 else f"{len(seen)} scorings"
    if n < MIN_USERS or min(churners, n - churners) < MIN_CLASS:
        return [], [f"only {n:,} users observed in {where} ({churners:,} churned): too few to judge"], [], []
    for key, label, relative, drop in (("recall_at_10pct", "recall in the top 10%", True, RECALL_DROP),
                                       ("roc_auc", "ROC-AUC", False, AUC_DROP)):
        pair = _weighted(seen, key, f"validation_{key}")
        if pair is None:
            continue
        real, val = pair
        fall = (val - real) / val if relative and val else val - real
        if fall > drop:
            retrain.append(f"{label} fell from {val:.2f} to {real:.2f}")
        elif fall > drop / 2:
            watch.append(f"{label} slipped from {val:.2f} to {real:.2f}")
        else:
            facts.append(f"realised {label} {real:.2f} against {val:.2f} at validation")
    rates = _weighted(seen, "churn_rate", "predicted_rate")
    if rates is not None and abs(rates[0] - rates[1]) > CALIBRATION_GAP:
        watch.append(f"realised churn {rates[0]:.0%} against {rates[1]:.0%} predicted: the probabilities need "
                     "recalibrating")
    return retrain, watch, facts, [f"weighed over {where} ({n:,} users observed)"] if len(seen) > 1 else []


def _names(rows: pd.DataFrame) -> list[str]:
    return (rows["label"] if "label" in rows else rows["feature"]).astype(str).tolist()


def _ageing(aged: pd.DataFrame) -> str:
    """The sentence that names expected ageing (never a reason): "; 2 features that grow ... as expected (...)"."""
    if not len(aged):
        return ""
    names = _names(aged)
    return f"; {len(names)} feature{'s that grow' if len(names) > 1 else ' that grows'} with the customers' age " \
        f"moved as expected ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}): expected ageing, not a " \
        "reason to act"


def _drift(drift: pd.DataFrame, score: dict | None) -> tuple[list[str], list[str], str, bool, str]:
    """(retrain reasons, watch reasons, the drift phrase: "3 features drifted (a, b, c)", whether a feature drifted,
    the sentence naming expected ageing apart). Expected ageing is left out of the count and of the reasons."""
    ageing = drift["expected_ageing"].fillna(False).astype(bool) if "expected_ageing" in drift else \
        pd.Series(False, index=drift.index)
    moved, aged = drift[~ageing], drift[ageing & drift["band"].isin(["moderate", "act"])] if len(drift) else drift
    act = _names(moved[moved["band"] == "act"]) if len(moved) else []
    moderate = int((moved["band"] == "moderate").sum()) if len(moved) else 0
    phrase = "no feature drifted" if not act else f"{len(act)} feature{'s' if len(act) > 1 else ''} drifted " \
        f"({', '.join(act[:3])}{', ...' if len(act) > 3 else ''})"
    if moderate:
        phrase += f", {moderate} moved moderately"
    band = (score or {}).get("band")
    if band == "act" and len(act) >= DRIFT_FEATURES:
        return [f"the score distribution moved (PSI {score['psi']:.2f}) with the population"], [], phrase, True, \
            _ageing(aged)
    watch = [f"the score distribution moved (PSI {score['psi']:.2f})"] if band in ("act", "moderate") else []
    return [], watch, phrase, bool(act), _ageing(aged)


def verdict(scorings: pd.DataFrame, drift: pd.DataFrame, score: dict | None) -> Verdict:
    """The verdict of a report's scorings (one row each, with ``status``) and drift (see the module docstring)."""
    seen = scorings[scorings["status"] == "observed"] if len(scorings) else scorings
    retrain, watch, facts, scope = [], [], [], []
    if len(seen):
        retrain, watch, facts, scope = _quality(seen.sort_values(["as_of", "recorded_at"]))
    d_retrain, d_watch, phrase, drifted, ageing = _drift(drift, score)
    retrain, watch = retrain + d_retrain, watch + d_watch
    if retrain:
        return Verdict("retrain", f"retrain: {'; '.join(retrain + scope)}; {phrase}{ageing}", retrain + watch)
    if watch or drifted:
        return Verdict("watch", f"watch: {'; '.join(watch + scope + [phrase])}{ageing}",
                       watch + ([phrase] if drifted else []))
    if not len(seen):
        waiting = scorings.dropna(subset=["observable_from"]).sort_values("observable_from") if len(scorings) else []
        when = f" (the first, as of {waiting.iloc[0]['as_of']}, from {waiting.iloc[0]['observable_from']})" \
            if len(waiting) else ""
        return Verdict("waiting", f"waiting: no scoring can be checked yet{when}; {phrase}{ageing}", [])
    return Verdict("ok", f"ok: {', '.join(facts + scope) or 'quality holds'}; {phrase}{ageing}", facts)
