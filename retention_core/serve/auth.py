"""Who may ask: a bearer token (``RETENTION_API_TOKEN``) for /v1/model and /v1/score, compared in constant time;
and a warning when the service listens beyond this machine without one."""
from __future__ import annotations

import hmac
import ipaddress
import socket

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


def exposure_warning(host: str, token: str | None) -> str | None:
    """A warning for a service that listens on an address other machines can reach (``0.0.0.0``, a network
    interface, a name that resolves to one) without a token; None on a loopback address or with a token."""
    if token or _loopback(host):
        return None
    return (f"listening on {host}, which other machines can reach, without a token: anyone who reaches the port can "
            f"score customers and read the model. Set {TOKEN_ENV} to require a bearer token.")


def _loopback(host: str) -> bool:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
        return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)
    except (OSError, ValueError):
        return False
