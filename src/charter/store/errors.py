"""The exceptions the store raises; the API maps each to one HTTP status."""

from __future__ import annotations

from charter.lang.errors import CharterError


class StoreError(CharterError):
    """Root of the store's errors; its message says what failed and, where there is one, the fix."""


class NotFound(StoreError):
    """The record named by an id does not exist."""


class Conflict(StoreError):
    """The write would break a uniqueness rule: a duplicate id, or a name already taken."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or opened (bad URL, server down, file not writable)."""


class SecretKeyError(StoreError):
    """The secret key is malformed, or is not the key the stored secrets were encrypted with."""


class StoreStateError(StoreError):
    """The database is not the state this store last held (missing, emptied, older, another
    store's, or corrupt): refused, so the service never starts empty over lost state."""
