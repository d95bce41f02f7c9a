"""The quality benchmark's yardsticks (no real data): the same-period ceiling separates what the features can
separate and nothing more, and the target lines put it beside the margin."""
from __future__ import annotations

import numpy as np
import pandas as pd

from bench.bench_quality import CEILING, MARGIN, PREVIOUS, REFERENCE_LR, target_check
from bench.quality_tables import DEFAULT_HGB, table_check
from bench.reference import same_period_ceiling


def _frame(n: int, seed: int, signal: float) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    recency = rng.exponential(60, n)
    orders = rng.poisson(3, n).astype(float)
    y = (rng.random(n) < 1 / (1 + np.exp(-signal * (recency - 60) / 30))).astype(int)
    return pd.DataFrame({"recency_days": recency, "orders_total": orders}), y


def test_the_ceiling_finds_a_real_signal_and_none_in_noise():
    X, y = _frame(3000, 0, signal=3.0)
    strong = same_period_ceiling(X, ["recency_days", "orders_total"], y)
    assert strong["roc_auc"] > 0.85 and strong["learner"] in ("logistic regression", "gradient boosting")
    X, y = _frame(3000, 1, signal=0.0)
    noise = same_period_ceiling(X, ["recency_days", "orders_total"], y)
    assert 0.44 < noise["roc_auc"] < 0.56  # labels that owe nothing to the features: chance, not a fit to them


def _holdout(auto: float, ceiling: float, dataset: str = "d", cutoff: str = "c") -> list[dict]:
    return [{"dataset": dataset, "cutoff": cutoff, "model": "auto (logreg)", "roc_auc": auto},
            {"dataset": dataset, "cutoff": cutoff, "model": "bgnbd", "roc_auc": 0.740},
            {"dataset": dataset, "cutoff": cutoff, "model": REFERENCE_LR, "roc_auc": 0.747},
            {"dataset": dataset, "cutoff": cutoff, "model": f"{CEILING} (gradient boosting)", "roc_auc": ceiling}]


def test_a_holdout_passes_ahead_of_the_best_rival_or_near_the_ceiling_and_never_below_the_previous_round():
    (line,) = target_check(_holdout(0.750, ceiling=0.760))  # +0.003 over the reference, 0.010 under the ceiling
    assert line.startswith("MISS d c") and f"(target {MARGIN})" in line and "ceiling 0.7600" in line
    assert target_check(_holdout(0.753, ceiling=0.760))[0].startswith("PASS")  # 0.006 ahead
    assert target_check(_holdout(0.749, ceiling=0.7505))[0].startswith("PASS")  # within 0.002 of the ceiling
    assert target_check(_holdout(0.749, ceiling=0.7515))[0].startswith("MISS")
    prev = PREVIOUS[("cdnow", "1998-04-01")]
    below = target_check(_holdout(prev - 0.0005, prev - 0.001, "cdnow", "1998-04-01"))[0]
    assert below.startswith("MISS") and "(below it)" in below  # near the ceiling, but under the previous round
    assert target_check(_holdout(prev, prev - 0.001, "cdnow", "1998-04-01"))[0].startswith("PASS")


def test_the_report_target_shows_the_ceiling_and_the_previous_round():
    from types import SimpleNamespace

    from bench.sections.quality import targets

    (t,) = targets(SimpleNamespace(quality=_holdout(0.7448, ceiling=0.7437, dataset="cdnow", cutoff="1998-04-01")))
    assert t["pass"] is True and "ceiling 0.7437 (+0.0011)" in t["value"] and "previous round 0.7448" in t["value"]


def test_a_user_table_is_judged_on_its_splits_against_the_default_gradient_boosting():
    from types import SimpleNamespace

    from bench.sections.quality import targets

    cv = [{"dataset": "telco", "cutoff": "5-fold CV", "model": "auto (logreg)", "roc_auc": 0.8483},
          {"dataset": "telco", "cutoff": "5-fold CV", "model": "gbm", "roc_auc": float("nan")}]
    assert targets(SimpleNamespace(quality=cv)) == [] and target_check(cv) == []

    def split(seed, auto, default):
        base = {"dataset": "telco", "cutoff": f"80/20 split, seed {seed}"}
        return [{**base, "model": "auto (gbm)", "roc_auc": auto, "train_seconds": 80.0},
                {**base, "model": DEFAULT_HGB, "roc_auc": default, "train_seconds": 2.0}]

    close = split(0, 0.846, 0.847) + split(1, 0.850, 0.850)  # 0.0005 under the default on average: within 0.002
    (t,) = targets(SimpleNamespace(quality=cv + close))
    assert t["pass"] is True and "telco" in t["target"] and "-0.0005" in t["value"] and "80 s per split" in t["value"]
    (line,) = table_check(close)
    assert line.startswith("PASS telco")
    behind = split(0, 0.840, 0.847) + split(1, 0.846, 0.850)  # 0.0055 under
    assert targets(SimpleNamespace(quality=behind))[0]["pass"] is False
    assert table_check(behind)[0].startswith("MISS telco")


def test_the_user_table_splits_pair_auto_with_the_default_on_the_same_rows(monkeypatch):
    from assets.generator import checkerboard_table
    from bench import quality_tables

    monkeypatch.setattr(quality_tables, "_tables", lambda: {"board": checkerboard_table(400, seed=5)})
    rows = quality_tables.table_splits(["logreg"], splits=(0, 1))
    assert [r["model"] for r in rows] == ["auto (logreg)", DEFAULT_HGB] * 2
    assert {r["users"] for r in rows} == {80} and all(0 <= r["roc_auc"] <= 1 for r in rows)
    assert rows[0]["roc_auc"] != rows[2]["roc_auc"]  # two different splits
    (line,) = table_check(rows)
    assert line.startswith(("PASS board", "MISS board")) and "mean of 2 splits" in line
