"""A generated table shaped like the public bank churn table (10,000 customers of a European bank): a row number, a
customer id, surnames, then the genuine features and the ``Exited`` label. The id-like columns are the trap: a row
number and surnames say nothing about churn, while ``Balance`` and ``EstimatedSalary`` are nearly unique per row and
still genuine features."""
from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = ["RowNumber", "CustomerId", "Surname", "CreditScore", "Geography", "Gender", "Age", "Tenure", "Balance",
           "NumOfProducts", "HasCrCard", "IsActiveMember", "EstimatedSalary", "Exited"]
GENUINE = ["CreditScore", "Geography", "Gender", "Age", "Tenure", "Balance", "NumOfProducts", "HasCrCard",
           "IsActiveMember", "EstimatedSalary"]


def bank_table(n: int = 2_000, seed: int = 0) -> pd.DataFrame:
    """``n`` customers; surnames drawn from about 0.3 n names with a long tail (most shared by a few customers), as in
    the real table (2,932 surnames for 10,000 customers)."""
    rng = np.random.default_rng(seed)
    names = np.array([f"{a}{b}" for a in ("Mac", "Van", "O'", "De", "Le", "Fitz", "Ash", "Bel", "Cor", "Dun")
                      for b in range(max(1, int(0.03 * n)))])
    weights = 1 / np.arange(1, len(names) + 1) ** 0.6
    age = rng.integers(18, 92, n)
    active = rng.integers(0, 2, n)
    products = rng.choice([1, 2, 3, 4], n, p=[0.5, 0.45, 0.04, 0.01])
    balance = np.where(rng.random(n) < 0.36, 0.0, rng.normal(120_000, 30_000, n).round(2))
    germany = rng.random(n) < 0.25
    risk = 0.07 * (age - 40) - 1.0 * active + 1.5 * (products >= 3) + 0.6 * germany + rng.normal(0, 1, n)
    return pd.DataFrame({
        "RowNumber": np.arange(1, n + 1),
        "CustomerId": rng.permutation(np.arange(15_565_701, 15_565_701 + 3 * n))[:n],
        "Surname": rng.choice(names, n, p=weights / weights.sum()),
        "CreditScore": rng.integers(350, 851, n),
        "Geography": np.where(germany, "Germany", rng.choice(["France", "Spain"], n)),
        "Gender": rng.choice(["Female", "Male"], n),
        "Age": age,
        "Tenure": rng.integers(0, 11, n),
        "Balance": balance,
        "NumOfProducts": products,
        "HasCrCard": rng.integers(0, 2, n),
        "IsActiveMember": active,
        "EstimatedSalary": rng.uniform(11.58, 199_992.48, n).round(2),
        "Exited": (risk > np.quantile(risk, 0.8)).astype(int),
    })
