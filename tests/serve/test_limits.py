"""How much a request may hold, checked before the work: rows counted on the body's bytes (they must agree with the
parsed body whatever the strings hold), the limits read from the environment, and the warning for a service that
other machines can reach without a token."""
from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from retention_core.errors import ConfigError
from retention_core.serve import Limits, exposure_warning, rows_in_body
from retention_core.serve.limits import TooLarge, refuse_many_rows

TRICKY = st.sampled_from(['{', '}', '[', ']', '"', '\\', '\\"', '"events": [', '{"users": [{', 'é', '\u2028',
                          ' ', 'events', 'users', ':'])
TEXT = st.lists(st.one_of(TRICKY, st.text(max_size=3)), max_size=4).map("".join)
CELL = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1),
                 st.floats(allow_nan=False, allow_infinity=False), TEXT)
ROW = st.dictionaries(st.one_of(TEXT, st.sampled_from(["events", "users"])), CELL, max_size=4)
BODY = st.builds(lambda other, rows: {**other, **rows}, st.dictionaries(TEXT, CELL, max_size=2),
                 st.fixed_dictionaries({}, optional={"events": st.lists(ROW, max_size=6),
                                                     "users": st.lists(ROW, max_size=6), "as_of": TEXT}))


def _dumps(body: dict, style: int) -> bytes:
    if style == 0:
        return orjson.dumps(body)
    if style == 1:
        return json.dumps(body).encode()  # non-ASCII as \u escapes
    return json.dumps(body, indent=2, ensure_ascii=False).encode()


@settings(max_examples=300, deadline=None)
@given(BODY, st.integers(0, 2))
def test_rows_counted_on_the_bytes_are_the_rows_parsed(body, style):
    raw = _dumps(body, style)
    want = {k: len(v) for k, v in json.loads(raw).items() if k in ("events", "users") and isinstance(v, list)}
    assert rows_in_body(raw) == want


def test_rows_that_are_no_objects_and_truncated_bodies_are_not_counted_as_rows():
    assert rows_in_body(b'{"events": [[1], 2, {"a": "}{"}], "users": []}') == {"events": 1, "users": 0}
    assert rows_in_body(b'{"events": [{"a": 1}, {"a": 2}') == {"events": 2}  # the parser refuses the rest
    assert rows_in_body(b'{"as_of": "\\"events\\": [{}, {}]"}') == {}  # within a string: no list
    assert rows_in_body(b'{"x": {"events": 1}, "as_of": "users"}') == {}


def test_a_body_over_a_row_limit_is_refused_before_it_is_parsed():
    limits = Limits(events=3, users=2)
    rows = [{"user_id": "u", "note": "{{{"}] * 3
    refuse_many_rows(json.dumps({"events": rows}).encode(), limits)  # at the limit
    with pytest.raises(TooLarge, match="RETENTION_API_MAX_EVENTS"):
        refuse_many_rows(json.dumps({"events": rows * 2}).encode(), limits)
    with pytest.raises(TooLarge, match="RETENTION_API_MAX_USERS"):
        refuse_many_rows(json.dumps({"users": rows}).encode(), limits)
    refuse_many_rows(json.dumps({"users": [{"note": "{" * 50}] * 2}).encode(), limits)  # braces in text are no rows


def test_limits_come_from_the_environment(monkeypatch):
    assert Limits.from_environment() == Limits(body_bytes=20_000_000, events=50_000, users=10_000, record_timeout=2.0)
    monkeypatch.setenv("RETENTION_API_MAX_EVENTS", "1000")
    monkeypatch.setenv("RETENTION_API_MAX_USERS", "50")
    monkeypatch.setenv("RETENTION_API_RECORD_TIMEOUT", "0")
    monkeypatch.setenv("RETENTION_API_MAX_BODY_MB", "1.5")
    assert Limits.from_environment() == Limits(body_bytes=1_500_000, events=1000, users=50, record_timeout=0.0)
    assert Limits.from_environment(events=7).events == 7  # given wins
    for bad in ("many", "0", "-5", "2.5"):
        monkeypatch.setenv("RETENTION_API_MAX_EVENTS", bad)
        with pytest.raises(ConfigError, match="RETENTION_API_MAX_EVENTS"):
            Limits.from_environment()


def test_listening_beyond_this_machine_without_a_token_is_warned_about():
    for host in ("127.0.0.1", "localhost", "::1"):
        assert exposure_warning(host, None) is None
    for host in ("0.0.0.0", "::"):
        warning = exposure_warning(host, None)
        assert warning and host in warning and "RETENTION_API_TOKEN" in warning
        assert exposure_warning(host, "a-token") is None
