"""``charter pack``: the installed compliance packs, offline; enabling them and reading their
posture on a running Charter, over its API (like ``charter audit`` and ``charter admit``).

``list`` and ``show`` read the installed packs (Charter's own and those of the
``charter.packs`` entry points), or a pack folder given as a path; ``test`` runs packs'
cases; ``enable``, ``disable`` and ``show --posture`` call ``/v1/packs``.

Exit status: 0 ok; 1 a refusal or failure (the server refused, a test failed, a pack does
not load); 2 a usage error (a bad option, an unknown pack, a bad --set or --config).
"""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml

from charter.cli.output import error_text, printable
from charter.cli.pack_test import PackCoverage, PackRunner, control_gaps, pack_cases
from charter.cli.policytest import TestFormat, usage_error
from charter.packs.describe import controls_markdown, pack_json
from charter.packs.load import Pack, load_pack
from charter.packs.registry import Installed, installed_packs
from charter.packs.spec import PackError, YamlPlaces
from charter.policytest.cases import TestFileError
from charter.policytest.report import json_report, junit_report, text_report
from charter.policytest.runner import PASS

pack_app = typer.Typer(
    name="pack",
    help="Compliance packs: list, show, test, and enable or disable them on a server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

URL = typer.Option(
    "--url",
    envvar="CHARTER_URL",
    help="The Charter API, e.g. http://127.0.0.1:1789 (env CHARTER_URL).",
)
TOKEN = typer.Option(
    "--token",
    envvar="CHARTER_TOKEN",
    show_default=False,
    help="API token, sent as X-Auth-Token (env CHARTER_TOKEN).",
)
DEFAULT_URL = "http://127.0.0.1:1789"


class ListFormat(StrEnum):
    table = "table"
    json = "json"


class ShowFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    csv = "csv"




def _installed() -> Installed:
    return installed_packs()


def _resolve(ref: str, installed: Installed | None = None) -> Pack:
    """An installed pack by id, or the pack in a folder (a path with a ``/`` or that exists)."""
    path = Path(ref)
    if "/" in ref or path.is_dir():
        try:
            return load_pack(path)
        except PackError as exc:
            typer.echo(printable(error_text(exc, _sources(exc))), err=True)
            raise typer.Exit(1) from None
    installed = installed or _installed()
    found = installed.get(ref)
    if found is not None:
        return found
    for broken in installed.broken:
        if broken.name == ref:
            typer.echo(
                printable(f"pack {ref} ({broken.origin}) does not load:\n{broken.error}"), err=True
            )
            raise typer.Exit(1)
    known = ", ".join(sorted(installed.packs)) or "none"
    raise usage_error(
        f"error: no installed pack {ref!r} (installed: {known}); give an id or a pack folder"
    )


def _sources(exc: PackError) -> dict[str, str]:
    out = {}
    for d in exc.diagnostics:
        if d.span is not None and d.span.file and d.span.file not in out:
            try:
                out[d.span.file] = Path(d.span.file).read_text("utf-8")
            except (OSError, UnicodeDecodeError):
                continue
    return out


# ---------------------------------------------------------------- list and show


@pack_app.command("list")
def list_command(
    output_format: Annotated[
        ListFormat, typer.Option("--format", "-f", help="table or json.")
    ] = ListFormat.table,
) -> None:
    """List the installed packs: Charter's own and those installed distributions provide.

    A pack that is installed but does not load is listed on stderr with its errors, and
    the exit status is 1.
    """
    installed = _installed()
    packs = sorted(installed.packs.values(), key=lambda p: p.id)
    if output_format is ListFormat.json:
        out = {
            "packs": [pack_json(p, detail=False) for p in packs],
            "unavailable": [
                {"name": b.name, "origin": b.origin, "error": b.error} for b in installed.broken
            ],
        }
        typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        rows = [("ID", "VERSION", "CONTROLS", "TITLE", "FROM")]
        rows += [
            (p.id, p.spec.version, str(len(p.controls)), p.spec.title, p.origin) for p in packs
        ]
        typer.echo(printable(_columns(rows)))
    for broken in installed.broken:
        typer.echo(
            printable(f"pack {broken.name} ({broken.origin}) does not load:\n{broken.error}"),
            err=True,
        )
    if installed.broken:
        raise typer.Exit(1)


def _columns(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _text(pack: Pack) -> str:
    spec = pack.spec
    lines = [
        f"{spec.id} {spec.version}: {spec.title}",
        f"from: {pack.origin}",
        "",
        " ".join(spec.description.split()),
        "",
        "datasources:",
    ]
    for name, ds in spec.datasources.items():
        driver = f" (driver {ds.driver})" if ds.driver and ds.driver != name else ""
        lines.append(f"  {name}{driver}: {', '.join(ds.tables)}")
    if spec.parameters:
        lines += ["", "parameters (charter pack enable --set NAME=VALUE,...):"]
        for name, p in spec.parameters.items():
            columns = ", ".join(f"{c.name} {c.type}" for c in p.columns)
            lines.append(f"  {name}({columns}): {' '.join(p.description.split())}")
            lines.append(f"    default: {json.dumps(p.default, ensure_ascii=False)}")
    lines += ["", "controls:"]
    for c in spec.controls:
        lines.append(f"  {c.id} [{c.severity}] {c.title}")
        lines.append(f"    table: {c.table}({', '.join(c.column_names)}); policy: {c.policy}")
        lines.append(f"    why: {' '.join(c.rationale.split())}")
        for i, step in enumerate(c.remediation, 1):
            lines.append(f"    fix {i}: {' '.join(step.split())}")
        for ref in c.references:
            where = f", {ref.section}" if ref.section else ""
            lines.append(f"    see: {ref.title}{where}" + (f" <{ref.url}>" if ref.url else ""))
    return "\n".join(lines)


@pack_app.command("show")
def show_command(
    pack: Annotated[
        str, typer.Argument(help="An installed pack's id, or a pack folder.", show_default=False)
    ],
    output_format: Annotated[
        ShowFormat,
        typer.Option(
            "--format",
            "-f",
            help="text, json, markdown (the controls table), or csv (with --posture).",
        ),
    ] = ShowFormat.text,
    posture: Annotated[
        bool,
        typer.Option("--posture", help="Print the pack's posture on the server at --url instead."),
    ] = False,
    rows: Annotated[
        bool, typer.Option("--rows", help="With --posture: every violation, not only the counts.")
    ] = False,
    url: Annotated[str, URL] = DEFAULT_URL,
    token: Annotated[str | None, TOKEN] = None,
) -> None:
    """Show a pack: what it reads, its parameters, and each control with why it matters and
    what to do; or, with --posture, each control's status on a running Charter."""
    if posture:
        _show_posture(pack, output_format, rows, url, token)
        return
    if output_format is ShowFormat.csv:
        raise usage_error("error: --format csv goes with --posture")
    found = _resolve(pack)
    if output_format is ShowFormat.json:
        typer.echo(json.dumps(pack_json(found), indent=2, ensure_ascii=False))
    elif output_format is ShowFormat.markdown:
        typer.echo(controls_markdown([found]))
    else:
        typer.echo(printable(_text(found)))


# ---------------------------------------------------------------- the server's API


def api_client(url: str, token: str | None, timeout: float = 30.0) -> httpx.Client:
    """The HTTP client the commands use (tests give one over an in-process app)."""
    headers = {"X-Auth-Token": token} if token else {}
    return httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)


def _call(url: str, token: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        with api_client(url, token) as client:
            response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        typer.echo(f"error: cannot reach {url}: {exc}", err=True)
        raise typer.Exit(1) from None
    if response.status_code >= 300:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text.strip()[:500] or response.reason_phrase
        typer.echo(printable(f"error: {message} (HTTP {response.status_code})"), err=True)
        raise typer.Exit(1)
    return response


def _when(iso: str | None) -> str:
    """An API timestamp as people read it: ``2025-06-02 09:14:03Z`` (UTC)."""
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _show_posture(
    pack: str, output_format: ShowFormat, rows: bool, url: str, token: str | None
) -> None:
    params = {"rows": "true"} if rows else {}
    if output_format is ShowFormat.csv:
        params["format"] = "csv"
    answer = _call(url, token, "GET", f"/v1/packs/{pack}/posture", params=params)
    if output_format is ShowFormat.csv:
        typer.echo(answer.text, nl=False)
        return
    data = answer.json()
    if output_format is ShowFormat.json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    if output_format is ShowFormat.markdown:
        raise usage_error("error: --posture prints text, json or csv")
    table = [("CONTROL", "SEVERITY", "STATUS", "VIOLATIONS", "FIRST SEEN", "TITLE")]
    for c in data["controls"]:
        table.append(
            (
                c["id"],
                c["severity"],
                c["status"],
                str(c["violations"]),
                _when(c["first_seen"]),
                c["title"],
            )
        )
    out = [f"{data['pack']} {data['version']} at {_when(data['at'])}", _columns(table)]
    notes = [f"{c['id']}: not evaluated: {c['reason']}" for c in data["controls"] if c["reason"]]
    if rows:
        for c in data["controls"]:
            for r in c.get("rows", []):
                project = f" [{r['project']}]" if r["project"] is not None else ""
                out.append(f"{c['id']} {r['resource']}{project}: {r['detail']}")
    summary = data["summary"]
    out += notes
    out.append(
        f"passing: {summary['passing']}, failing: {summary['failing']}, "
        f"not evaluated: {summary['not_evaluated']} (of {summary['total']})"
    )
    typer.echo(printable("\n".join(out)))


def _parameter_value(text: str) -> Any:
    """``[22, 2222]`` or ``[[22, SSH]]`` as YAML, or ``22,2222`` / ``m1.small,m1.large``."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = None
    if isinstance(value, list):
        return value
    if text.strip() == "":
        return []
    return [yaml.safe_load(item) if item.strip() else item for item in text.split(",")]


def _config_parameters(path: Path) -> dict[str, Any]:
    """``parameters:`` of a YAML (or JSON) file, each problem at its place."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise usage_error(f"{path}: error[file_error]: cannot read: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise usage_error(
            f"{where}: error[config_syntax]: malformed YAML: {getattr(exc, 'problem', None) or exc}"
        ) from None
    places = YamlPlaces(str(path), node)
    if not isinstance(data, dict) or set(data) - {"parameters"}:
        extra = sorted(set(data) - {"parameters"}) if isinstance(data, dict) else []
        span = places.span(extra[0], key=True) if extra else places.span()
        raise usage_error(
            f"{span}: error[config_invalid]: a pack's config file is a mapping with "
            "parameters: (parameter -> its rows)"
        )
    parameters = data.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise usage_error(
            f"{places.span('parameters')}: error[config_invalid]: parameters: maps "
            "each parameter to its rows, e.g. admin_ports: [[22, SSH]]"
        )
    for name, rows in parameters.items():
        if not isinstance(rows, list):
            raise usage_error(
                f"{places.span('parameters', name)}: error[config_invalid]: "
                f"parameters.{name}: give a list of rows"
            )
    return parameters


@pack_app.command("enable")
def enable_command(
    pack: Annotated[str, typer.Argument(help="The pack's id.", show_default=False)],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            help="A parameter's rows, replacing its default: NAME=22,2222 or "
            "NAME='[[22, SSH]]'. Repeatable; wins over --config.",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="A YAML file with parameters: (parameter -> rows).",
            show_default=False,
        ),
    ] = None,
    url: Annotated[str, URL] = DEFAULT_URL,
    token: Annotated[str | None, TOKEN] = None,
) -> None:
    """Enable a pack on a running Charter: one policy per control, with the parameters given
    (the others keep their defaults; with neither --set nor --config, the parameters of the
    pack as enabled before). Enabling an enabled pack brings its policies up to date."""
    parameters: dict[str, Any] | None = None
    if config is not None:
        parameters = _config_parameters(config)
    for item in set_ or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise usage_error(f"error: --set {item!r}: write NAME=VALUES, e.g. admin_ports=22,2222")
        parameters = parameters or {}
        parameters[name.strip()] = _parameter_value(value)
    body = {} if parameters is None else {"parameters": parameters}
    answer = _call(
        url, token, "POST", f"/v1/packs/{pack}", params={"action": "enable"}, json=body
    ).json()
    policies = answer.get("policies", [])
    typer.echo(
        f"enabled {answer['id']} {answer['version']}: {len(policies)} policies "
        f"({', '.join(policies)})"
    )
    for name, rows in sorted(answer.get("parameters_set", {}).items()):
        typer.echo(f"  {name} = {json.dumps(rows, ensure_ascii=False)}")


