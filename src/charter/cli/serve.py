"""``charter serve``: the policy service with Congress's REST API v1.

With no config it listens on 127.0.0.1:1789 (Congress's port) without authentication and
keeps its state in SQLite under ``~/.local/share/charter``; see docs/configuration.md.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import ssl
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from charter.api.serving import SWITCH_INTERVAL_S
from charter.lang.limits import configure as configure_limits
from charter.service.config import ConfigError, load_settings


def _stopped(signum: int, _frame: object) -> None:
    raise SystemExit(0)


M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # glibc's mallopt parameters (malloc.h)


def tune_malloc() -> None:
    """Keep glibc from holding on to memory the server freed.

    glibc gives busy threads arenas of their own (up to 8 per core) and keeps what is freed
    in each for reuse: under the load benchmark (16 clients) RSS kept rising by about 1 MB a
    minute of freed-but-kept memory at 3,000 pushed rows, and 300 MB sat freed-but-kept
    under 100k-row pushes, while Python's own objects stayed flat. Two arenas, and blocks of
    128 KiB or more given back to the system when freed, keep RSS flat (bench/README.md).
    Nothing is changed where the C library is not glibc, or where the operator chose with
    ``MALLOC_ARENA_MAX``.
    """
    if os.environ.get("MALLOC_ARENA_MAX") or os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_ARENA_MAX, 2)
    mallopt(M_MMAP_THRESHOLD, 128 * 1024)


def tls_options(settings) -> dict:
    """uvicorn's ssl_* arguments from the ``tls`` settings; empty for plain HTTP."""
    tls = settings.tls
    if tls.cert_file is None:
        return {}
    for key in ("cert_file", "key_file", "ca_file"):
        path = getattr(tls, key)
        if path is not None and not path.is_file():
            typer.echo(f"charter serve: tls.{key} {path} is not a readable file; fix the "
                       "path (relative paths are relative to the config file)", err=True)
            raise typer.Exit(2)
    reqs = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
            "required": ssl.CERT_REQUIRED}[tls.client_cert]
    return {"ssl_certfile": str(tls.cert_file),
            "ssl_keyfile": str(tls.key_file) if tls.key_file else None,
            "ssl_ca_certs": str(tls.ca_file) if tls.ca_file else None,
            "ssl_cert_reqs": reqs}


def serve_command(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML config file (else $CHARTER_CONFIG).",
                     dir_okay=False),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (config: host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (config: port).")] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="SQLAlchemy URL of the store (config: "
                     "database_url); default SQLite in the data directory."),
    ] = None,
) -> None:
    r"""Run the policy service (Congress's REST API v1, OpenAPI at /docs).

    Every setting also comes from the config file (etc/charter.toml is a commented sample)
    or from CHARTER_\<KEY> environment variables (CHARTER_AUTH__STRATEGY=token, ...); the
    options here win over both. Settings: docs/configuration.md.
    """
    import uvicorn

    from charter.api.app import create_app
    from charter.service.errors import ServiceError
    from charter.service.service import Service
    from charter.store import Store
    from charter.store.connect import parse_url
    from charter.store.errors import StoreError
    from charter.store.identity import default_file

    try:
        overrides = {k: v for k, v in (("host", host), ("port", port),
                                        ("database_url", database_url)) if v is not None}
        settings = load_settings(config)
        if overrides:
            settings = type(settings).model_validate(settings.model_dump() | overrides)
    except ValidationError as exc:
        problems = "; ".join(
            (f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "")
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        typer.echo(f"charter serve: {problems}", err=True)
        raise typer.Exit(2) from None
    except ConfigError as exc:
        typer.echo(f"charter serve: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_limits(settings.limits.limits())
    tune_malloc()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        url = settings.database_url_resolved
        # SQLite keeps its identity file beside the database; PostgreSQL in the data directory.
        identity_file = default_file(parse_url(url), settings.ensure_data_dir())
        store = Store(url, secret_key=settings.secret_key(), identity_file=identity_file)
    except (StoreError, ConfigError) as exc:
        typer.echo(f"charter serve: {exc}", err=True)
        raise typer.Exit(1) from None
    if threading.current_thread() is threading.main_thread():
        # uvicorn stops gracefully on SIGTERM, then raises it again: let that be an exception,
        # so the `finally` below still closes the store (which checkpoints its -wal file).
        signal.signal(signal.SIGTERM, _stopped)
    service = Service(store, library_dir=settings.library_dir,
                      enforcement=settings.enforcement, notifications=settings.notifications)
    app = None
    try:
        try:
            service.start()
        except ServiceError as exc:
            typer.echo(f"charter serve: could not restore the saved state: {exc.message}",
                       err=True)
            raise typer.Exit(1) from None
        app = create_app(service, settings)
        tls = tls_options(settings)
        scheme = "https" if tls else "http"
        typer.echo(f"charter: serving on {scheme}://{settings.host}:{settings.port}", err=True)
        sys.setswitchinterval(SWITCH_INTERVAL_S)  # api/serving.py: the event loop's turn
        uvicorn.run(app, host=settings.host, port=settings.port,
                    log_level=settings.log_level.lower(), timeout_graceful_shutdown=5, **tls)
    finally:
        if app is not None:
            app.state.authenticator.close()
        service.close()
