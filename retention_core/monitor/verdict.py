"""The plain verdict of a monitoring report: ``ok``, ``watch``, ``retrain`` or ``waiting``, with the reasons.

Rules (from the latest scoring whose horizon is observed, compared with the same model's validation figures, and the
drift of the latest population):

- ``retrain`` when recall in the top 10% fell by more than ``RECALL_DROP`` (a fifth) of its validation value, or
  ROC-AUC by more than ``AUC_DROP`` (0.05), or when the score distribution moved (PSI above 0.25) together with at least
  ``DRIFT_FEATURES`` features in the ``act`` band;
- ``watch`` for half those drops, a realised churn rate more than ``CALIBRATION_GAP`` (10 points) away from the
  predicted rate, any feature or the score past its bands, or too few observed users to judge (fewer than
  ``MIN_USERS``, or fewer than ``MIN_CLASS`` churned or retained users);
- ``waiting`` when no scoring can be checked yet (and nothing else calls for action); ``ok`` otherwise.
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


def _quality(row: pd.Series) -> tuple[list[str], list[str], list[str]]:
    """(retrain reasons, watch reasons, plain facts) from one observed scoring against validation."""
    retrain, watch, facts = [], [], []
    n, churners = int(row["observed"]), int(row.get("churners") or 0)
    if n < MIN_USERS or min(churners, n - churners) < MIN_CLASS:
        few = f"only {n:,} users observed in the scoring of {row['as_of']} ({churners:,} churned): too few to judge"
        return [], [few], []
    for key, label, relative, drop in (("recall_at_10pct", "recall in the top 10%", True, RECALL_DROP),
                                       ("roc_auc", "ROC-AUC", False, AUC_DROP)):
        real, val = _num(row.get(key)), _num(row.get(f"validation_{key}"))
        if real is None or val is None:
            continue
        fall = (val - real) / val if relative and val else val - real
        if fall > drop:
            retrain.append(f"{label} fell from {val:.2f} to {real:.2f}")
        elif fall > drop / 2:
            watch.append(f"{label} slipped from {val:.2f} to {real:.2f}")
        else:
            facts.append(f"realised {label} {real:.2f} against {val:.2f} at validation")
    rate, pred = _num(row.get("churn_rate")), _num(row.get("predicted_rate"))
    if rate is not None and pred is not None and abs(rate - pred) > CALIBRATION_GAP:
        watch.append(f"realised churn {rate:.0%} against {pred:.0%} predicted: the probabilities need recalibrating")
    return retrain, watch, facts


def _drift(drift: pd.DataFrame, score: dict | None) -> tuple[list[str], list[str], str]:
    """(retrain reasons, watch reasons, the drift phrase: "3 features drifted (a, b, c)")."""
    act = drift.loc[drift["band"] == "act", "feature"].tolist() if len(drift) else []
    moderate = int((drift["band"] == "moderate").sum()) if len(drift) else 0
    phrase = "no feature drifted" if not act else f"{len(act)} feature{'s' if len(act) > 1 else ''} drifted " \
        f"({', '.join(act[:3])}{', ...' if len(act) > 3 else ''})"
    if moderate:
        phrase += f", {moderate} moved moderately"
    band = (score or {}).get("band")
    if band == "act" and len(act) >= DRIFT_FEATURES:
        return [f"the score distribution moved (PSI {score['psi']:.2f}) with the population"], [], phrase
    watch = [f"the score distribution moved (PSI {score['psi']:.2f})"] if band in ("act", "moderate") else []
    return [], watch, phrase


def verdict(scorings: pd.DataFrame, drift: pd.DataFrame, score: dict | None) -> Verdict:
    """The verdict of a report's scorings (one row each, with ``status``) and drift (see the module docstring)."""
    seen = scorings[scorings["status"] == "observed"] if len(scorings) else scorings
    retrain, watch, facts = [], [], []
    if len(seen):
        retrain, watch, facts = _quality(seen.sort_values(["as_of", "recorded_at"]).iloc[-1])
    d_retrain, d_watch, phrase = _drift(drift, score)
    retrain, watch = retrain + d_retrain, watch + d_watch
    if retrain:
        return Verdict("retrain", f"retrain: {'; '.join(retrain)}; {phrase}", retrain + watch)
    drifted = len(drift) and (drift["band"] == "act").any()
    if watch or drifted:
        return Verdict("watch", f"watch: {'; '.join(watch + [phrase])}", watch + ([phrase] if drifted else []))
    if not len(seen):
        waiting = scorings.dropna(subset=["observable_from"]).sort_values("observable_from") if len(scorings) else []
        when = f" (the first, as of {waiting.iloc[0]['as_of']}, from {waiting.iloc[0]['observable_from']})" \
            if len(waiting) else ""
        return Verdict("waiting", f"waiting: no scoring can be checked yet{when}; {phrase}", [])
    return Verdict("ok", f"ok: {', '.join(facts) or 'quality holds'}; {phrase}", facts)