@pack_app.command("disable")
def disable_command(
    pack: Annotated[str, typer.Argument(help="The pack's id.", show_default=False)],
    url: Annotated[str, URL] = DEFAULT_URL,
    token: Annotated[str | None, TOKEN] = None,
) -> None:
    """Disable a pack on a running Charter: the policies it made are deleted."""
    answer = _call(url, token, "POST", f"/v1/packs/{pack}", params={"action": "disable"}).json()
    deleted = answer.get("deleted_policies", [])
    typer.echo(f"disabled {answer['id']}: deleted {len(deleted)} policies ({', '.join(deleted)})")


# ---------------------------------------------------------------- test


@pack_app.command("test")
def test_command(
    packs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Pack ids or pack folders (default: every installed pack).",
            show_default=False,
            metavar="[PACK]...",
        ),
    ] = None,
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            "-r",
            help="Only the cases whose 'file: name' matches this regex (the check that each "
            "control fails and passes in some case is then not made).",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        TestFormat, typer.Option("--format", "-f", help="text, json or junit (JUnit XML).")
    ] = TestFormat.text,
    coverage: Annotated[
        bool, typer.Option("--coverage", help="Report which rules derived a row in some case.")
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="Seed of the incremental runs' order (default: a random one).",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List every case.")] = False,
) -> None:
    """Run packs' test cases (their *_test.yaml files) as charter test runs test files,
    each case with the pack's policy loaded; and check that every control has a case where
    it fails and one where it passes.

    Exit status: 0 when every case passes and every control is tested both ways; 1
    otherwise; 2 on a usage error (an unknown pack, a test file that does not fit).
    """
    installed = _installed()
    chosen = (
        [_resolve(ref, installed) for ref in packs]
        if packs
        else sorted(installed.packs.values(), key=lambda p: p.id)
    )
    if not chosen:
        raise usage_error("error: no packs are installed")
    cases, errors, gaps = [], [], []
    for pack in chosen:
        if not pack.tests:
            gaps.append(
                f"{pack.folder / 'pack.yaml'}: pack {pack.id} has no test files (*_test.yaml)"
            )
            continue
        try:
            found = pack_cases(pack)
        except TestFileError as exc:
            errors += exc.messages
            continue
        cases += found
        gaps += control_gaps(pack, found)
    if errors:
        raise usage_error("\n".join(errors))
    if run is not None:
        try:
            pattern = re.compile(run)
        except re.error as exc:
            raise usage_error(f"error: --run {run!r} is not a regular expression: {exc}") from None
        cases = [c for c in cases if pattern.search(f"{c.file}: {c.name}")]
        if not cases:
            raise usage_error(f"error: no case matches --run {run!r}")
        gaps = [g for g in gaps if "has no test files" in g]
    seed = seed if seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    found_coverage = PackCoverage() if coverage else None
    runner = PackRunner(seed, found_coverage, chosen)
    outcomes = [runner.run(case) for case in cases]
    if output_format is TestFormat.json:
        typer.echo(printable(json_report(outcomes, seed, found_coverage)))
    elif output_format is TestFormat.junit:
        typer.echo(junit_report(outcomes))
        if found_coverage is not None:
            typer.echo(printable(found_coverage.to_text(verbose)), err=True)
    else:
        typer.echo(printable(text_report(outcomes, found_coverage, verbose)))
    for gap in gaps:
        typer.echo(printable(f"untested: {gap}"), err=True)
    if gaps or any(o.status != PASS for o in outcomes):
        raise typer.Exit(1)
