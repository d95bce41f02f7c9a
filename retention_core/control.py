"""Control groups: a random share of a campaign's audience held out (not contacted), so that once the horizon has
passed the customers contacted can be compared with customers just like them who were not
(:mod:`retention_core.monitor.campaigns` measures the difference).

:func:`assign_control` is the one call the command line (``score ... --control-share S [--seed N]``) and the app's
export make. It marks every row of a list ``contact`` or ``control`` in a ``group`` column:

- **Stratified**: the list is split into strata, by risk decile and, when the list has one, by lifecycle ``stage``
  (:data:`STRATA`; another choice of columns can be given), and each stratum holds out its own share, so the two
  groups have the same mix of risk and stage.
- **Exact shares, rounding stated**: the whole list holds out ``round(N x share)`` users (halves round up), the
  share computed exactly in decimals (0.1 is a tenth, not a float near it). Each stratum of ``n`` users holds out
  ``floor(n x share)`` or one more: the users left over after the floors go one each to the strata with the largest
  remainders ``n x share - floor(n x share)``, ties between equal remainders broken in a seeded random order
  (the "largest remainder" rule). So every stratum's share is within one user of the target and the total is exact.
- **Seeded and repeatable**: within a stratum the users held out are those with the smallest keys, a keyed hash of
  ``(seed, user id)``. The same list and seed always give the same groups, whatever the order of the rows, and a
  user keeps their key when the list changes a little. The default seed is the scoring date as a number
  (``20240802``): rescoring the same day gives the same groups, another day draws others.
- **Its measurement window** (``days``): a campaign is judged on a qualifying purchase in ``(as-of, as-of + days]``,
  a property of the campaign, not of the model. The command line and the app state it (default
  :data:`DEFAULT_DAYS`, the product's stated horizon); a list drawn without one is judged over its run's horizon,
  like the campaigns recorded before the window was kept.
"""
from __future__ import annotations

import hashlib
from fractions import Fraction

import numpy as np
import pandas as pd

from .errors import ConfigError

GROUP = "group"
CONTACT, CONTROL = "contact", "control"
#: The columns a control group is stratified by, when the list has them.
STRATA = ("risk_decile", "stage")
MISSING = "(missing)"
#: A campaign's measurement window when the command line or the app is not told another (DESIGN.md: horizon 90 days).
DEFAULT_DAYS = 90


def check_share(share) -> float:
    """The control share as a number strictly between 0 and 1 (a :class:`ConfigError` naming the value otherwise)."""
    try:
        s = float(share)
    except (TypeError, ValueError):
        raise ConfigError(f"The control share must be a number between 0 and 1 (e.g. 0.1 for 10%), got {share!r}.",
                          field="control_share", value=share) from None
    if not np.isfinite(s) or not 0 < s < 1:
        raise ConfigError(f"The control share is the part of the list held out, above 0 and below 1 (e.g. 0.1 for "
                          f"10%), got {share!r}.", field="control_share", value=share)
    return s


def check_seed(seed) -> int:
    try:
        s = int(seed)
    except (TypeError, ValueError):
        raise ConfigError(f"The seed must be a whole number, got {seed!r}.", field="seed", value=seed) from None
    if s != float(seed) or s < 0:
        raise ConfigError(f"The seed must be a whole number, 0 or more, got {seed!r}.", field="seed", value=seed)
    return s


def check_days(days) -> int:
    """A campaign's measurement window as a whole number of days above 0."""
    try:
        d = int(days)
        ok = d == float(days) and d > 0
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ConfigError(f"The campaign's window is a whole number of days above 0 (e.g. 90), got {days!r}.",
                          field="campaign_days", value=days)
    return d


def default_seed(as_of=None) -> int:
    """The seed used when none is given: the scoring date as a number (2024-08-02 -> 20240802; today without one)."""
    day = pd.Timestamp(as_of if as_of is not None else pd.Timestamp.now())
    return int(day.strftime("%Y%m%d"))


def strata_columns(list_df: pd.DataFrame, strata=None) -> list[str]:
    """The columns to stratify by: ``strata`` when given (each must be a column), else those of :data:`STRATA` the
    list has."""
    if strata is None:
        return [c for c in STRATA if c in list_df.columns]
    cols = [strata] if isinstance(strata, str) else list(strata)
    missing = [c for c in cols if c not in list_df.columns]
    if missing:
        raise ConfigError(f"Cannot stratify the control group by {', '.join(map(repr, missing))}: the list has no "
                          f"such column (it has {', '.join(map(str, list_df.columns[:12]))}).", field="strata")
    return cols


