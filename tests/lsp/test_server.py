"""``charter lsp`` as an editor runs it: a subprocess speaking LSP over stdio.

Each test starts the server with pygls's LanguageClient, initializes it on a temporary
workspace folder, opens documents and waits for what it publishes (every wait is bounded;
nothing sleeps). Expected columns are counted in UTF-16 code units independently of the
server's own conversion, on lines holding characters outside the BMP.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

from charter.lang.format import format_datalog

TIMEOUT = 60.0
"""Seconds any one answer may take (the server's start imports Charter; CI is busy)."""

NETWORK = """\
// the network team's policy
public_server(vm) :- nova:servers(id=vm), neutronv2:ports(device_id=vm, network_id=net),
    neutronv2:networks(id=net, name="public")
"""

APP = """\
// résumé 😀: a policy written in an editor
error(vm, "😀") :- nova:servers(id=vm, stauts="ERROR")
warning(vm) :- network:public_server(vm), not approved(vm)
approved("vm-1")
"""

LIBRARY = """\
name: Lib
description: unsafe on purpose 😀
rules:
  - rule: >
      error(vm, "😀") :- nova:servers(id=vm), lt(x, 3)
"""


def utf16(text: str) -> int:
    """Columns of ``text`` in UTF-16 code units, as LSP counts them by default."""
    return len(text.encode("utf-16-le")) // 2


def position_of(text: str, needle: str, skip: int = 0) -> lsp.Position:
    """The LSP position (UTF-16) where ``needle`` starts in ``text``, plus ``skip`` chars."""
    offset = text.index(needle) + skip
    line = text.count("\n", 0, offset)
    line_start = text.rfind("\n", 0, offset) + 1
    return lsp.Position(line=line, character=utf16(text[line_start:offset]))


class Client(LanguageClient):
    """A LanguageClient that queues each document's published diagnostics."""

    def __init__(self) -> None:
        super().__init__("charter-tests", "1")
        self.queues: dict[str, asyncio.Queue[lsp.PublishDiagnosticsParams]] = defaultdict(
            asyncio.Queue
        )

        @self.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def published(params: lsp.PublishDiagnosticsParams) -> None:
            self.queues[params.uri].put_nowait(params)

    async def diagnostics(self, uri: str, version: int) -> list[lsp.Diagnostic]:
        """The diagnostics published for ``version`` of document ``uri`` (earlier versions'
        are skipped: each change publishes again)."""
        while True:
            params = await asyncio.wait_for(self.queues[uri].get(), TIMEOUT)
            if params.version == version:
                return list(params.diagnostics)

    def open(self, path: Path, text: str, language: str = "datalog") -> str:
        uri = path.as_uri()
        item = lsp.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)
        self.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=item))
        return uri

    def change(self, uri: str, version: int, text: str) -> None:
        document = lsp.VersionedTextDocumentIdentifier(uri=uri, version=version)
        change = lsp.TextDocumentContentChangeWholeDocument(text=text)
        params = lsp.DidChangeTextDocumentParams(text_document=document, content_changes=[change])
        self.text_document_did_change(params)

    async def hover(self, uri: str, at: lsp.Position) -> lsp.Hover | None:
        params = lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=uri), position=at)
        return await asyncio.wait_for(self.text_document_hover_async(params), TIMEOUT)

    async def definition(self, uri: str, at: lsp.Position) -> list[lsp.Location]:
        document = lsp.TextDocumentIdentifier(uri=uri)
        params = lsp.DefinitionParams(text_document=document, position=at)
        found = await asyncio.wait_for(self.text_document_definition_async(params), TIMEOUT)
        return list(found or [])

    async def complete(self, uri: str, at: lsp.Position) -> list[lsp.CompletionItem]:
        document = lsp.TextDocumentIdentifier(uri=uri)
        params = lsp.CompletionParams(text_document=document, position=at)
        found = await asyncio.wait_for(self.text_document_completion_async(params), TIMEOUT)
        assert isinstance(found, lsp.CompletionList)
        return list(found.items)


