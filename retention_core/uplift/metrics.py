"""How well a ranking finds the customers a contact persuades: the Qini curve and its area, uplift by decile.

Only a randomised experiment can say it: among the ``k`` customers a model ranks first, the treated ones who responded
minus the control ones who responded, scaled to the number treated (Radcliffe 2007):

    incremental(k) = Y_t(k) - Y_c(k) * N_t(k) / N_c(k)

where ``Y_t(k)`` counts the treated responders among the first ``k``, ``N_t(k)`` the treated, and ``Y_c, N_c`` the
same for the control group (0 while no control customer is among them). Customers with the same score are taken
together, so the curve has one point per distinct score. Random targeting is the straight line from (0, 0) to the
whole population's incremental responders.

The **Qini area** is the area between the curve and that line, with both axes as shares of the population
(the share targeted; incremental responders per customer): how many more responders per customer the ranking finds
than random targeting does, averaged over every campaign size. Random targeting scores 0 by construction. The **Qini
coefficient** divides it by the area of the perfect ranking (the treated responders first, the control responders
last), so it reads as a share of what an oracle would find (the normalised "Qini coefficient" of scikit-uplift).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ConfigError

#: The comparison rows of a leaderboard of uplift learners.
RANDOM, RESPONSE = "random", "response"
COMPARISON_LABELS = {RANDOM: "Random targeting", RESPONSE: "Response targeting (P(outcome | treated))"}


def _arrays(y, score, treated) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float).ravel()
    t = np.asarray(treated, dtype=float).ravel()
    s = np.asarray(score, dtype=float).ravel()
    if not (len(y) == len(t) == len(s)):
        raise ConfigError(f"Outcomes ({len(y):,}), treatment flags ({len(t):,}) and scores ({len(s):,}) must have "
                          "the same length.")
    if not len(y):
        raise ConfigError("No customers to evaluate.")
    for name, v in (("outcome", y), ("treatment flag", t)):
        if not np.isin(v, (0.0, 1.0)).all():
            raise ConfigError(f"The {name} must be 0 or 1 for every customer.")
    if not np.isfinite(s).all():
        raise ConfigError("Every score must be a finite number.")
    return y, t, s


def qini_curve(y, score, treated) -> pd.DataFrame:
    """The Qini curve of a ranking (highest ``score`` first): one row per distinct score, starting at (0, 0).

    Columns: ``targeted`` (customers targeted), ``share`` (of the population), ``incremental`` (incremental
    responders among them, see the module) and ``random`` (what random targeting of the same share finds).
    """
    y, t, s = _arrays(y, score, treated)
    order = np.argsort(-s, kind="mergesort")
    y, t, s = y[order], t[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # the last customer of each group of equal scores
    n_all = last + 1.0
    n_t = np.cumsum(t)[last]
    n_c = n_all - n_t
    y_t = np.cumsum(y * t)[last]
    y_c = np.cumsum(y * (1 - t))[last]
    ratio = np.divide(n_t, n_c, out=np.zeros_like(n_t), where=n_c > 0)
    incremental = np.r_[0.0, y_t - y_c * ratio]
    targeted = np.r_[0.0, n_all]
    share = targeted / len(y)
    return pd.DataFrame({"targeted": targeted.astype(int), "share": share, "incremental": incremental,
                         "random": share * incremental[-1]})


def _area(curve: pd.DataFrame, n: int) -> float:
    gap = (curve["incremental"] - curve["random"]).to_numpy() / n
    x = curve["share"].to_numpy()
    return float(np.sum((x[1:] - x[:-1]) * (gap[1:] + gap[:-1]) / 2))


def qini_area(y, score, treated) -> float:
    """The area between the Qini curve and random targeting, on shares of the population (see the module)."""
    curve = qini_curve(y, score, treated)
    return _area(curve, int(curve["targeted"].iloc[-1]))


def perfect_score(y, treated) -> np.ndarray:
    """The oracle's ranking: treated responders first, control responders last, everyone else between."""
    y, t, _ = _arrays(y, np.zeros(len(np.ravel(y))), treated)
    return y * t - y * (1 - t)


def qini_coefficient(y, score, treated) -> float:
    """The Qini area as a share of the perfect ranking's area (NaN when no ranking can beat random)."""
    best = qini_area(y, perfect_score(y, treated), treated)
    return float(qini_area(y, score, treated) / best) if best > 0 else float("nan")


def uplift_by_decile(y, score, treated, bins: int = 10) -> pd.DataFrame:
    """Observed uplift per decile of the ranking (decile 1 = the highest scores): customers, treated and control
    counts, the outcome rate in each group, their difference (``uplift``) and the mean score. Customers are cut into
    ``bins`` groups of nearly equal size in rank order (ties broken by position, so every group has customers)."""
    y, t, s = _arrays(y, score, treated)
    if bins < 1:
        raise ConfigError(f"Use at least one group, got {bins}.")
    order = np.argsort(-s, kind="mergesort")
    rows = []
    for i, part in enumerate(np.array_split(order, min(bins, len(order)))):
        yt, yc = y[part][t[part] == 1], y[part][t[part] == 0]
        rt = float(yt.mean()) if len(yt) else np.nan
        rc = float(yc.mean()) if len(yc) else np.nan
        rows.append({"decile": i + 1, "customers": len(part), "treated": len(yt), "control": len(yc),
                     "rate_treated": rt, "rate_control": rc, "uplift": rt - rc, "mean_score": float(s[part].mean())})
    return pd.DataFrame(rows)


def observed_uplift(y, treated) -> float:
    """The outcome rate of the treated minus that of the control group (the average effect of the contact)."""
    y, t, _ = _arrays(y, np.zeros(len(np.ravel(y))), treated)
    if t.all() or not t.any():
        return float("nan")
    return float(y[t == 1].mean() - y[t == 0].mean())


def uplift_in_top(y, score, treated, share: float) -> float:
    """The observed uplift among the ``share`` of customers ranked first (NaN when an arm is missing there)."""
    y, t, s = _arrays(y, score, treated)
    k = max(1, int(round(share * len(y))))
    top = np.argsort(-s, kind="mergesort")[:k]
    return observed_uplift(y[top], t[top])


def ranking_figures(y, score, treated) -> dict:
    """The figures of one ranking on held-out customers: Qini area and coefficient, observed uplift in the top 10% and
    30%."""
    return {"qini_area": qini_area(y, score, treated), "qini_coefficient": qini_coefficient(y, score, treated),
            "uplift_top10": uplift_in_top(y, score, treated, 0.1), "uplift_top30": uplift_in_top(y, score, treated, 0.3)}


def comparison_figures(y, treated, response_score) -> dict[str, dict]:
    """The rows every learner is compared with: random targeting (its expected figures: area 0, the average effect
    in any group) and response targeting (ranking by P(outcome | treated))."""
    ate = observed_uplift(y, treated)
    return {RANDOM: {"qini_area": 0.0, "qini_coefficient": 0.0, "uplift_top10": ate, "uplift_top30": ate},
            RESPONSE: ranking_figures(y, response_score, treated)}
