"""Settings: defaults, file, environment, errors an operator can act on, docs in sync."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tomllib
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from charter.service.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "configuration.md"
SAMPLE = ROOT / "etc" / "charter.toml"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CHARTER_* from the developer's shell; XDG data under tmp_path."""
    for name in list(os.environ):
        if name.upper().startswith("CHARTER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path):
    s = load_settings()
    assert (s.host, s.port, s.log_level) == ("127.0.0.1", 1789, "info")
    assert s.data_dir == tmp_path / "xdg" / "charter"
    assert not s.data_dir.exists()  # created on use only
    assert s.database_url_resolved == f"sqlite:///{tmp_path}/xdg/charter/charter.db"
    assert s.data_dir.is_dir()
    assert s.max_body_bytes == 10 * 1024 * 1024
    assert s.library_dir is None and s.secret_key_file is None
    assert s.auth.strategy == "noauth"
    ks = s.auth.keystone
    assert ks.role_map == {"admin": "admin", "member": "editor", "reader": "viewer"}
    assert (ks.cache_seconds, ks.timeout_seconds, ks.user_domain_name) == (60, 5.0, "Default")


def test_data_dir_without_xdg(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("XDG_DATA_HOME")
    assert load_settings().data_dir == Path("~/.local/share/charter").expanduser()


def test_file(tmp_path: Path):
    cfg = write(tmp_path / "c.toml", """
port = 9000
log_level = "DEBUG"
database_url = "postgresql+psycopg://u@db/charter"
data_dir = "state"
[auth.keystone]
auth_url = "http://keystone:5000/v3"
[auth.keystone.role_map]
Operator = "editor"
""")
    s = load_settings(cfg)
    assert (s.port, s.log_level) == (9000, "debug")
    assert s.database_url_resolved == "postgresql+psycopg://u@db/charter"
    assert s.data_dir == tmp_path / "state"  # relative to the file
    assert s.auth.keystone.auth_url == "http://keystone:5000/v3"
    assert s.auth.keystone.role_map == {"operator": "editor"}  # replaces the default map


def test_config_path_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("CHARTER_CONFIG", str(write(tmp_path / "c.toml", "port = 1234\n")))
    assert load_settings().port == 1234


def test_env_beats_file_beats_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    cfg = write(tmp_path / "c.toml", 'port = 9000\nlog_level = "warning"\n')
    monkeypatch.setenv("CHARTER_PORT", "9100")
    s = load_settings(cfg)
    assert (s.port, s.log_level, s.host) == (9100, "warning", "127.0.0.1")


def test_nested_env_merges_with_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    cfg = write(tmp_path / "c.toml", """
host = "0.0.0.0"
[auth]
strategy = "keystone"
[auth.keystone]
auth_url = "http://keystone:5000"
username = "charter"
project_name = "service"
""")
    monkeypatch.setenv("CHARTER_AUTH__KEYSTONE__PASSWORD", "s3cret")
    monkeypatch.setenv("CHARTER_AUTH__KEYSTONE__CACHE_SECONDS", "5")
    monkeypatch.setenv("CHARTER_AUTH__KEYSTONE__ROLE_MAP", '{"admin": "admin"}')
    ks = load_settings(cfg).auth.keystone
    assert ks.password is not None and ks.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(ks)
    assert (ks.username, ks.cache_seconds, ks.role_map) == ("charter", 5, {"admin": "admin"})


def test_env_strategy_overrides_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    tokens = write(tmp_path / "tokens.toml", '[[tokens]]\nname="ci"\ntoken="t0ken"\nrole="admin"\n')
    monkeypatch.setenv("CHARTER_AUTH__STRATEGY", "token")
    monkeypatch.setenv("CHARTER_AUTH__TOKENS_FILE", str(tokens))
    monkeypatch.setenv("CHARTER_HOST", "0.0.0.0")
    s = load_settings()
    assert (s.auth.strategy, s.host) == ("token", "0.0.0.0")
    (tok,) = s.auth.load_tokens()
    assert (tok.name, tok.role, tok.sha256) == ("ci", "admin", hashlib.sha256(b"t0ken").digest())


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"nope\.toml does not exist.*etc/charter.toml"):
        load_settings(tmp_path / "nope.toml")


def test_missing_file_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("CHARTER_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError, match=r"gone\.toml \(from CHARTER_CONFIG\).*unset CHARTER_"):
        load_settings()


def test_malformed_file(tmp_path: Path):
    cfg = write(tmp_path / "bad.toml", "port = \n")
    with pytest.raises(ConfigError, match=r"bad\.toml is not valid TOML.*line 1"):
        load_settings(cfg)


def test_unknown_key(tmp_path: Path):
    cfg = write(tmp_path / "c.toml", "prot = 1\n[auth]\nstrategy = 'noauth'\ntoken_file = 'x'\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    msg = str(err.value)
    assert f"config file {cfg}: unknown key 'prot'" in msg
    assert "unknown key 'auth.token_file'" in msg and "known keys in [auth]: strategy, tokens_file" in msg
    assert "Traceback" not in msg and "pydantic" not in msg


def test_unknown_env_key(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CHARTER_AUTH__KEYSTONE__URL", "http://x")
    with pytest.raises(ConfigError, match="environment variable CHARTER_AUTH__KEYSTONE__URL: "
                                          "unknown key 'auth.keystone.url'"):
        load_settings()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('port = "lots"\n', r"port = 'lots' is invalid: Input should be a valid integer"),
        ("port = 70000\n", r"port = 70000 is invalid"),
        ('log_level = "loud"\n', r"log_level: must be one of critical, error"),
        ("max_body_bytes = 0\n", r"max_body_bytes = 0 is invalid: .*greater than 0"),
        ('[auth]\nstrategy = "ldap"\n', r"auth.strategy = 'ldap' is invalid: .*'noauth'"),
        ('[auth.keystone]\nauth_url = "keystone:5000"\n', r"must be an http:// or https:// URL"),
        ('[auth.keystone.role_map]\nadmin = "root"\n', r"auth.keystone.role_map.admin = 'root'"),
    ],
)
def test_bad_values(tmp_path: Path, text: str, expected: str):
    cfg = write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError, match=expected) as err:
        load_settings(cfg)
    assert f"config file {cfg}" in str(err.value)


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CHARTER_PORT", "http")
    with pytest.raises(ConfigError, match="environment variable CHARTER_PORT: port = 'http'"):
        load_settings()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "charter.example.org"])