@contextlib.asynccontextmanager
async def started(
    workspace: Path, encodings: list[lsp.PositionEncodingKind] | None = None
) -> AsyncIterator[Client]:
    """A client talking to a fresh ``charter lsp`` initialized on ``workspace``, offering
    the position ``encodings`` (none: UTF-16, the protocol's default)."""
    client = Client()
    await client.start_io(sys.executable, "-m", "charter.cli.main", "lsp", cwd=str(workspace))
    try:
        folder = lsp.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)
        general = lsp.GeneralClientCapabilities(position_encodings=encodings)
        params = lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(general=general), workspace_folders=[folder]
        )
        result = await asyncio.wait_for(client.initialize_async(params), TIMEOUT)
        assert result.server_info is not None and result.server_info.name == "charter"
        expected = encodings[0] if encodings else lsp.PositionEncodingKind.Utf16
        assert result.capabilities.position_encoding == expected
        client.initialized(lsp.InitializedParams())
        yield client
        await asyncio.wait_for(client.shutdown_async(None), TIMEOUT)
        client.exit(None)
        await asyncio.wait_for(client.stop(), TIMEOUT)
    finally:
        process = client._server  # pygls keeps the process private; kill it if still running
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "network.dl").write_text(NETWORK, encoding="utf-8")
    return tmp_path


def test_diagnostic_at_its_utf16_range_then_cleared_by_a_fix(workspace: Path):
    async def scenario() -> None:
        async with started(workspace) as client:
            uri = client.open(workspace / "app.dl", APP)
            found = await client.diagnostics(uri, 1)
            assert [(d.code, d.severity, d.source) for d in found] == [
                ("unknown_column", lsp.DiagnosticSeverity.Error, "charter")
            ]
            (diagnostic,) = found
            assert "stauts" in diagnostic.message
            start = position_of(APP, '"ERROR"')
            assert start.line == 1 and start.character == utf16(
                'error(vm, "😀") :- nova:servers(id=vm, stauts='
            )
            end = lsp.Position(line=1, character=start.character + len('"ERROR"'))
            assert diagnostic.range == lsp.Range(start=start, end=end)

            client.change(uri, 2, APP.replace("stauts", "status"))
            assert await client.diagnostics(uri, 2) == []

    asyncio.run(scenario())


def test_a_client_preferring_utf8_gets_columns_in_bytes(workspace: Path):
    async def scenario() -> None:
        async with started(workspace, [lsp.PositionEncodingKind.Utf8]) as client:
            uri = client.open(workspace / "app.dl", APP)
            (diagnostic,) = await client.diagnostics(uri, 1)
            before = 'error(vm, "😀") :- nova:servers(id=vm, stauts='.encode()
            start = lsp.Position(line=1, character=len(before))
            end = lsp.Position(line=1, character=len(before) + len('"ERROR"'))
            assert diagnostic.range == lsp.Range(start=start, end=end)
            on_table = len('error(vm, "😀") :- nova:se'.encode())
            hover = await client.hover(uri, lsp.Position(line=1, character=on_table))
            assert hover is not None and isinstance(hover.contents, lsp.MarkupContent)
            assert hover.contents.value.startswith("**`nova:servers`**")

    asyncio.run(scenario())


def test_hover_definition_and_completion(workspace: Path):
    async def scenario() -> None:
        async with started(workspace) as client:
            uri = client.open(workspace / "app.dl", APP)
            await client.diagnostics(uri, 1)

            hover = await client.hover(uri, position_of(APP, "nova:servers", skip=6))
            assert hover is not None and isinstance(hover.contents, lsp.MarkupContent)
            text = hover.contents.value
            assert "**`nova:servers`**: table of datasource `nova`" in text
            assert "| 3 | `status` | server status: ACTIVE, SHUTOFF" in text
            start = position_of(APP, "nova:servers")
            assert hover.range == lsp.Range(
                start=start, end=lsp.Position(start.line, start.character + len("nova:servers"))
            )

            hover = await client.hover(uri, position_of(APP, "public_server"))
            assert hover is not None and isinstance(hover.contents, lsp.MarkupContent)
            assert "**`network:public_server`**: table of policy `network`" in hover.contents.value
            assert "[network.dl:2](" in hover.contents.value

            hover = await client.hover(uri, position_of(APP, "id=vm"))
            assert hover is not None and isinstance(hover.contents, lsp.MarkupContent)
            assert hover.contents.value == "**`id`**: column 0 of `nova:servers`: server id"

            (found,) = await client.definition(uri, position_of(APP, "public_server", skip=3))
            assert found.uri == (workspace / "network.dl").as_uri()
            assert found.range == lsp.Range(lsp.Position(1, 0), lsp.Position(1, 13))
            (found,) = await client.definition(uri, position_of(APP, "approved(vm)"))
            assert found.uri == uri
            assert found.range == lsp.Range(lsp.Position(3, 0), lsp.Position(3, 8))
            assert await client.definition(uri, position_of(APP, "nova:servers")) == []

            # named columns at the start of an argument of a datasource atom
            items = await client.complete(uri, position_of(APP, "id=vm"))
            columns = [i.label for i in items]
            assert columns[:4] == ["id", "name", "host_id", "status"]
            status = items[3]
            assert status.kind == lsp.CompletionItemKind.Field
            assert status.documentation is not None and "ACTIVE" in str(status.documentation)
            assert isinstance(status.text_edit, lsp.TextEdit)
            assert status.text_edit.new_text == "status="

            # tables where a literal starts: own, other policies', datasources', builtins
            at = position_of(APP, "network:public_server")
            items = await client.complete(uri, at)
            labels = {i.label for i in items}
            assert {"approved", "error", "network:public_server", "nova:servers", "lt"} <= labels
            assert "neutronv2:ports" in labels and "public_server" not in labels

            # after module: the module's tables, replacing only what follows the colon
            at = position_of(APP, "nova:servers", skip=len("nova:"))
            items = await client.complete(uri, at)
            servers = next(i for i in items if i.label == "servers")
            assert isinstance(servers.text_edit, lsp.TextEdit)
            assert servers.text_edit.range == lsp.Range(at, at)

            # nothing inside a comment
            assert await client.complete(uri, position_of(APP, "a policy")) == []

    asyncio.run(scenario())


