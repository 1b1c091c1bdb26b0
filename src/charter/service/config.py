"""Charter's settings: one TOML file plus ``CHARTER_*`` environment variables.

Precedence is environment > config file > defaults, so a container can override
one key of a packaged file. Every problem surfaces as one ``ConfigError`` whose
message names the file or variable, the key and the fix: operators see that,
never a pydantic traceback. docs/configuration.md and etc/charter.toml describe
every field; a test keeps both in sync with this module.
"""

from __future__ import annotations

import contextvars
import hashlib
import ipaddress
import logging
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from charter.lang.limits import Limits

log = logging.getLogger(__name__)

Role = Literal["viewer", "editor", "admin"]
ENV_PREFIX = "CHARTER_"
CONFIG_ENV = "CHARTER_CONFIG"
SECRET_KEY_ENV = "CHARTER_SECRET_KEY"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
DOCS = "docs/configuration.md"
# Keys whose relative values in a config file are taken relative to that file.
PATH_KEYS = (("data_dir",), ("secret_key_file",), ("library_dir",), ("auth", "tokens_file"),
             ("tls", "cert_file"), ("tls", "key_file"), ("tls", "ca_file"))


class ConfigError(Exception):
    """A configuration problem; the message is written for the operator, as is."""


def _rule(message: str) -> PydanticCustomError:
    """A rule across keys: its message names the keys itself."""
    return PydanticCustomError("config_rule", message)


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/charter``, else ``~/.local/share/charter`` (XDG: relative is ignored)."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path("~/.local/share").expanduser()
    return base / "charter"


# ----------------------------------------------------------------------------- static tokens


@dataclass(frozen=True)
class StaticToken:
    """One configured API token; only its sha256 digest is kept in memory."""

    name: str
    role: Role
    sha256: bytes


class _TokenEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    role: Role
    token: SecretStr | None = None
    token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")

    @model_validator(mode="after")
    def _one_secret(self) -> _TokenEntry:
        if (self.token is None) == (self.token_sha256 is None):
            raise ValueError("give exactly one of token or token_sha256")
        if self.token is not None and not self.token.get_secret_value():
            raise ValueError("token is empty")
        return self

    def digest(self) -> bytes:
        if self.token_sha256 is not None:
            return bytes.fromhex(self.token_sha256)
        assert self.token is not None
        return hashlib.sha256(self.token.get_secret_value().encode()).digest()


class _TokensFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: list[_TokenEntry] = Field(min_length=1)


def load_tokens(path: Path) -> tuple[StaticToken, ...]:
    """Read a TOML (``[[tokens]]``) or YAML (``tokens: [...]``) file of static API tokens."""
    fix = f"see 'Static tokens' in {DOCS}"
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            f"auth.tokens_file {path} cannot be read ({exc.strerror}); "
            "point auth.tokens_file at a readable TOML or YAML file of tokens"
        ) from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            raw = yaml.safe_load(text) or {}
        else:
            raw = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        kind = "YAML" if path.suffix.lower() in (".yaml", ".yml") else "TOML"
        raise ConfigError(f"tokens file {path} is not valid {kind}: {exc}") from None
    try:
        parsed = _TokensFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {_message(e)}" for e in exc.errors()
        )
        raise ConfigError(f"tokens file {path}: {problems} ({fix})") from None
    tokens = tuple(StaticToken(e.name, e.role, e.digest()) for e in parsed.tokens)
    names = [t.name for t in tokens]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"tokens file {path}: token names must be unique; repeated: {dup}")
    if len({t.sha256 for t in tokens}) != len(tokens):
        raise ConfigError(f"tokens file {path}: the same token is listed twice; give each its own")
    return tokens


# ----------------------------------------------------------------------------- models


def _default_role_map() -> dict[str, Role]:
    return {"admin": "admin", "member": "editor", "reader": "viewer"}


