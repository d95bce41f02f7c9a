"""What a scoring request and its answer hold: the request model (its checks name the field at fault), the answer's
shape, the error a request that cannot be scored raises, and the JSON body of every error answer."""
from __future__ import annotations

import re
from datetime import date
from typing import Literal, Union

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator

from ..errors import DataError

MAX_REASONS = 10
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Cell = Union[StrictStr, StrictInt, StrictFloat, StrictBool, None]


# ----------------------------------------------------------------------------------------------- request and answer
class ScoreRequest(BaseModel):
    """Either raw ``events`` (the run's log columns) or ``users`` (feature rows, or user-table rows for a run
    trained on a user table)."""

    # NaN, Infinity and numbers beyond float range (1e400) are refused, never read as a missing value
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [
        {"events": [{"Invoice": "489434", "StockCode": "85048", "Quantity": "12", "InvoiceDate": "2010-06-01 07:45:00",
                     "Price": "6.95", "Customer ID": "13085", "Country": "United Kingdom"}],
         "as_of": "2010-09-10", "reasons": 3},
        {"users": [{"user_id": "13085", "recency_days": 12.5, "orders_total": 4, "Country": "United Kingdom"}]}]})

    events: list[dict[str, Cell]] | None = Field(
        None, min_length=1, description="Raw rows of the run's event log (GET /v1/model lists its columns), several "
        "users at once if you like; cells as text (as a CSV holds them, '' or 'NA' for missing) or JSON numbers "
        "(whole numbers beyond 64 bits are read as text, as the file reader reads such digits: a long id stays whole).")
    users: list[dict[str, Cell]] | None = Field(
        None, min_length=1, description="One row per user: 'user_id' and every feature of the run (null when not "
        "known); for a run trained on a user table, the table's own columns.")
    as_of: str | None = Field(None, description="Score as of this date, YYYY-MM-DD: events before it count (raw "
                              "events; default: now).", examples=["2010-09-10"])
    reasons: int = Field(0, ge=0, le=MAX_REASONS, description="Top reasons per user (0 = none).")
    record: bool = Field(False, description="Keep this scoring in the workspace's scoring history (as `score` does), "
                         "so `monitor` can check it once the horizon has passed; recorded after the scores are made, "
                         "off the event loop. When the history stays busy longer than the service waits "
                         "(RETENTION_API_RECORD_TIMEOUT), the scores are answered anyway and 'recording' says they "
                         "were not recorded.")

    @field_validator("as_of")
    @classmethod
    def _calendar_date(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not _DATE.match(v):
            raise ValueError(f"write the date as YYYY-MM-DD, e.g. 2010-09-10 (got {v[:40]!r})")
        try:
            date.fromisoformat(v)
        except ValueError:
            raise ValueError(f"{v!r} is not a date on the calendar") from None
        return v


class UserScore(BaseModel):
    user_id: str
    churn_probability: float = Field(description="Probability that the user does not come back within the horizon.")
    risk_decile: int = Field(description="1 = among the 10% of the run's validation users most at risk, 10 = least.")
    at_risk: bool = Field(description="churn_probability >= the run's threshold.")
    stage: Literal["new", "active", "slipping", "lapsed"] | None = Field(
        None, description="Lifecycle stage at the scoring date, from the customer's own rhythm against the shop's "
        "(new, active, slipping, lapsed); null for a run trained on a user table.")
    reasons: list[str] = Field(description="Why, most important first (when asked with 'reasons').")


class Recording(BaseModel):
    status: Literal["recorded", "skipped"] = Field(description="'skipped': the scores were not kept (see 'reason'); "
                                                   "send the request again to record them.")
    scoring_id: str | None = Field(None, description="The scoring's id in the history, when recorded.")
    reason: str | None = Field(None, description="Why the scoring was not recorded.")


class ChurnCheck(BaseModel):
    """retention_core.base_rate: the customers of the request against those the model was checked on."""

    predicted_rate: float = Field(description="Mean churn probability of the customers of this request.")
    scored_users: int
    validation_rate: float | None = Field(description="Share who churned among the customers the model was checked "
                                          "on (the run's validation customers).")
    validation_users: int
    validation_as_of: str | None
    validation_predicted: float | None = Field(description="The model's mean churn probability on those customers.")
    difference_points: float | None = Field(description="predicted_rate - validation_rate, in percentage points.")
    summary: str
    warning: str | None = Field(description="When they differ by more than 5 points (and 30 customers or more were "
                                "scored); the probabilities are never re-weighted.")


class ScoreAnswer(BaseModel):
    model: str
    as_of: str | None
    scores: list[UserScore]
    churn_check: ChurnCheck | None = Field(None, description="The predicted churn of this request's customers beside "
                                           "the churn rate the model was checked on.")
    recording: Recording | None = Field(None, description="Only when the request asked to be recorded.")


class RequestError(DataError):
    """A request that cannot be scored; ``loc`` is where in the body the fault is (``("users", 3, "recency_days")``)."""

    def __init__(self, message: str, loc: tuple = ()):
        super().__init__(message, field=where(loc) or None)
        self.loc = tuple(loc)


def where(loc) -> str:
    """A location in the body as text: ``users[3].recency_days``."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def json_error(status: int, message: str, detail=None, headers: dict | None = None) -> JSONResponse:
    """An error answer: ``{"message": one line naming the field at fault, "detail": the errors}``."""
    return JSONResponse({"message": message, "detail": detail if detail is not None else message}, status_code=status,
                        headers=headers)