def test_noauth_refused_off_loopback(tmp_path: Path, host: str):
    cfg = write(tmp_path / "c.toml", f'host = "{host}"\n')
    with pytest.raises(ConfigError, match="noauth is only allowed when bound to 127.0.0.1/::1; "
                                          "set auth.strategy to token or keystone"):
        load_settings(cfg)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_noauth_on_loopback(monkeypatch: pytest.MonkeyPatch, host: str):
    monkeypatch.setenv("CHARTER_HOST", host)
    assert load_settings().host == host


def test_token_needs_tokens_file(tmp_path: Path):
    cfg = write(tmp_path / "c.toml", '[auth]\nstrategy = "token"\n')
    with pytest.raises(ConfigError, match="auth.tokens_file is not set"):
        load_settings(cfg)
    write(cfg, '[auth]\nstrategy = "token"\ntokens_file = "absent.toml"\n')
    with pytest.raises(ConfigError, match=rf"{tmp_path}/absent.toml cannot be read"):
        load_settings(cfg)


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        ("tokens = []\n", "tokens: List should have at least 1 item"),
        ('[[tokens]]\nname = "a"\nrole = "admin"\n', "exactly one of token or token_sha256"),
        ('[[tokens]]\nname = "a"\ntoken = "x"\nrole = "root"\n', r"tokens.0.role: Input should be"),
        ('[[tokens]]\nname = "a"\ntoken_sha256 = "abc"\nrole = "admin"\n', "token_sha256"),
        ('[[tokens]]\nname = "a"\ntoken = "x"\nrole = "admin"\n' * 2, "names must be unique"),
        ("[[tokens]\n", "is not valid TOML"),
    ],
)
def test_bad_tokens_file(tmp_path: Path, tokens: str, expected: str):
    write(tmp_path / "tokens.toml", tokens)
    cfg = write(tmp_path / "c.toml", '[auth]\nstrategy = "token"\ntokens_file = "tokens.toml"\n')
    with pytest.raises(ConfigError, match=expected) as err:
        load_settings(cfg)
    assert "tokens.toml" in str(err.value)


