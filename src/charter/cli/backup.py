"""``charter backup FILE`` and ``charter restore FILE``: a SQLite store to a file and back.

Both read the settings as ``charter serve`` does (``--config``, ``--database-url``, the
environment), so they find the same database, identity file and secret key. A backup may be
taken while the server runs; a restore needs it stopped. For PostgreSQL they say how to use
``pg_dump`` and ``pg_restore`` instead and exit 2. See docs/store.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError

from charter.service.config import SECRET_KEY_ENV, ConfigError, Settings, load_settings

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file (else $CHARTER_CONFIG).", dir_okay=False),
]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL of the store (config: database_url); default SQLite in the data "
        "directory.",
    ),
]

PG_BACKUP = (
    "the store is in PostgreSQL ({url}): back it up with pg_dump, e.g.\n"
    "  pg_dump --format=custom --file=charter.dump 'postgresql://USER@HOST:PORT/DATABASE'\n"
    "and keep the secret key ({key}) with the dump. See docs/store.md."
)
PG_RESTORE = (
    "the store is in PostgreSQL ({url}): with every Charter server stopped, restore a dump "
    "with pg_restore, e.g.\n"
    "  pg_restore --clean --if-exists --dbname='postgresql://USER@HOST:PORT/DATABASE' "
    "charter.dump\n"
    "then move each server's identity file ({identity}) away, since it records the database "
    "as it was before the restore, and start the servers with the secret key ({key}) kept "
    "with the dump. See docs/store.md."
)


def _settings(verb: str, config: Path | None, database_url: str | None) -> Settings:
    """The settings ``charter serve`` would use; exit 2 with the problem if they are wrong."""
    try:
        settings = load_settings(config)
        if database_url is not None:
            settings = type(settings).model_validate(
                settings.model_dump() | {"database_url": database_url}
            )
    except ValidationError as exc:
        problems = "; ".join(
            (f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "")
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        _fail(verb, problems, 2)
    except ConfigError as exc:
        _fail(verb, str(exc), 2)
    return settings


def _fail(verb: str, message: str, code: int) -> NoReturn:
    typer.echo(f"charter {verb}: {message}", err=True)
    raise typer.Exit(code)


def _key_source(settings: Settings) -> str:
    if os.environ.get(SECRET_KEY_ENV, "").strip():
        return f"the environment variable {SECRET_KEY_ENV}"
    return f"the key file {settings.secret_key_path}"


def _sqlite_url(verb: str, settings: Settings, guidance: str):  # noqa: ANN202 - a URL
    """The store's URL, checked to be a SQLite file; else the guidance, and exit 2."""
    from charter.store import connect, identity
    from charter.store.errors import StoreError

    try:
        url = connect.parse_url(settings.database_url_resolved)
    except StoreError as exc:
        _fail(verb, str(exc), 2)
    if url.get_backend_name() == "postgresql":
        path = identity.default_file(url, settings.data_dir)
        _fail(
            verb,
            guidance.format(url=connect.describe(url), key=_key_source(settings), identity=path),
            2,
        )
    if identity.sqlite_path(url) is None:
        _fail(verb, f"the store {connect.describe(url)} is in memory: there is nothing to keep", 2)
    return url


def backup_command(
    file: Annotated[
        Path,
        typer.Argument(help="The backup file to write (replaced if it exists).", dir_okay=False),
    ],
    config: ConfigOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Write a consistent copy of the store to FILE, while the server runs or not.

    SQLite only (for PostgreSQL it prints how to use pg_dump). The copy holds the datasource
    secrets encrypted with the secret key: keep the key file with the backup.
    """
    from charter.store import backup
    from charter.store.errors import StoreError

    settings = _settings("backup", config, database_url)
    url = _sqlite_url("backup", settings, PG_BACKUP)
    try:
        done = backup.backup(url, file)
    except StoreError as exc:
        _fail("backup", str(exc), 1)
    except OSError as exc:
        _fail("backup", f"cannot write {file}: {exc.strerror or exc}", 1)
    typer.echo(f"charter backup: wrote {done.path} ({_size(done.size)}): {done.summary()}")
    typer.echo(
        f"charter backup: keep {_key_source(settings)} with it: the backup's datasource "
        "secrets are encrypted with that key, and a restored store needs it to start"
    )


def restore_command(
    file: Annotated[
        Path,
        typer.Argument(help="A backup made by charter backup.", exists=True, dir_okay=False),
    ],
    config: ConfigOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Put the backup FILE in place of the store; the server must be stopped.

    The current database is kept aside (PATH.before-restore-TIMESTAMP) and the identity file
    rewritten, so the next `charter serve` starts on the backup. SQLite only (for PostgreSQL
    it prints how to use pg_restore).
    """
    from charter.store import backup
    from charter.store.errors import StoreError

    settings = _settings("restore", config, database_url)
    url = _sqlite_url("restore", settings, PG_RESTORE)
    if not os.environ.get(SECRET_KEY_ENV, "").strip() and not settings.secret_key_path.exists():
        _fail(
            "restore",
            f"there is no secret key at {settings.secret_key_path} (nor in {SECRET_KEY_ENV}): "
            "put the key file kept with the backup there, then run charter restore again",
            1,
        )
    try:
        done = backup.restore(url, file, secret_key=settings.secret_key())
    except (StoreError, ConfigError) as exc:
        _fail("restore", str(exc), 1)
    except OSError as exc:
        _fail("restore", f"cannot put the backup in place: {exc}", 1)
    typer.echo(
        f"charter restore: restored {done.contents.path} into {done.database}: "
        f"{done.contents.summary()}"
    )
    if done.moved_aside:
        typer.echo(
            "charter restore: the previous database was moved aside to "
            + " and ".join(str(p) for p in done.moved_aside)
            + "; delete it once the restored store is checked"
        )
    before = f" (it recorded {done.previous.short()})" if done.previous else ""
    typer.echo(
        f"charter restore: the identity file {done.identity_file} now records "
        f"{done.identity.short()}{before}; start the server with `charter serve`"
    )


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"
