"""Errors with messages meant for the analyst, not the developer.

Every error the product raises on purpose derives from :class:`RetentionError` (a ``ValueError``), so the app can turn
it into ``st.error`` and the command line into one ``error: ...`` line with exit status 2.
"""
from __future__ import annotations


class RetentionError(ValueError):
    """Base class: the message says what is wrong and how to fix it."""


class DataError(RetentionError):
    """The data given cannot be used as it is (unreadable, empty, wrong shape, bad values)."""


class ConfigError(RetentionError):
    """A setting or a column choice is not valid for this data."""


class ModelError(RetentionError):
    """A model cannot be trained or applied on what it was given."""


class BundleError(RetentionError):
    """A saved run is missing, incomplete or was changed since it was saved."""
