"""``charter lsp``: the language server, on pygls, over stdio.

The server keeps the open documents (the client sends each one whole on every change) and
answers from them and the workspace folder's policy files:

- diagnostics: on open, change, save and close, every open policy document is checked
  together, as ``charter check`` checks those files (:func:`charter.lsp.checking.check_texts`),
  and each document gets its own diagnostics (sent again only when they changed, or when
  that document itself changed);
- hover on a table, builtin or named column (:mod:`charter.lsp.hover`), go to definition of
  a table (:class:`charter.lsp.index.WorkspaceIndex`), completion
  (:mod:`charter.lsp.completion`) and formatting through ``charter fmt``'s printer.

Positions are converted with :mod:`charter.lsp.positions`, in the encoding negotiated at
initialization (UTF-16 unless the client prefers UTF-8 or UTF-32).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import TextDocument

from charter import __version__
from charter.lang.ast import Span
from charter.lang.errors import ERROR, WARNING, CharterError, Diagnostic, PolicyError
from charter.lang.format import FormatError, format_datalog, format_library_yaml
from charter.lsp.checking import check_texts, is_library, looks_like_library
from charter.lsp.completion import BUILTIN, COLUMN, MODULE, complete
from charter.lsp.context import NAME, Symbol, symbol_at
from charter.lsp.hover import definitions, describe
from charter.lsp.index import ParsedText, Snapshot, WorkspaceIndex, normal_path
from charter.lsp.positions import UTF16, LineIndex

__all__ = ["CharterLanguageServer", "build_server", "serve"]

log = logging.getLogger(__name__)

SOURCE = "charter"
TRIGGERS = [":", "(", ","]
_SEVERITY = {ERROR: lsp.DiagnosticSeverity.Error, WARNING: lsp.DiagnosticSeverity.Warning}
_KIND = {
    COLUMN: lsp.CompletionItemKind.Field,
    MODULE: lsp.CompletionItemKind.Module,
    BUILTIN: lsp.CompletionItemKind.Function,
}


@dataclass(frozen=True)
class View:
    """One open document as a request sees it, with the workspace around it."""

    name: str
    lines: LineIndex
    snapshot: Snapshot
    parsed: ParsedText | None
    encoding: str

    @property
    def policy(self) -> str | None:
        return self.parsed.policy if self.parsed else None

    def symbol(self, at: lsp.Position) -> Symbol | None:
        """The table, builtin or column at ``at``."""
        rules = self.parsed.rules if self.parsed else ()
        complete = self.parsed is not None and self.parsed.complete
        return symbol_at(
            self.lines.text, rules, at.line, at.character, self.encoding, complete=complete
        )


class CharterLanguageServer(LanguageServer):
    """The pygls server with Charter's state: the workspace index and what was published."""

    def __init__(self) -> None:
        super().__init__(
            "charter", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Full
        )
        self.index = WorkspaceIndex()
        self.published: dict[str, list[lsp.Diagnostic]] = {}
        self.names: dict[str, str] = {}  # file name used in spans -> document URI

    # ------------------------------------------------------------ documents

    @property
    def encoding(self) -> str:
        encoding = self.workspace.position_encoding
        return str(getattr(encoding, "value", encoding) or UTF16)

    def name_of(self, document: TextDocument) -> str:
        """The file name a document is checked under: its path, or for a document not
        saved yet (``untitled:...``) its name with the suffix of its language."""
        path = to_fs_path(document.uri)
        if path is not None:
            return normal_path(path)
        name = PurePosixPath(unquote(urlparse(document.uri).path)).name or "untitled"
        if not Path(name).suffix:
            name += ".yaml" if document.language_id == "yaml" else ".dl"
        return normal_path(name)

    def uri_of(self, name: str) -> str:
        return self.names.get(name) or from_fs_path(name) or name

    def roots(self) -> list[Path]:
        found = [to_fs_path(folder.uri) for folder in self.workspace.folders.values()]
        if not found and self.workspace.root_path:
            found = [self.workspace.root_path]
        return [Path(normal_path(f)) for f in found if f]

    def view(self, uri: str) -> View:
        """The open document ``uri`` and the workspace's policy files as they are now."""
        document = self.workspace.get_text_document(uri)
        name = self.name_of(document)
        self.index.open(name, document.source)
        self.index.roots = [str(r) for r in self.roots()]
        snapshot = self.index.snapshot()
        lines = LineIndex(document.source)
        return View(name, lines, snapshot, snapshot.file(name), self.encoding)

    # ------------------------------------------------------------ diagnostics

    def refresh(self, changed: str | None) -> None:
        """Check every open policy document together and publish each one's diagnostics."""
        texts: dict[str, str] = {}
        self.names = {}
        for uri, document in self.workspace.text_documents.items():
            name = self.name_of(document)
            self.names[name] = uri
            self.index.open(name, document.source)
            if not is_library(name) or looks_like_library(document.source):
                texts[name] = document.source
        try:
            found = check_texts(texts)
        except PolicyError as exc:
            found = exc.diagnostics
        except CharterError as exc:  # not a policy's diagnostics: say so where it was typed
            found = [Diagnostic("check_failed", str(exc))]
        grouped: dict[str, list[Diagnostic]] = {self.names[name]: [] for name in texts}
        for diagnostic in found:
            span = diagnostic.span
            uri = self.names.get(span.file or "") if span else changed
            if uri in grouped:
                grouped[uri].append(diagnostic)
        for uri in set(self.published) - set(grouped):  # closed, or no longer a policy
            del self.published[uri]
            self.publish(uri, [], None)
        for uri, diagnostics in grouped.items():
            document = self.workspace.get_text_document(uri)
            lines = LineIndex(document.source)
            converted = [self.to_lsp(d, lines) for d in diagnostics]
            if uri == changed or self.published.get(uri) != converted:
                self.published[uri] = converted
                self.publish(uri, converted, document.version)

    def publish(self, uri: str, diagnostics: list[lsp.Diagnostic], version: int | None) -> None:
        params = lsp.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version)
        self.text_document_publish_diagnostics(params)

    def to_range(self, span: Span | None, lines: LineIndex) -> lsp.Range:
        """A span as an LSP range: to its end where the span has one, else over the name
        (or the one character) it starts at."""
        if span is None:
            return lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
        start = lines.offset_of(span.line, span.col)
        if span.end_line is not None and span.end_col is not None:
            end = lines.offset_of(span.end_line, span.end_col)
        else:
            name = NAME.match(lines.text, start)
            end = name.end() if name else start + (lines.text[start : start + 1] not in ("", "\n"))
        return lsp.Range(self.position(lines, start), self.position(lines, max(start, end)))

    def position(self, lines: LineIndex, offset: int) -> lsp.Position:
        line, character = lines.position(offset, self.encoding)
        return lsp.Position(line=line, character=character)

    def to_lsp(self, diagnostic: Diagnostic, lines: LineIndex) -> lsp.Diagnostic:
        message = "\n".join([diagnostic.message, *(f"note: {n}" for n in diagnostic.notes)])
        return lsp.Diagnostic(
            range=self.to_range(diagnostic.span, lines),
            message=message,
            severity=_SEVERITY.get(diagnostic.severity, lsp.DiagnosticSeverity.Information),
            code=diagnostic.code,
            source=SOURCE,
        )