def test_yaml_tokens_file(tmp_path: Path):
    digest = hashlib.sha256(b"viewer-token").hexdigest()
    write(tmp_path / "tokens.yaml", f"""
tokens:
  - {{name: ops, token: ops-token, role: editor}}
  - {{name: dash, token_sha256: {digest}, role: viewer}}
""")
    cfg = write(tmp_path / "c.toml", '[auth]\nstrategy = "token"\ntokens_file = "tokens.yaml"\n')
    tokens = load_settings(cfg).auth.load_tokens()
    assert [(t.name, t.role) for t in tokens] == [("ops", "editor"), ("dash", "viewer")]
    assert tokens[1].sha256 == bytes.fromhex(digest)


def test_keystone_needs_url_and_credentials(tmp_path: Path):
    cfg = write(tmp_path / "c.toml", '[auth]\nstrategy = "keystone"\n')
    with pytest.raises(ConfigError, match="auth.keystone.auth_url, auth.keystone.username, "
                                          "auth.keystone.password, auth.keystone.project_name are"):
        load_settings(cfg)


def test_secret_key_created_0600(tmp_path: Path):
    s = load_settings()
    key = s.secret_key()
    path = tmp_path / "xdg" / "charter" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    Fernet(key)  # a usable key
    assert s.secret_key() == key  # read back, not regenerated


def test_secret_key_file_setting(tmp_path: Path):
    key = Fernet.generate_key()
    write(tmp_path / "k", key.decode() + "\n")
    cfg = write(tmp_path / "c.toml", 'secret_key_file = "k"\n')
    assert load_settings(cfg).secret_key() == key


def test_secret_key_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    key = Fernet.generate_key()
    monkeypatch.setenv("CHARTER_SECRET_KEY", key.decode())
    s = load_settings()
    assert s.secret_key() == key
    assert not s.secret_key_path.exists()


def test_bad_secret_key(tmp_path: Path):
    write(tmp_path / "k", "not-a-key\n")
    cfg = write(tmp_path / "c.toml", 'secret_key_file = "k"\n')
    with pytest.raises(ConfigError, match=rf"secret key file {tmp_path}/k does not hold a Fernet"):
        load_settings(cfg).secret_key()


# ----------------------------------------------------------------------------- docs in sync

KEYS = [f.key for f in Settings.describe()]


def _sample_keys() -> set[str]:
    """Keys set or shown commented out (``# key = ...``, one space) in the sample, by table."""
    found, table = set(), ""
    for line in SAMPLE.read_text().splitlines():
        if m := re.match(r"^#? ?\[([\w.]+)\]\s*$", line):
            table = m.group(1) + "."
            found.add(m.group(1))
        elif m := re.match(r"^#? ?(\w+)\s*=", line):
            found.add(table + m.group(1))
    return found


def test_every_field_documented():
    docs = DOCS.read_text()
    missing = [f.key for f in Settings.describe() if f"`{f.key}`" not in docs]
    missing += [f.env for f in Settings.describe() if f"`{f.env}`" not in docs]
    assert not missing, f"add to {DOCS.name}: {missing}"


def test_every_field_in_sample():
    missing = sorted(set(KEYS) - _sample_keys())
    assert not missing, f"add to etc/charter.toml: {missing}"
    tables = {"auth", "auth.keystone", "enforcement", "notifications", "limits", "tls",
              "decisions"}
    unknown = sorted(
        k for k in _sample_keys() - set(KEYS) - tables
        if not k.startswith("auth.keystone.role_map.")
    )
    assert not unknown, f"etc/charter.toml shows keys Settings does not have: {unknown}"


def test_sample_loads():
    s = load_settings(SAMPLE)
    assert s.auth.strategy == "noauth" and s.host == "127.0.0.1"
    assert tomllib.loads(SAMPLE.read_text())  # and is plain TOML


def test_sample_uncommented_values_are_valid(tmp_path: Path):
    """Each commented-out ``# key = value`` is itself a valid value for that key."""
    table, seen, lines = "", set(), []
    for line in SAMPLE.read_text().splitlines():
        if m := re.match(r"^#? ?\[([\w.]+)\]\s*$", line):
            table = m.group(1)
            lines.append(f"[{table}]")
        elif (m := re.match(r"^#? ?((\w+)\s*=.*)$", line)) and (table, m.group(2)) not in seen:
            seen.add((table, m.group(2)))  # the first shown value of each key
            lines.append(m.group(1))
    data = tomllib.loads("\n".join(lines))  # valid TOML once uncommented
    data.setdefault("auth", {})["strategy"] = "noauth"  # the sample shows several strategies
    data["host"] = "127.0.0.1"
    Settings.model_validate(data)