def test_library_yaml_diagnostics_and_hover_point_into_the_yaml(workspace: Path):
    async def scenario() -> None:
        async with started(workspace) as client:
            uri = client.open(workspace / "lib.yaml", LIBRARY, "yaml")
            found = await client.diagnostics(uri, 1)
            assert [d.code for d in found] == ["unsafe_variable"]
            start = position_of(LIBRARY, "lt(x, 3)")
            end = lsp.Position(start.line, start.character + len("lt(x, 3)"))
            assert found[0].range == lsp.Range(start, end)

            hover = await client.hover(uri, position_of(LIBRARY, "servers"))
            assert hover is not None and isinstance(hover.contents, lsp.MarkupContent)
            assert "**`nova:servers`**" in hover.contents.value
            hover = await client.hover(uri, position_of(LIBRARY, "lt("))
            assert hover is not None and isinstance(hover.contents, lsp.MarkupContent)
            assert hover.contents.value.startswith("**`builtin:lt`**: comparison builtin")

    asyncio.run(scenario())


def test_documents_are_checked_together_and_each_gets_its_own(workspace: Path):
    """Two open documents defining one policy: each is told, at its own place, and closing
    one clears the other's error (what ``charter check a.dl b/a.dl`` reports)."""

    async def scenario() -> None:
        async with started(workspace) as client:
            (workspace / "b").mkdir()
            first = client.open(workspace / "app.dl", "p(1)\n")
            assert await client.diagnostics(first, 1) == []
            second = client.open(workspace / "b" / "app.dl", "q(1)\n")
            (found,) = await client.diagnostics(second, 1)
            assert found.code == "duplicate_policy"
            assert found.range.start == lsp.Position(0, 0)
            document = lsp.TextDocumentIdentifier(uri=second)
            client.text_document_did_close(lsp.DidCloseTextDocumentParams(text_document=document))
            assert await client.diagnostics(second, None) == []  # cleared once closed
            client.change(first, 2, "p(1)\np(x) :- q(y)\n")
            assert [d.code for d in await client.diagnostics(first, 2)] == ["unsafe_variable"]

    asyncio.run(scenario())


def test_formatting_answers_one_edit_of_charter_fmt(workspace: Path):
    messy = 'error( vm ) :-   nova:servers(id=vm,status="ERROR")\n'
    expected = format_datalog(messy, str(workspace / "messy.dl"))
    assert expected != messy

    async def scenario() -> None:
        async with started(workspace) as client:
            uri = client.open(workspace / "messy.dl", messy)
            await client.diagnostics(uri, 1)
            options = lsp.FormattingOptions(tab_size=4, insert_spaces=True)
            document = lsp.TextDocumentIdentifier(uri=uri)
            params = lsp.DocumentFormattingParams(text_document=document, options=options)
            edits = await asyncio.wait_for(client.text_document_formatting_async(params), TIMEOUT)
            assert list(edits or []) == [
                lsp.TextEdit(
                    range=lsp.Range(lsp.Position(0, 0), lsp.Position(1, 0)), new_text=expected
                )
            ]
            client.change(uri, 2, "p(x :-\n")  # does not parse: no edits, no error
            await client.diagnostics(uri, 2)
            edits = await asyncio.wait_for(client.text_document_formatting_async(params), TIMEOUT)
            assert not edits

    asyncio.run(scenario())
