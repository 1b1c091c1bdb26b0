"""Encryption at rest of the secret fields of a datasource's config.

A field is secret by its name, at any depth of the config: ``password``, ``secret``, ``token``,
``api_key``, ``apikey``, ``private_key``, ``client_secret``, ``headers``, ``auth``, ``credentials``, or a name ending in ``_password``,
``_secret``, ``_token`` or ``_key`` (case-insensitive). Its value, whatever its JSON type, is
replaced in the stored config by ``{"$fernet": TOKEN}``, a Fernet token (AES-128-CBC with an
HMAC-SHA256) of the value's JSON; the rest of the config stays readable in the database.

>>> box = SecretBox(SecretBox.generate_key())
>>> sealed = box.seal({"auth_url": "http://ks", "login": {"user": "u", "password": "pw"}})
>>> sealed["auth_url"], sorted(sealed["login"]["password"])
('http://ks', ['$fernet'])
>>> box.open(sealed)["login"]["password"]
'pw'
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from charter.store.errors import SecretKeyError

SECRET_NAMES = frozenset(
    {"password", "secret", "token", "api_key", "apikey", "private_key", "client_secret",
     "headers", "auth", "credentials"}
)
"""``headers`` and ``auth`` hold credentials in the http and prometheus drivers' configs."""
SECRET_SUFFIXES = ("_password", "_secret", "_token", "_key")
MARKER = "$fernet"

_WRONG_KEY = (
    "the secret key is not the one the stored secrets were encrypted with: "
    "start Charter with the key it used when the datasources were created"
)


def is_secret(name: str) -> bool:
    """Whether a config field of this name holds a secret.

    >>> [is_secret(n) for n in ("Password", "os_token", "username", "keystone")]
    [True, True, False, False]
    """
    low = name.lower()
    return low in SECRET_NAMES or low.endswith(SECRET_SUFFIXES)


class SecretBox:
    """Seals and opens configs with one Fernet key."""

    def __init__(self, key: bytes | str) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as e:
            raise SecretKeyError(
                "the secret key is not a Fernet key (32 url-safe base64-encoded bytes): "
                "make one with Store.generate_key()"
            ) from e

    @staticmethod
    def generate_key() -> bytes:
        return Fernet.generate_key()

    def encrypt(self, data: bytes) -> str:
        return self._fernet.encrypt(data).decode("ascii")

    def decrypt(self, token: str, what: str) -> bytes:
        """The plaintext of ``token``; SecretKeyError naming ``what`` if the key does not fit."""
        try:
            return self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError) as e:
            raise SecretKeyError(f"cannot decrypt {what}: {_WRONG_KEY}") from e

    def seal(self, config: Any) -> Any:
        """A copy of ``config`` with every secret field's value encrypted."""
        if isinstance(config, dict):
            return {
                k: (
                    {MARKER: self.encrypt(json.dumps(v).encode())}
                    if is_secret(str(k))
                    else self.seal(v)
                )
                for k, v in config.items()
            }
        if isinstance(config, list):
            return [self.seal(v) for v in config]
        return config

    def open(self, config: Any, what: str = "a datasource's config") -> Any:
        """The config :meth:`seal` was given."""
        if isinstance(config, dict):
            if len(config) == 1 and isinstance(config.get(MARKER), str):
                return json.loads(self.decrypt(config[MARKER], what))
            return {k: self.open(v, what) for k, v in config.items()}
        if isinstance(config, list):
            return [self.open(v, what) for v in config]
        return config
