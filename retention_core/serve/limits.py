"""How much one request may hold: the body's size, checked from ``Content-Length`` and counted as the body arrives,
before any parsing."""
from __future__ import annotations

from .schemas import json_error

#: Largest request body accepted (bytes); ``RETENTION_API_MAX_BODY_MB`` changes it.
MAX_BODY_BYTES = 20_000_000
MAX_BODY_ENV = "RETENTION_API_MAX_BODY_MB"


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
