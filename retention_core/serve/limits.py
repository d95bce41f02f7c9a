"""How much one request may hold, refused before the work it would cost.

- The body's size: checked from ``Content-Length`` and counted as the body arrives, before any parsing
  (:class:`BodyLimit`; ``RETENTION_API_MAX_BODY_MB``, 20 MB).
- The rows of ``events`` and ``users``: counted on the body's bytes before it is parsed (:func:`refuse_many_rows`, a
  count of ``{`` for any ordinary request, an exact count of the top-level lists only when that count is over the
  smaller limit) and on the parsed request (:func:`check_rows`), so no table is built for a request over them
  (``RETENTION_API_MAX_EVENTS``, 50,000; ``RETENTION_API_MAX_USERS``, 10,000).
- How long a request that asks to be recorded waits for the scoring history (``RETENTION_API_RECORD_TIMEOUT``, 2 s).

A request over a limit gets 413 with a message naming the limit and the variable that sets it.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .schemas import json_error

#: Largest request body accepted (bytes); ``RETENTION_API_MAX_BODY_MB`` changes it.
MAX_BODY_BYTES = 20_000_000
MAX_BODY_ENV = "RETENTION_API_MAX_BODY_MB"
#: Most raw event rows in one request (a customer's history is hundreds; a batch of a few hundred customers fits).
MAX_EVENTS = 50_000
MAX_EVENTS_ENV = "RETENTION_API_MAX_EVENTS"
#: Most feature rows (users) in one request.
MAX_USERS = 10_000
MAX_USERS_ENV = "RETENTION_API_MAX_USERS"
#: Seconds a request with ``"record": true`` waits for the scoring history's lock before it answers unrecorded.
RECORD_TIMEOUT = 2.0
RECORD_TIMEOUT_ENV = "RETENTION_API_RECORD_TIMEOUT"


@dataclass(frozen=True)
class Limits:
    """The limits one service applies to every request."""

    body_bytes: int = MAX_BODY_BYTES
    events: int = MAX_EVENTS
    users: int = MAX_USERS
    record_timeout: float = RECORD_TIMEOUT

    @classmethod
    def from_environment(cls, *, body_bytes: int | None = None, events: int | None = None, users: int | None = None,
                         record_timeout: float | None = None) -> Limits:
        """The values given, else their environment variables, else the defaults; a variable that is not a number
        above 0 (the timeout: 0 or more) raises :class:`ConfigError` naming it."""
        mb = _setting(MAX_BODY_ENV, float, MAX_BODY_BYTES / 1e6) if body_bytes is None else body_bytes / 1e6
        return cls(body_bytes=int(mb * 1e6),
                   events=events if events is not None else _setting(MAX_EVENTS_ENV, int, MAX_EVENTS),
                   users=users if users is not None else _setting(MAX_USERS_ENV, int, MAX_USERS),
                   record_timeout=record_timeout if record_timeout is not None
                   else _setting(RECORD_TIMEOUT_ENV, float, RECORD_TIMEOUT, zero=True))

    def describe(self) -> dict:
        """The limits as /v1/model shows them."""
        return {"max_body_bytes": self.body_bytes, "max_events": self.events, "max_users": self.users,
                "record_timeout_s": self.record_timeout}


def _setting(name: str, kind: type, default, zero: bool = False):
    text = (os.environ.get(name) or "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not np.isfinite(value) or value < 0 or (value == 0 and not zero):
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{name} must be {what} above 0{' (or 0)' if zero else ''}, got {text!r}.", field=name)
    return value


class TooLarge(Exception):
    """A request over one of the limits, answered 413 with ``message``."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# ----------------------------------------------------------------------------------------------- rows
def check_count(field: str, rows: int, limits: Limits) -> None:
    """:class:`TooLarge` when ``rows`` rows of ``field`` (``events`` or ``users``) are over its limit."""
    limit, env = (limits.events, MAX_EVENTS_ENV) if field == "events" else (limits.users, MAX_USERS_ENV)
    if rows > limit:
        raise TooLarge(f"{field}: {rows:,} rows is over the limit of {limit:,} {field} per request (set by {env}); "
                       "send them in several requests.")


