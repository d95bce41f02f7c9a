"""Errors with messages meant for the analyst, not the developer.

Every error the product raises on purpose derives from :class:`RetentionError` (a ``ValueError``), so the app can turn
it into ``st.error`` and the command line into one ``error: ...`` line with exit status 2.
"""
from __future__ import annotations

from typing import Any


class RetentionError(ValueError):
    """Base class: the message says what is wrong and how to fix it, in the analyst's words.

    Structured fields let each front end word the fix in its own terms: ``field`` names the setting or request field
    at fault (``"top"``, ``"threshold"``, ``"as_of"``: the command line turns it into its flag, the service into the
    JSON field of a 422), ``value`` is the value received, ``roles`` the column roles that could not be found (the app
    points at its column mapping, the command line at ``--user-col`` and the like).
    """

    def __init__(self, message: str = "", *, field: str | None = None, value: Any = None,
                 roles: tuple[str, ...] | list[str] = ()):
        super().__init__(message)
        self.field = field
        self.value = value
        self.roles = tuple(roles)


class DataError(RetentionError):
    """The data given cannot be used as it is (unreadable, empty, wrong shape, bad values)."""


class ConfigError(RetentionError):
    """A setting or a column choice is not valid for this data."""


class ModelError(RetentionError):
    """A model cannot be trained or applied on what it was given."""


class BundleError(RetentionError):
    """A saved run is missing, incomplete or was changed since it was saved."""


#: Exit statuses of the command line: success, an internal failure, bad input or usage.
EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(RetentionError):
    """The command line was used wrongly (an option missing or combined with one it excludes)."""
