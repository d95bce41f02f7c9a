"""Population drift: the population stability index (PSI), written here (the monitoring libraries pin ``plotly<6``).

Definition. A feature's values in a reference population (the rows the run's models learned from) and in a current
population (the latest users in new data) are put in the same bins. With ``e_i`` the reference share and ``a_i`` the
current share of bin ``i``::

    PSI = sum over bins of (a_i - e_i) * ln(a_i / e_i)

An empty bin's share is taken as ``EPS`` (0.0001, i.e. 0.01%) on either side so the logarithm is finite; shares are
not renormalised (an empty bin on both sides contributes 0). Bands: PSI below 0.1 ``stable``, 0.1 to 0.25
``moderate``, above 0.25 ``act``.

The bins and the compact reference a run carries are defined in :mod:`retention_core.drift_reference`
(training computes the reference; this module only compares with it).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..drift_reference import categorical_shares, feature_reference, numeric_shares

EPS = 1e-4
BANDS = (0.1, 0.25)
BAND_NAMES = ("stable", "moderate", "act")


def band(psi: float | None) -> str | None:
    """``stable`` below 0.1, ``moderate`` from 0.1 to 0.25, ``act`` above 0.25 (None when PSI is unknown)."""
    if psi is None or not np.isfinite(psi):
        return None
    return BAND_NAMES[0] if psi < BANDS[0] else BAND_NAMES[1] if psi <= BANDS[1] else BAND_NAMES[2]


def psi_from_shares(expected, actual, eps: float = EPS) -> float:
    """PSI of two share vectors over the same bins (missing bin included), each empty share taken as ``eps``."""
    e = np.maximum(np.asarray(expected, dtype=float), eps)
    a = np.maximum(np.asarray(actual, dtype=float), eps)
    if e.shape != a.shape:
        raise ValueError(f"Shares over different bins ({e.shape} vs {a.shape}).")
    return float(np.sum((a - e) * np.log(a / e)))


def psi(reference, current, *, categorical: bool | None = None) -> float:
    """PSI of ``current`` values against a reference: raw reference values, or a :func:`feature_reference` dict."""
    ref = reference if isinstance(reference, dict) else feature_reference(reference, categorical=categorical)
    return compare(ref, current)["psi"]


def compare(ref: dict, current) -> dict:
    """PSI of ``current`` values against the reference ``ref``, with the sample sizes and missing shares."""
    if ref["kind"] == "categorical":
        shares, other, missing, n = categorical_shares(current, ref["categories"])
        e = list(ref["shares"]) + [ref["other"], ref["missing"]]
        a = list(shares) + [other, missing]
    else:
        shares, missing, n = numeric_shares(current, ref["edges"])
        e = list(ref["shares"]) + [ref["missing"]]
        a = list(shares) + [missing]
    value = psi_from_shares(e, a) if n and ref["n"] else float("nan")
    return {"psi": value, "band": band(value), "n_reference": int(ref["n"]), "n_current": int(n),
            "missing_reference": float(ref["missing"]), "missing_current": float(missing)}


DRIFT_COLUMNS = ["feature", "kind", "psi", "band", "n_reference", "n_current", "missing_reference",
                 "missing_current"]


def drift_table(reference: dict, current: pd.DataFrame) -> pd.DataFrame:
    """PSI of every reference feature present in ``current``, largest first, with its band and sample sizes."""
    rows = []
    for name, ref in reference.get("features", {}).items():
        if name not in current.columns:
            continue
        rows.append({"feature": name, "kind": ref["kind"], **compare(ref, current[name])})
    out = pd.DataFrame(rows, columns=DRIFT_COLUMNS)
    return out.sort_values(["psi", "feature"], ascending=[False, True], na_position="last").reset_index(drop=True)


def score_drift(reference: dict, model: str, p) -> dict | None:
    """PSI of the churn probabilities ``p`` against model ``model``'s reference scores (None when none is kept)."""
    ref = reference.get("scores", {}).get(model)
    if ref is None or p is None:
        return None
    return {"model": model, **compare(ref, np.asarray(p, dtype=float))}