def build_server() -> CharterLanguageServer:
    """A new server with every feature registered (one per process: pygls's state is its)."""
    server = CharterLanguageServer()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CharterLanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CharterLanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: CharterLanguageServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CharterLanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
        closed = next((n for n, u in ls.names.items() if u == params.text_document.uri), None)
        if closed is not None:
            ls.index.close(closed)
        ls.refresh(None)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: CharterLanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
        view = ls.view(params.text_document.uri)
        symbol = view.symbol(params.position)
        if symbol is None:
            return None
        text = describe(symbol, view.policy, view.snapshot, ls.roots())
        if text is None:
            return None
        where = lsp.Range(
            ls.position(view.lines, symbol.start), ls.position(view.lines, symbol.end)
        )
        content = lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text)
        return lsp.Hover(contents=content, range=where)

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(
        ls: CharterLanguageServer, params: lsp.DefinitionParams
    ) -> list[lsp.Location] | None:
        view = ls.view(params.text_document.uri)
        symbol = view.symbol(params.position)
        if symbol is None or symbol.kind == "column":
            return None
        locations = []
        for found in definitions(symbol, view.policy, view.snapshot):
            target = view.snapshot.file(found.path)
            lines = LineIndex(target.text if target else "")
            start = lines.offset_of(found.span.line, found.span.col)
            head = NAME.match(lines.text, start)
            end = head.end() if head else start
            where = lsp.Range(ls.position(lines, start), ls.position(lines, end))
            locations.append(lsp.Location(uri=ls.uri_of(found.path), range=where))
        return locations or None

    @server.feature(
        lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=TRIGGERS)
    )
    def completion(ls: CharterLanguageServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        view = ls.view(params.text_document.uri)
        lines = view.lines
        cursor = lines.offset(params.position.line, params.position.character, ls.encoding)
        library = is_library(view.name)
        offers = complete(lines.text, cursor, view.policy, view.snapshot, library)
        end = ls.position(lines, cursor)
        items = []
        for offer in offers:
            edit = lsp.TextEdit(lsp.Range(ls.position(lines, offer.start), end), offer.insert)
            docs = (
                lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=offer.documentation)
                if offer.documentation
                else None
            )
            items.append(
                lsp.CompletionItem(
                    label=offer.label,
                    kind=_KIND.get(offer.kind, lsp.CompletionItemKind.Class),
                    detail=offer.detail or None,
                    documentation=docs,
                    sort_text=f"{offer.rank:02d}{offer.label}",
                    filter_text=offer.insert,
                    text_edit=edit,
                )
            )
        return lsp.CompletionList(is_incomplete=False, items=items)

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def formatting(
        ls: CharterLanguageServer, params: lsp.DocumentFormattingParams
    ) -> list[lsp.TextEdit]:
        document = ls.workspace.get_text_document(params.text_document.uri)
        name = ls.name_of(document)
        text = document.source
        try:
            if is_library(name):
                formatted = format_library_yaml(text, name)
            else:
                formatted = format_datalog(text, name)
        except PolicyError:
            return []  # the diagnostics already say why it does not parse
        except FormatError as exc:  # the printer's own bug: never edit the buffer with it
            log.error("charter fmt refused to format %s: %s", name, exc)
            return []
        if formatted == text:
            return []
        lines = LineIndex(text)
        whole = lsp.Range(lsp.Position(0, 0), ls.position(lines, len(text)))
        return [lsp.TextEdit(range=whole, new_text=formatted)]

    return server


def serve() -> None:
    """Serve one client over stdin and stdout until it exits."""
    build_server().start_io()