def _stratum_codes(list_df: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """One integer per row naming its stratum (0 for everyone without strata columns)."""
    if not cols:
        return np.zeros(len(list_df), dtype=np.int64)
    keys = pd.MultiIndex.from_frame(pd.DataFrame(
        {c: list_df[c].astype(object).where(list_df[c].notna(), MISSING).astype(str).to_numpy() for c in cols}))
    return pd.factorize(keys, sort=True)[0].astype(np.int64)


def control_counts(sizes, share, seed: int = 0) -> np.ndarray:
    """How many users each stratum of ``sizes`` holds out: the largest-remainder rule of the module notes (total
    ``round(sum(sizes) x share)``, halves up; each stratum ``floor(n x share)`` or one more)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    s = Fraction(str(check_share(share)))
    exact = [int(n) * s for n in sizes]
    base = np.array([int(e.numerator // e.denominator) for e in exact], dtype=np.int64)
    total = int((sum(exact, Fraction(0)) + Fraction(1, 2)) // 1)
    extra = total - int(base.sum())
    if extra > 0:
        rem = np.array([float(e - b) for e, b in zip(exact, base)])
        tie = np.random.default_rng(check_seed(seed)).permutation(len(sizes))
        order = np.lexsort((tie, -rem))  # largest remainder first, ties in a seeded random order
        base[order[:extra]] += 1
    return base


def draw_keys(user_ids, seed: int) -> np.ndarray:
    """Each user's place in the draw: a keyed 64-bit hash of the user id's text under the seed."""
    key = hashlib.sha256(f"control-group:{check_seed(seed)}".encode()).hexdigest()[:16]
    ids = pd.Series(user_ids).astype(str).to_numpy(dtype=object)
    return pd.util.hash_array(ids, hash_key=key, categorize=False)


def assign_control(list_df: pd.DataFrame, share, seed: int | None = None, strata=None, *,
                   as_of=None, days: int | None = None) -> pd.DataFrame:
    """``list_df`` (a copy, same rows and order) with a ``group`` column: ``control`` for a random, stratified
    ``share`` of its users, ``contact`` for the rest (see the module notes for the strata, the rounding and the
    draw). ``seed`` defaults to :func:`default_seed` of ``as_of`` (else of the list's ``scoring_date``). What was
    drawn is in ``attrs["control"]``: share, seed, strata, users in each group, and the campaign's window ``days``
    (None: its run's horizon)."""
    share = check_share(share)
    days = None if days is None else check_days(days)
    if "user_id" not in list_df.columns:
        raise ConfigError("A control group is drawn from a list of users: the list has no user_id column.")
    if seed is None:
        if as_of is None and "scoring_date" in list_df.columns and len(list_df):
            as_of = list_df["scoring_date"].iloc[0]
        seed = default_seed(as_of)
    seed = check_seed(seed)
    cols = strata_columns(list_df, strata)
    code = _stratum_codes(list_df, cols)
    sizes = np.bincount(code, minlength=int(code.max()) + 1 if len(code) else 0)
    counts = control_counts(sizes, share, seed)
    keys = draw_keys(list_df["user_id"], seed)
    order = np.lexsort((np.arange(len(code)), keys, code))  # by stratum, then by key (ties: row order)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if len(sizes) else np.zeros(0, dtype=np.int64)
    place = np.empty(len(code), dtype=np.int64)
    place[order] = np.arange(len(code)) - np.repeat(starts, sizes)  # position within the stratum, by key
    held = place < counts[code] if len(code) else np.zeros(0, dtype=bool)
    out = list_df.copy()
    out[GROUP] = np.where(held, CONTROL, CONTACT)
    out.attrs.update(list_df.attrs)
    out.attrs["control"] = {"share": share, "seed": seed, "strata": cols, "control": int(held.sum()),
                            "contact": int((~held).sum()), "days": days}
    return out


def contact_rows(list_df: pd.DataFrame) -> pd.DataFrame:
    """The rows to hand to a campaign tool: the list without its control rows (the whole list when it has none)."""
    if GROUP not in list_df.columns:
        return list_df
    out = list_df[list_df[GROUP] != CONTROL].reset_index(drop=True)
    out.attrs.update(list_df.attrs)
    return out


def control_note(list_df: pd.DataFrame) -> str:
    """One line on the groups drawn: "412 of 4,120 users held out as the control group (10% per risk decile and
    stage, seed 20240802; judged over 90 days)"."""
    c = list_df.attrs.get("control")
    if not c:
        return "no control group"
    n = c["control"] + c["contact"]
    by = " and ".join(s.replace("_", " ") for s in c["strata"])
    window = f"; judged over {c['days']} days" if c.get("days") else ""
    return (f"{c['control']:,} of {n:,} users held out as the control group ({c['share'] * 100:g}%"
            f"{f' per {by}' if by else ''}, seed {c['seed']}{window})")
