"""The quality benchmark's yardsticks (no real data): the same-period ceiling separates what the features can
separate and nothing more, and the target lines put it beside the margin."""
from __future__ import annotations

import numpy as np
import pandas as pd

from bench.bench_quality import CEILING, MARGIN, REFERENCE_LR, target_check
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


def test_the_target_line_shows_the_ceiling_beside_the_margin():
    rows = [{"dataset": "d", "cutoff": "c", "model": "auto (logreg)", "roc_auc": 0.750},
            {"dataset": "d", "cutoff": "c", "model": "bgnbd", "roc_auc": 0.740},
            {"dataset": "d", "cutoff": "c", "model": REFERENCE_LR, "roc_auc": 0.747},
            {"dataset": "d", "cutoff": "c", "model": f"{CEILING} (gradient boosting)", "roc_auc": 0.749}]
    (line,) = target_check(rows)
    assert line.startswith("MISS d c") and f"+ {MARGIN}" in line and "ceiling 0.7490" in line
    rows[0]["roc_auc"] = 0.753
    assert target_check(rows)[0].startswith("PASS")


def test_the_report_target_shows_the_ceiling():
    from types import SimpleNamespace

    from bench.sections.quality import targets

    quality = [{"dataset": "cdnow", "cutoff": "1998-04-01", "model": "auto (logreg)", "roc_auc": 0.7448},
               {"dataset": "cdnow", "cutoff": "1998-04-01", "model": "recency", "roc_auc": 0.70},
               {"dataset": "cdnow", "cutoff": "1998-04-01", "model": REFERENCE_LR, "roc_auc": 0.7425},
               {"dataset": "cdnow", "cutoff": "1998-04-01", "model": f"{CEILING} (logistic regression)",
                "roc_auc": 0.7437}]
    (t,) = targets(SimpleNamespace(quality=quality))
    assert t["pass"] is False and "(+0.0023; ceiling 0.7437)" in t["value"]


def test_a_user_table_is_not_judged_and_the_cli_prints_no_line_for_it():
    from types import SimpleNamespace

    from bench.sections.quality import targets

    quality = [{"dataset": "telco", "cutoff": "5-fold CV", "model": "auto (logreg)", "roc_auc": 0.8483},
               {"dataset": "telco", "cutoff": "5-fold CV", "model": "gbm", "roc_auc": float("nan")}]
    (t,) = targets(SimpleNamespace(quality=quality))
    assert t["pass"] is None and "no baseline applies" in t["value"]
    assert target_check(quality) == []
