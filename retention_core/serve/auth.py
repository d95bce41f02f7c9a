"""Who may ask: a bearer token (``RETENTION_API_TOKEN``) for /v1/model and /v1/score, compared in constant time."""
from __future__ import annotations

import hmac

from fastapi import HTTPException, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

TOKEN_ENV = "RETENTION_API_TOKEN"


def bearer_check(token: str | None):
    """A dependency that answers 401 unless the request carries ``Authorization: Bearer <token>`` (compared in
    constant time)."""
    expected = token.encode()
    scheme = HTTPBearer(auto_error=False, description=f"The token set in {TOKEN_ENV} when the service started.")

    async def check(credentials: HTTPAuthorizationCredentials | None = Security(scheme)) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, expected):
            raise HTTPException(401, "Send the service's token: Authorization: Bearer <token>.",
                                headers={"WWW-Authenticate": "Bearer"})

    return check