class KeystoneSettings(BaseModel):
    """Where and as whom Charter validates Keystone tokens."""

    model_config = ConfigDict(extra="forbid")

    auth_url: str | None = Field(
        default=None, description="Keystone URL, e.g. http://keystone:5000/v3 (with or without /v3)"
    )
    username: str | None = Field(default=None, description="Charter's service user")
    password: SecretStr | None = Field(default=None, description="the service user's password")
    project_name: str | None = Field(default=None, description="project the service token is scoped to")
    user_domain_name: str = Field(default="Default", description="domain of the service user")
    project_domain_name: str = Field(default="Default", description="domain of project_name")
    cache_seconds: int = Field(default=60, ge=0, description="how long a validated token is trusted")
    role_map: dict[str, Role] = Field(
        default_factory=_default_role_map,
        description="Keystone role name -> Charter role; the highest mapped role wins",
    )
    timeout_seconds: float = Field(default=5.0, gt=0, description="timeout of each Keystone call")

    @field_validator("auth_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value

    @field_validator("role_map")
    @classmethod
    def _lower_keys(cls, value: dict[str, Role]) -> dict[str, Role]:
        return {k.lower(): v for k, v in value.items()}  # Keystone role names ignore case


class AuthSettings(BaseModel):
    """Who may call the API: nobody checked, static tokens, or Keystone tokens."""

    model_config = ConfigDict(extra="forbid")

    strategy: Literal["noauth", "token", "keystone"] = Field(
        default="noauth", description="noauth (loopback only), token or keystone"
    )
    tokens_file: Path | None = Field(default=None, description="TOML/YAML file of static tokens")
    keystone: KeystoneSettings = Field(default_factory=KeystoneSettings)

    @field_validator("tokens_file")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @model_validator(mode="after")
    def _strategy_needs(self) -> AuthSettings:
        if self.strategy == "token":
            if self.tokens_file is None:
                raise _rule(
                    "auth.strategy is 'token' but auth.tokens_file is not set; set it to a "
                    f"TOML or YAML file of [[tokens]] (see {DOCS})"
                )
            load_tokens(self.tokens_file)  # fail at start, not at the first request
        if self.strategy == "keystone":
            ks = self.keystone
            missing = [
                f"auth.keystone.{name}"
                for name in ("auth_url", "username", "password", "project_name")
                if getattr(ks, name) is None
            ]
            if missing:
                raise _rule(
                    f"auth.strategy is 'keystone' but {', '.join(missing)} "
                    f"{'is' if len(missing) == 1 else 'are'} not set; Charter needs a Keystone "
                    "URL and service credentials to validate tokens"
                )
        return self

    def load_tokens(self) -> tuple[StaticToken, ...]:
        if self.tokens_file is None:
            raise ConfigError("auth.tokens_file is not set")
        return load_tokens(self.tokens_file)


class EnforcementSettings(BaseModel):
    """Safety limits on the actions ``execute[...]`` rules take (policies in ``enforce`` mode)."""

    model_config = ConfigDict(extra="forbid")

    max_actions_per_batch: int = Field(
        default=10, ge=0, description="actions one evaluation may start; the rest are capped"
    )
    max_actions_per_minute: int = Field(
        default=60, ge=0, description="actions per policy per minute; the rest are rate-limited"
    )
    retries: int = Field(
        default=3, ge=0, description="retries of an action whose service answered 502/503"
    )
    backoff_seconds: float = Field(
        default=1.0, gt=0, description="wait before the first retry; doubles for each next"
    )


class WebhookSettings(BaseModel):
    """One receiver of violation notifications."""

    model_config = ConfigDict(extra="forbid")

    url: SecretStr = Field(description="http(s) URL the events are POSTed to")
    format: Literal["json", "slack"] = Field(
        default="json", description="json (Charter's event) or slack (incoming webhook)"
    )
    policies: list[str] = Field(
        default_factory=list, description="only these policies' violations; empty: all"
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="extra HTTP headers, e.g. Authorization (secret)"
    )
    name: str | None = Field(
        default=None, description="name in the outbox and logs; default host + hash of the url"
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @property
    def key(self) -> str:
        """The webhook's stable name: the outbox keeps it, never the URL (it may hold a token)."""
        if self.name:
            return self.name
        url = self.url.get_secret_value()
        host = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
        return f"{host}-{hashlib.sha256(url.encode()).hexdigest()[:8]}"

    def wants(self, policy: str) -> bool:
        return not self.policies or policy in self.policies


class NotificationSettings(BaseModel):
    """Webhooks told when a violation appears or clears, and how their delivery is retried."""

    model_config = ConfigDict(extra="forbid")

    webhooks: list[WebhookSettings] = Field(
        default_factory=list, description="receivers: {url, format?, policies?, headers?, name?}"
    )
    max_attempts: int = Field(default=10, ge=1, description="delivery attempts before giving up")
    backoff_seconds: float = Field(
        default=1.0, gt=0, description="wait before the first retry; doubles for each next"
    )
    max_backoff_seconds: float = Field(default=300.0, gt=0, description="longest wait between tries")
    timeout_seconds: float = Field(default=10.0, gt=0, description="timeout of each delivery")

    @model_validator(mode="after")
    def _unique_names(self) -> NotificationSettings:
        keys = [w.key for w in self.webhooks]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise _rule(
                f"notifications.webhooks: two webhooks are named {repeated[0]!r}; give each "
                "its own url or name"
            )
        return self


_LIMITS = Limits()


class LimitSettings(BaseModel):
    """Bounds on input (rules, request bodies, data and library files): past them an input
    is refused with a located error (400 from the API), never processed."""

    model_config = ConfigDict(extra="forbid")

    max_int_digits: int = Field(
        default=_LIMITS.max_int_digits, ge=20, le=4300,
        description="digits of an integer literal (Python's own ceiling is 4300)",
    )
    max_depth: int = Field(
        default=_LIMITS.max_depth, ge=4, le=500, description="nesting of JSON and YAML input"
    )
    max_yaml_alias_nodes: int = Field(
        default=_LIMITS.max_yaml_alias_nodes, ge=0,
        description="nodes YAML aliases may add in one file",
    )
    max_rule_literals: int = Field(
        default=_LIMITS.max_rule_literals, ge=1, description="body literals of one rule"
    )
    max_text_chars: int = Field(
        default=_LIMITS.max_text_chars, ge=1000,
        description="characters of a text a policy computes (concat, x * n)",
    )

    def limits(self) -> Limits:
        return Limits(**self.model_dump())


class TLSSettings(BaseModel):
    """HTTPS for ``charter serve``, and client certificates (what oslo.policy's
    ``remote_ssl_client_crt_file`` presents)."""

    model_config = ConfigDict(extra="forbid")

    cert_file: Path | None = Field(
        default=None, description="PEM server certificate (chain); set it to serve HTTPS"
    )
    key_file: Path | None = Field(
        default=None, description="PEM private key of cert_file (if not in cert_file)"
    )
    ca_file: Path | None = Field(
        default=None, description="PEM CA bundle that client certificates are checked against"
    )
    client_cert: Literal["none", "optional", "required"] = Field(
        default="none", description="whether clients must present a certificate of ca_file"
    )

    @model_validator(mode="after")
    def _complete(self) -> TLSSettings:
        if self.cert_file is None and (self.key_file or self.ca_file or
                                       self.client_cert != "none"):
            raise _rule("tls.key_file, tls.ca_file and tls.client_cert need tls.cert_file "
                        "(the server's certificate); set it or remove them")
        if self.client_cert != "none" and self.ca_file is None:
            raise _rule(f"tls.client_cert is {self.client_cert!r} but tls.ca_file is not set; "
                        "set it to the CA bundle that signs the clients' certificates")
        return self


class DecisionSettings(BaseModel):
    """Decisions other services ask for (docs/decisions.md)."""

    model_config = ConfigDict(extra="forbid")

    fail: Literal["closed", "open"] = Field(
        default="closed",
        description="answer when a decision policy cannot be evaluated: closed refuses, "
        "open allows",
    )
    anonymous: bool = Field(
        default=False,
        description="decision endpoints answer without a token (oslo.policy's http: check "
        "sends none); needs a loopback host or tls.client_cert = required",
    )


_FILE_DATA: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "charter_config_file_data", default=None
)


class _FileSource(PydanticBaseSettingsSource):
    """The parsed config file, ranked below the environment."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return _FILE_DATA.get() or {}


class Settings(BaseSettings):
    """All of Charter's settings. Build with ``load_settings()``, which reads the file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid"
    )

    host: str = Field(default="127.0.0.1", description="address the API listens on")
    port: int = Field(default=1789, ge=0, le=65535, description="TCP port (Congress's)")
    data_dir: Path = Field(
        default_factory=default_data_dir, description="state directory, created on use"
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///{data_dir}/charter.db"
    )
    secret_key_file: Path | None = Field(
        default=None, description="Fernet key file; default {data_dir}/secret.key"
    )
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0, description="request body limit")
    log_level: str = Field(default="info", description="critical/error/warning/info/debug/trace")
    library_dir: Path | None = Field(
        default=None, description="directory of extra library policy YAML files"
    )
    auth: AuthSettings = Field(default_factory=AuthSettings)
    enforcement: EnforcementSettings = Field(default_factory=EnforcementSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    tls: TLSSettings = Field(default_factory=TLSSettings)
    decisions: DecisionSettings = Field(default_factory=DecisionSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _FileSource(settings_cls)

    @field_validator("data_dir", "secret_key_file", "library_dir")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.lower() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}; got {value!r}")
        return value.lower()

    @model_validator(mode="after")
    def _noauth_only_on_loopback(self) -> Settings:
        if self.auth.strategy == "noauth" and not is_loopback(self.host):
            raise _rule(
                f"host is {self.host!r} but noauth is only allowed when bound to 127.0.0.1/::1; "
                "set auth.strategy to token or keystone"
            )
        return self

    @model_validator(mode="after")
    def _anonymous_decisions_guarded(self) -> Settings:
        if (self.decisions.anonymous and not is_loopback(self.host)
                and self.tls.client_cert != "required"):
            raise _rule(
                f"decisions.anonymous answers decisions without a token, but host is "
                f"{self.host!r} and tls.client_cert is {self.tls.client_cert!r}: set "
                "tls.client_cert = required (with tls.ca_file), or bind to 127.0.0.1"
            )
        return self

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.data_dir

    @property
    def database_url_resolved(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.ensure_data_dir() / 'charter.db'}"

    @property
    def secret_key_path(self) -> Path:
        return self.secret_key_file or self.data_dir / "secret.key"

    def secret_key(self) -> bytes:
        """The Fernet key: ``$CHARTER_SECRET_KEY``, else the key file, created (0600) if absent."""
        from_env = os.environ.get(SECRET_KEY_ENV, "").strip()
        if from_env:
            return _check_fernet_key(from_env.encode(), f"environment variable {SECRET_KEY_ENV}")
        path = self.secret_key_path
        try:
            key = path.read_bytes().strip()
        except FileNotFoundError:
            return _create_key_file(path, self)
        except OSError as exc:
            raise ConfigError(
                f"secret key file {path} cannot be read ({exc.strerror}); fix its permissions "
                f"or set secret_key_file / {SECRET_KEY_ENV}"
            ) from None
        if path.stat().st_mode & 0o077:
            log.warning("secret key file %s is readable by others; chmod 600 it", path)
        return _check_fernet_key(key, f"secret key file {path}")

    @classmethod
    def describe(cls) -> list[FieldDoc]:
        """Every leaf setting with its dotted key and environment variable (for docs)."""
        return list(_walk(cls, ()))


@dataclass(frozen=True)
class FieldDoc:
    key: str
    env: str
    default: Any
    description: str | None


def _walk(model: type[BaseModel], prefix: tuple[str, ...]):
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _walk(ann, path)
            continue
        default = info.default_factory() if info.default_factory else info.default  # type: ignore[call-arg]
        yield FieldDoc(".".join(path), ENV_PREFIX + "__".join(path).upper(), default,
                       info.description)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_fernet_key(key: bytes, source: str) -> bytes:
    from cryptography.fernet import Fernet

    try:
        Fernet(key)
    except ValueError:
        raise ConfigError(
            f"{source} does not hold a Fernet key (32 url-safe base64-encoded bytes). Restore "
            "the original key (a new one cannot decrypt secrets stored with the old), or, on a "
            "new installation, make one with: python -c 'from cryptography.fernet import "
            "Fernet; print(Fernet.generate_key().decode())'"
        ) from None
    return key


def _create_key_file(path: Path, settings: Settings) -> bytes:
    from cryptography.fernet import Fernet

    if path.parent == settings.data_dir:
        settings.ensure_data_dir()
    else:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return _check_fernet_key(path.read_bytes().strip(), f"secret key file {path}")
    except OSError as exc:
        raise ConfigError(
            f"cannot create secret key file {path} ({exc.strerror}); make its directory "
            f"writable or set secret_key_file / {SECRET_KEY_ENV}"
        ) from None
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(key + b"\n")
    log.info("created secret key file %s", path)
    return key


# ----------------------------------------------------------------------------- loading


def load_settings(path: Path | None = None) -> Settings:
    """Settings from ``path`` (else ``$CHARTER_CONFIG``, else no file) and the environment."""
    from_env = False
    if path is None and os.environ.get(CONFIG_ENV):
        path, from_env = Path(os.environ[CONFIG_ENV]), True
    data: dict[str, Any] = {}
    if path is not None:
        path = path.expanduser().absolute()
        data = _read_file(path, from_env)
        _resolve_paths(data, path.parent)
    token = _FILE_DATA.set(data)
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path, data)) from None
    finally:
        _FILE_DATA.reset(token)


