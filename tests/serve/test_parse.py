"""The request reader: orjson with the rows checked in one pass must accept exactly what the request model accepts,
give the same request, and leave every error to the model's own messages."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from fastapi.exceptions import RequestValidationError
from hypothesis import given, settings, strategies as st

from retention_core.serve import ScoreRequest, parse_request

CELLS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False, allow_infinity=False),
                  st.text(max_size=6), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2),
                                                                                         st.integers(), max_size=1))
ROWS = st.lists(st.dictionaries(st.sampled_from(["user_id", "a", "b", " c "]), CELLS, max_size=4), max_size=3)
BODIES = st.fixed_dictionaries({}, optional={
    "events": st.one_of(ROWS, st.none(), st.integers()), "users": st.one_of(ROWS, st.none(), st.text(max_size=3)),
    "as_of": st.one_of(st.sampled_from(["2010-09-10", "2010-02-30", "10/09/2010"]), st.none(), st.integers()),
    "reasons": st.one_of(st.integers(-1, 12), st.text(max_size=2)), "record": st.one_of(st.booleans(), st.integers(0, 2)),
    "extra": st.integers()})


def _pydantic(body: bytes):
    try:
        return ScoreRequest.model_validate_json(body)
    except Exception as exc:  # noqa: BLE001 - only whether it was refused matters here
        return type(exc)


@settings(max_examples=400, deadline=None)
@given(BODIES)
def test_the_fast_reader_accepts_and_refuses_what_the_model_does(body):
    raw = json.dumps(body).encode()
    expected = _pydantic(raw)
    if isinstance(expected, ScoreRequest):
        got = parse_request(raw)
        assert got == expected
        assert got.model_dump() == expected.model_dump()
    else:
        with pytest.raises(RequestValidationError):
            parse_request(raw)


@pytest.mark.parametrize("raw", [b"{", b"[]", b'{"users": [{"user_id": 1}]', b'{"users": [{"a": 1e999}]}', b"",
                                 b'{"users": [{"a": 123456789012345678901234567890}]}', b'{"users": []}',
                                 b'{"users": [[1, 2]]}', b'{"events": [{"a": {"b": 1}}]}'])
def test_awkward_bodies_get_the_models_answer(raw):
    expected = _pydantic(raw)
    if isinstance(expected, ScoreRequest):
        assert parse_request(raw) == expected
    else:
        with pytest.raises(RequestValidationError) as err:
            parse_request(raw)
        assert err.value.errors()  # each error names where it is


def test_errors_name_the_field():
    with pytest.raises(RequestValidationError) as err:
        parse_request(b'{"users": [{"user_id": "1", "recency_days": [3]}], "reasons": 99}')
    locs = {tuple(e["loc"]) for e in err.value.errors()}
    assert ("body", "users", 0, "recency_days") in locs and ("body", "reasons") in locs


def test_plain_bodies_take_the_fast_reader(monkeypatch):
    """Small fractions print with long digit runs after the point (0.0009241093672147484): they are no huge integers,
    and a body of them must not fall back to the slow parser (that cost a third of the batch throughput once)."""
    body = json.dumps({"users": [{"user_id": str(i), "x": 0.0009241093672147484 * i, "y": None, "z": "a"}
                                 for i in range(1000)], "as_of": "2010-09-10"}).encode()
    expected = ScoreRequest.model_validate_json(body)

    def refuse(*_a, **_k):
        raise AssertionError("the slow parser was used")

    monkeypatch.setattr(ScoreRequest, "model_validate_json", refuse)
    assert parse_request(body) == expected


@pytest.mark.parametrize("raw", [b'{"users": [{"user_id": 12345678901234567890}]}',
                                 b'{"events": [{"n": -9223372036854775809}]}'])
def test_integers_beyond_64_bits_stay_whole(raw):
    req = parse_request(raw)
    cell = (req.users or req.events)[0]
    assert all(type(v) is int for v in cell.values())


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1" + b"0" * 400 + b".5"])
@pytest.mark.parametrize("field", ["users", "events"])
def test_numbers_that_are_not_finite_are_refused_where_they_stand(field, literal):
    """Never read as a missing value: the error names the cell and says why."""
    raw = b'{"%s": [{"user_id": "1", "x": 2}, {"user_id": "2", "x": %s}]}' % (field.encode(), literal)
    with pytest.raises(RequestValidationError) as err:
        parse_request(raw)
    (e,) = err.value.errors()
    assert e["loc"] == ("body", field, 1, "x") and e["type"] == "finite_number" and "finite" in e["msg"]


def test_a_whole_number_beyond_float_range_is_no_feature():
    from retention_core.serve import RequestError, feature_frame

    rows = [{"user_id": "a", "x": 1, "c": None}, {"user_id": 10**400, "x": -(10**400), "c": 10**400}]
    with pytest.raises(RequestError) as err:
        feature_frame(rows, ["x"], ["c"])
    assert err.value.loc == ("users", 1, "x") and "401 digits" in str(err.value)
    ids, X = feature_frame([{"user_id": 10**400, "x": 10**30, "c": 10**400}], ["x"], ["c"])
    assert ids == [str(10**400)] and X["x"].iloc[0] == 1e30 and X["c"].iloc[0] == str(10**400)


def test_whole_numbers_beyond_64_bits_in_raw_rows_are_read_as_the_file_reader_reads_their_digits():
    """A CSV cell of 20 or 400 digits is text to the file reader; the same number sent as a JSON number gives the
    same table (an id stays whole, never a rounded float)."""
    from retention_core.io import read_table
    from retention_core.serve import events_frame

    ids = [10**400, 2**64 - 1, 2**63, 5]
    rows = [{"id": u, "n": str(i), "amount": 10**25 if i == 1 else i} for i, u in enumerate(ids)]
    csv = "id,n,amount\n" + "".join(f"{r['id']},{r['n']},{r['amount']}\n" for r in rows)
    from_file = read_table(csv.encode(), name="rows.csv")
    from_json = events_frame(rows)
    from_file.attrs, from_json.attrs = {}, {}
    pd.testing.assert_frame_equal(from_json, from_file)
    assert list(from_json["id"]) == [str(u) for u in ids]