def check_rows(req, limits: Limits) -> None:
    """The parsed request's ``events`` and ``users`` within their limits."""
    for field in ("events", "users"):
        rows = getattr(req, field)
        if rows is not None:
            check_count(field, len(rows), limits)


def refuse_many_rows(body: bytes, limits: Limits) -> None:
    """:class:`TooLarge` before parsing when the body's ``events`` or ``users`` are over their limit. A body can hold
    no more rows than it has ``{``: counting them (a few microseconds for one customer) settles every ordinary
    request; only a body with more than the smaller limit is counted exactly (:func:`rows_in_body`)."""
    if body.count(b"{") - 1 <= min(limits.events, limits.users):
        return
    for field, rows in rows_in_body(body).items():
        check_count(field, rows, limits)


_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'"{}[]')
_OPENS_LIST = re.compile(rb'\s*:\s*\[')


def rows_in_body(body: bytes) -> dict[str, int]:
    """The objects in the lists ``events`` and ``users`` of a JSON request, counted on the bytes without parsing
    them: brackets within strings and escaped quotes are no structure. Rows that are not objects are not counted, nor
    a key written with escapes (the parsed request is counted again). Only a body the parser refuses anyway can place
    such a list elsewhere than at the top (a row's cell is never a list), and be counted too."""
    text = body
    if b"\\" in body:  # escaped backslashes and quotes to spaces: the same length, each quote left delimits a string
        text = body.replace(b"\\\\", b"  ").replace(b'\\"', b"  ")
    starts = {f: _list_after(text, b'"%s"' % f.encode()) for f in ("events", "users")}
    if all(start is None for start in starts.values()):
        return {}
    structure = text.translate(None, _NOT_STRUCTURE)  # quotes and brackets only: a few bytes per row
    return {f: _objects_in_list(structure, len(text[:start].translate(None, _NOT_STRUCTURE)))
            for f, start in starts.items() if start is not None}


def _list_after(text: bytes, key: bytes) -> int | None:
    """Where the list that ``key`` opens begins (its ``[``): the first occurrence of the key followed by ``: [`` (a
    cell of that text is followed by a comma or a brace, a column of that name by a cell, never a list)."""
    at = text.find(key)
    while at >= 0:
        m = _OPENS_LIST.match(text, at + len(key))
        if m:
            return m.end() - 1
        at = text.find(key, at + 1)
    return None


def _objects_in_list(structure: bytes, at: int) -> int:
    """The objects directly in the list whose ``[`` is at ``at`` in ``structure`` (a body's quotes and brackets)."""
    char = np.frombuffer(structure, dtype=np.uint8, offset=at)
    quote = char == ord('"')
    outside = ~quote & (np.bitwise_xor.accumulate(quote.view(np.uint8)) == 0)  # not within a string
    char = char[outside]
    # depth after each character (int16: a body nested deeper than 32,767 is refused by the parser anyway)
    step = ((char == ord("{")) | (char == ord("["))).astype(np.int16) * 2 - 1  # +1 opens, -1 closes
    depth = np.cumsum(step, dtype=np.int16)
    closed = np.flatnonzero(depth == 0)
    end = int(closed[0]) if len(closed) else len(char)
    return int(((char[:end] == ord("{")) & (depth[:end] == 2)).sum())


# ----------------------------------------------------------------------------------------------- the body
class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, from ``Content-Length`` when the client sends it and by
    counting the body as it arrives otherwise; the app then reads the body from memory, never past the limit."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                return await self._refuse(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await self._refuse(scope, receive, send)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body, given = b"".join(chunks), [False]
        del chunks  # the body is held once while the request is answered

        async def replay():
            if not given[0]:
                given[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send):
        mb = self.max_bytes / 1e6
        response = json_error(413, f"The request body is over the limit of {mb:g} MB: send fewer rows per request "
                              f"(the limit is set with {MAX_BODY_ENV}).", headers={"Connection": "close"})
        await response(scope, receive, send)