def _read_file(path: Path, from_env: bool) -> dict[str, Any]:
    origin = f" (from {CONFIG_ENV})" if from_env else ""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path}{origin} does not exist; create it (etc/charter.toml is a "
            f"commented sample) or {'unset ' + CONFIG_ENV if from_env else 'pass another path'}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"config file {path}{origin} cannot be read ({reason})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"config file {path}{origin} is not valid TOML: {exc}; fix the syntax there"
        ) from None


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Relative paths in a file are relative to the file, not to the working directory."""
    for keys in PATH_KEYS:
        table = data
        for key in keys[:-1]:
            table = table.get(key) if isinstance(table.get(key), dict) else {}
        value = table.get(keys[-1])
        if isinstance(value, str) and value and not value.startswith(("~", "/")):
            table[keys[-1]] = str(base / value)


def _message(err: Any) -> str:
    ctx = err.get("ctx") or {}
    if err["type"] == "value_error" and "error" in ctx:
        return str(ctx["error"])
    return err["msg"]


def _describe(exc: ValidationError, path: Path | None, data: dict[str, Any]) -> str:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(str(p) for p in err["loc"])
        key = ".".join(loc)
        where = _source(loc, path, data)
        if err["type"] == "extra_forbidden":
            known = ", ".join(_known_keys(loc[:-1]))
            section = f" in [{'.'.join(loc[:-1])}]" if len(loc) > 1 else ""
            problems.append(
                f"{where}: unknown key '{key}'; remove it or fix the spelling "
                f"(known keys{section}: {known})"
            )
        elif err["type"] == "config_rule":
            problems.append(f"{where}: {err['msg']}" if where else err["msg"])
        elif err["type"] == "value_error":
            problems.append(f"{where}: {key}: {_message(err)}")
        else:
            problems.append(
                f"{where}: {key} = {err.get('input')!r} is invalid: {err['msg']} (see {DOCS})"
            )
    head = f"invalid configuration (config file: {path if path else 'none'}):"
    return head + "".join(f"\n  - {p}" for p in problems)


def _source(loc: tuple[str, ...], path: Path | None, data: dict[str, Any]) -> str:
    """Which env var or file set the value at ``loc`` (the env wins, so it is checked first)."""
    env = {k.upper() for k in os.environ}
    for n in range(len(loc), 0, -1):
        name = ENV_PREFIX + "__".join(loc[:n]).upper()
        if name in env:
            return f"environment variable {name}"
    if path is not None and loc and loc[0] in data:
        return f"config file {path}"
    return "settings" if loc else ""


def _known_keys(loc: tuple[str, ...]) -> list[str]:
    model: type[BaseModel] = Settings
    for part in loc:
        ann = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)
