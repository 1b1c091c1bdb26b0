"""Diagnostics and the exceptions that carry them.

A check collects every :class:`Diagnostic` it finds; callers raise one :class:`PolicyError`
holding them all, sorted by place. Codes are stable snake_case strings that the API and the
CLI show as they are.

>>> d = Diagnostic("unsafe_variable", "variable y is not bound", Span("p.dl", 3, 14))
>>> str(d)
'p.dl:3:14: error[unsafe_variable]: variable y is not bound'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from charter.lang.ast import Span

ERROR = "error"
WARNING = "warning"


class CharterError(Exception):
    """Root of every error Charter raises on purpose."""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding of a check: a stable code, a message and where it applies."""

    code: str
    message: str
    span: Span | None = None
    severity: str = ERROR
    notes: tuple[str, ...] = field(default=())

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def sort_key(self) -> tuple:
        s = self.span
        return (
            (s.file or "") if s else "",
            s.line if s else 0,
            s.col if s else 0,
            0 if self.is_error else 1,
            self.code,
        )

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        return f"{where}{self.severity}[{self.code}]: {self.message}"

    def render(self, source: str | None = None) -> str:
        """The diagnostic, then (given the source text) the line it points at and a caret."""
        text = str(self)
        if source is not None and self.span is not None:
            lines = source.splitlines()
            if 0 < self.span.line <= len(lines):
                line = lines[self.span.line - 1]
                text += f"\n    {line}\n    {' ' * (self.span.col - 1)}^"
        for note in self.notes:
            text += f"\n    note: {note}"
        return text

    def to_json(self) -> dict:
        s = self.span
        out = {
            "code": self.code,
            "message": self.message,
            "severity": self.severity,
            "file": s.file if s else None,
            "line": s.line if s else None,
            "col": s.col if s else None,
        }
        if self.notes:
            out["notes"] = list(self.notes)
        return out


class PolicyError(CharterError):
    """A policy (or a piece of one) that cannot be accepted; holds every diagnostic found."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        super().__init__(self.summary())

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    def summary(self) -> str:
        errors = self.errors or self.diagnostics
        if len(errors) == 1:
            return str(errors[0])
        return f"{len(errors)} errors occurred:\n" + "\n".join(str(d) for d in errors)


def raise_if_errors(diagnostics: list[Diagnostic]) -> None:
    """Raise one PolicyError when any diagnostic is an error."""
    if any(d.is_error for d in diagnostics):
        raise PolicyError(diagnostics)


class DataError(CharterError):
    """Rows or a data file that do not fit: bad JSON, wrong arity, unknown table."""


class EngineError(CharterError):
    """A request the engine cannot carry out (unknown table, conflicting schema)."""
