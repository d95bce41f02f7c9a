"""An experiment table for uplift: which customers were contacted, which were held out, what happened, and the
customer columns measured before the contact that the learners may read.

A table with a treatment column (the arm each customer was randomised to) and an outcome column becomes an
:class:`ExperimentData`. The control arm is the value given; the treated customers are those of one chosen arm, or of
every other arm pooled (a three-arm test such as men's e-mail / women's e-mail / no e-mail then reads as "any e-mail
against none"; the arms pooled are recorded). Customers with no arm or no outcome are left out and counted.

Columns that record what happened after the contact (a purchase amount when the outcome is a visit) would let a model
read the outcome itself. They are found and left out: a column is such an outcome when one of its values never, or
always, goes with the outcome, or when it holds one value for every customer without the outcome (or with it) while
it varies on the other side, each far beyond chance (probability below one in a million). ``exclude`` names more.

Customers are identified by an id-like column (a unique, complete column named like ``customer_id``; or the one
given) or else by their row number in the table (1 = the first data row). Other row numbers, ids and names are never
learned from (the one rule of user tables, :mod:`retention_core.identifiers`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from ..features import apply_user_spec, user_feature_spec
from ..identifiers import id_columns
from ..roles import Schema, norm

#: A column's link to the outcome is called an outcome of its own below this chance probability.
LEAK_CHANCE = 1e-6
_ID_NAME = re.compile(r"^(customer|user|client|member|account|visitor|shopper|buyer|cust|row|record)(id|key|no|"
                      r"number|index|code)?$|^(id|key|index|uid|cid)$|(id|key|no)$")
MIN_ARM = 10  # customers an arm needs to be learned from


@dataclass(frozen=True)
class Experiment:
    """What the analyst says about the table: the treatment column and its control value, the treated arm (None:
    every other arm, pooled), the outcome column and the value that means the outcome happened."""

    treatment: str
    control: Any
    outcome: str
    positive: Any = None
    treated: Any = None

    def as_dict(self) -> dict:
        return {"treatment": self.treatment, "control": _plain(self.control), "outcome": self.outcome,
                "positive": _plain(self.positive), "treated": _plain(self.treated)}


@dataclass
class ExperimentData:
    """The customers of an experiment ready for the learners (rows aligned): ``frame`` holds ``user_id`` and the
    feature columns, ``y`` the outcome (1 = happened), ``w`` the arm (1 = treated)."""

    frame: pd.DataFrame
    numeric: list[str]
    categorical: list[str]
    y: np.ndarray
    w: np.ndarray
    experiment: Experiment
    positive: Any  # the outcome value that means it happened, as found in the table
    control_value: Any
    treated_values: list
    schema: Schema  # user id (or none: row numbers) and the outcome, as scoring reads the table again
    spec: dict  # how each column becomes a feature (retention_core.features.user_feature_spec)
    arm_counts: dict = field(default_factory=dict)  # value -> customers, of the arms kept
    left_out: dict = field(default_factory=dict)  # why -> customers left out
    outcome_columns: dict = field(default_factory=dict)  # column -> why it was left out as an outcome
    id_column: str | None = None

    @property
    def pooled(self) -> bool:
        return len(self.treated_values) > 1

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical

    def describe(self) -> dict:
        """What the run records about the experiment (run.json and metrics.json)."""
        t, c = int(self.w.sum()), int(len(self.w) - self.w.sum())
        return {**self.experiment.as_dict(), "positive": _plain(self.positive), "control": _plain(self.control_value),
                "treated_values": [_plain(v) for v in self.treated_values], "pooled": self.pooled,
                "customers": int(len(self.w)), "treated_customers": t, "control_customers": c,
                "outcome_rate_treated": float(self.y[self.w == 1].mean()),
                "outcome_rate_control": float(self.y[self.w == 0].mean()),
                "arm_counts": {str(k): int(v) for k, v in self.arm_counts.items()},
                "left_out": {k: int(v) for k, v in self.left_out.items()},
                "outcome_columns": dict(self.outcome_columns), "id_column": self.id_column}

    def arms_text(self) -> str:
        """One line: the arms compared."""
        treated = ", ".join(map(str, self.treated_values))
        how = f"every other arm pooled ({treated})" if self.pooled else treated
        return f"treated: {how}; control: {self.control_value}"


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def _matches(values: pd.Series, given) -> np.ndarray:
    """Where ``values`` equal ``given``, read as a number when both are numbers, else as trimmed text."""
    text = values.astype("string").str.strip()
    hit = (text == str(given).strip()).fillna(False).to_numpy(dtype=bool)
    num = pd.to_numeric(values, errors="coerce")
    try:
        g = float(given)
    except (TypeError, ValueError):
        return hit
    return hit | (num == g).fillna(False).to_numpy(dtype=bool)


def _values_text(s: pd.Series, limit: int = 8) -> str:
    vals = [str(v) for v in pd.unique(s.dropna())[:limit]]
    more = ", ..." if s.nunique(dropna=True) > limit else ""
    return ", ".join(repr(v) for v in vals) + more


def _column(df: pd.DataFrame, col: str, what: str, fld: str) -> str:
    if col in df.columns:
        return col
    close = [c for c in df.columns if norm(c) == norm(col)]
    hint = f" Did you mean {close[0]!r}?" if close else f" The table has {', '.join(map(repr, df.columns[:15]))}."
    raise ConfigError(f"There is no {what} column {col!r}.{hint}", field=fld, value=col)


def _arms(df: pd.DataFrame, exp: Experiment) -> tuple[np.ndarray, np.ndarray, Any, list]:
    """(treated mask, control mask, control value, treated values) of the rows, with the arms checked."""
    s = df[exp.treatment]
    control = _matches(s, exp.control)
    if not control.any():
        raise ConfigError(f"The control value {exp.control!r} is not in column {exp.treatment!r}; its values are "
                          f"{_values_text(s)}.", field="control_value", value=exp.control)
    control_value = s[control].iloc[0]
    others = s.notna().to_numpy() & ~control
    if exp.treated is not None:
        treated = _matches(s, exp.treated) & others
        if not treated.any():
            raise ConfigError(f"The treated value {exp.treated!r} is not in column {exp.treatment!r} (or it is the "
                              f"control value); its values are {_values_text(s)}.", field="treatment_value",
                              value=exp.treated)
    else:
        treated = others
    if not treated.any():
        raise ConfigError(f"Column {exp.treatment!r} holds a single arm ({control_value!r}): uplift needs treated "
                          "customers and a control group.", field="treatment", value=exp.treatment)
    values = list(pd.unique(s[treated]))
    return treated, control, control_value, sorted(values, key=str)


def _outcome(s: pd.Series, positive) -> tuple[np.ndarray, Any]:
    """The outcome as 1 (happened) / 0, and the value that means it happened; DataError unless it has two values."""
    vals = list(pd.unique(s.dropna()))
    if len(vals) != 2:
        raise DataError(f"The outcome {s.name!r} must have exactly two values (happened or not); it has "
                        f"{len(vals)}: {_values_text(s)}.", field="label", value=s.name)
    if positive is None:
        ones = [v for v in vals if str(v).strip().lower() in ("1", "1.0", "true", "yes", "y")]
        if len(ones) != 1:
            raise ConfigError(f"Say which value of {s.name!r} means the outcome happened ({_values_text(s)}).",
                              field="positive", value=None)
        positive = ones[0]
    hit = _matches(s, positive)
    if not hit.any():
        raise ConfigError(f"The value {positive!r} is not in the outcome {s.name!r}; its values are "
                          f"{_values_text(s)}.", field="positive", value=positive)
    return hit.astype(float), s[hit].iloc[0]


def id_column(df: pd.DataFrame, given: str | None = None) -> str | None:
    """The column that identifies customers: the one given (it must be unique), else a unique, complete column named
    like an id (``customer``, ``customer_id``, ``user_no``, ``id``...), else None (customers are then their row
    numbers)."""
    if given:
        col = _column(df, given, "user id", "user_id")
        if df[col].isna().any() or not df[col].is_unique:
            raise DataError(f"The id column {col!r} must name each customer once; it has repeated or empty values.",
                            field="user_id", value=col)
        return col
    for col in df.columns:
        if _ID_NAME.search(norm(col)) and df[col].notna().all() and df[col].is_unique:
            return col
    return None


def outcome_columns(df: pd.DataFrame, y: np.ndarray, candidates: list[str]) -> dict[str, str]:
    """The columns that record the outcome (see the module), with the reason for each, in the words of the screen."""
    out = {}
    rate, n_pos, n = float(y.mean()), int(y.sum()), len(y)
    n_neg = n - n_pos
    for col in candidates:
        v = df[col].astype(object).where(df[col].notna(), "(missing)").astype(str).to_numpy()
        counts = pd.crosstab(v, y)
        for k in (0.0, 1.0):
            if k not in counts.columns:
                counts[k] = 0
        size = counts[0.0] + counts[1.0]
        chance = LEAK_CHANCE / len(counts)  # as unlikely by chance as that over all the column's values
        share = size / n
        one_neg = counts[(counts[0.0] == n_neg) & (counts[1.0] < n_pos) & (share ** n_neg < chance)]
        one_pos = counts[(counts[1.0] == n_pos) & (counts[0.0] < n_neg) & (share ** n_pos < chance)]
        never = counts[(counts[1.0] == 0) & ((1 - rate) ** size < chance)].sort_values(0.0, ascending=False)
        always = counts[(counts[0.0] == 0) & (rate ** size < chance)].sort_values(1.0, ascending=False)
        if len(one_neg):
            out[col] = f"it is {one_neg.index[0]} for every customer without the outcome"
        elif len(one_pos):
            out[col] = f"it is {one_pos.index[0]} for every customer with the outcome"
        elif len(never):
            out[col] = f"no customer with {col} = {never.index[0]} has the outcome"
        elif len(always):
            out[col] = f"every customer with {col} = {always.index[0]} has the outcome"
    return out


def experiment_data(df: pd.DataFrame, exp: Experiment, *, user_col: str | None = None,
                    exclude: list[str] | tuple = ()) -> ExperimentData:
    """The customers of the experiment ready for the learners (ConfigError or DataError on a bad choice)."""
    _column(df, exp.treatment, "treatment", "treatment")
    _column(df, exp.outcome, "outcome", "label")
    if exp.outcome == exp.treatment:
        raise ConfigError("The outcome and the treatment must be different columns.", field="label", value=exp.outcome)
    for col in exclude:
        _column(df, col, "excluded", "exclude")
    uid = id_column(df, user_col)
    y_all, positive = _outcome(df[exp.outcome], exp.positive)
    treated, control, control_value, treated_values = _arms(df, exp)
    has_outcome = df[exp.outcome].notna().to_numpy()
    keep = (treated | control) & has_outcome
    left_out = {"no arm": int(df[exp.treatment].isna().sum()),
                "another arm": int((df[exp.treatment].notna().to_numpy() & ~treated & ~control).sum()),
                "no outcome": int(((treated | control) & ~has_outcome).sum())}
    rows = df.loc[keep].reset_index(drop=True)
    y, w = y_all[keep], treated[keep].astype(float)
    for name, n_arm in (("treated", int(w.sum())), ("control", int(len(w) - w.sum()))):
        if n_arm < MIN_ARM:
            raise DataError(f"The {name} group has {n_arm} customer(s) with an outcome; uplift needs at least "
                            f"{MIN_ARM} in each arm.", field="treatment", value=exp.treatment)
    if y.min() == y.max():
        raise DataError(f"Every customer kept has the same outcome ({exp.outcome} = {'happened' if y[0] else 'not'}); "
                        "uplift needs both.", field="label", value=exp.outcome)
    skip = {exp.treatment, exp.outcome, uid, *exclude}
    skip |= set(id_columns(df, skip))  # row numbers, ids, names: the one rule of user tables
    leaks = outcome_columns(rows, y, [c for c in rows.columns if c not in skip])
    schema = Schema(kind="users", roles={"user_id": uid, "label": exp.outcome}, attributes=[],
                    label_positive=_plain(positive))
    spec = user_feature_spec(rows, schema, sorted(skip - {None} | set(leaks), key=str))
    if not spec["numeric"] and not spec["categorical"] and not spec["dates"]:
        raise DataError("No customer column is left to learn from once the treatment, the outcome and the columns "
                        "measured after the contact are set aside.", field="label", value=exp.outcome)
    frame = apply_user_spec(rows, schema, spec)
    if uid is None:  # row numbers of the original table, not of the rows kept
        frame["user_id"] = (np.flatnonzero(keep) + 1).astype(str)
    numeric = spec["numeric"] + [f"{c} (age in days)" for c in spec["dates"]]
    counts = rows[exp.treatment].value_counts(dropna=True).to_dict()
    return ExperimentData(frame, numeric, list(spec["categorical"]), y, w, exp, positive, control_value,
                          treated_values, schema, spec, counts, {k: v for k, v in left_out.items() if v}, leaks, uid)


_TREATMENT_NAME = re.compile(r"(treat|arm|group|variant|campaign|experiment|test|cell|segment|offer|promo|contact|"
                             r"mail|holdout|control)")
_CONTROL_VALUE = re.compile(r"control|hold ?out|untreated|not contacted|^no[ _-]?(e-?mail|contact|offer|treatment|"
                            r"campaign|message|sms|call|coupon|promo|mail|push)")
_OFF_VALUE = re.compile(r"^(0|0\.0|no|false|none|n)$")
_OUTCOME_NAME = re.compile(r"(visit|conver|purchas|bought|buy|order|respon|click|open|redeem|churn|retain|outcome|"
                           r"target|label|success)")
MAX_ARMS = 6


def treatment_candidates(df: pd.DataFrame) -> list[dict]:
    """Columns that look like a randomised treatment: 2 to 6 arms of at least 1% of the rows each, named like one
    (``treatment``, ``group``, ``segment``...) or holding a value named like a control group (``control``,
    ``holdout``, ``No E-Mail``...); each with its arms and the control value guessed (that value, else 0/no/false,
    else the first): the app preselects them. Those with a control value named so come first."""
    out = []
    for col in df.columns:
        s = df[col]
        counts = s.value_counts(dropna=True)
        if not 2 <= len(counts) <= MAX_ARMS or counts.min() < 0.01 * len(s):
            continue
        values = sorted(counts.index, key=str)
        controls = [v for v in values if _CONTROL_VALUE.search(str(v).strip().lower())]
        if not controls and not _TREATMENT_NAME.search(norm(col)):
            continue
        off = [v for v in values if _OFF_VALUE.match(str(v).strip().lower())]
        out.append({"column": col, "values": [_plain(v) for v in values],
                    "control": _plain((controls or off or values)[0]), "named": bool(controls)})
    return sorted(out, key=lambda c: not c["named"])


def outcome_candidates(df: pd.DataFrame, treatment: str | None = None) -> list[str]:
    """Two-valued columns that could be the outcome, those named like one (``visit``, ``conversion``...) first."""
    cols = [c for c in df.columns if c != treatment and df[c].nunique(dropna=True) == 2]
    return sorted(cols, key=lambda c: not _OUTCOME_NAME.search(norm(c)))


def scoring_frame(df: pd.DataFrame, schema: Schema, spec: dict) -> pd.DataFrame:
    """The feature rows of customers to score, as the run's spec makes them (ids: the id column, else row numbers)."""
    return apply_user_spec(df, schema, spec)
