"""Named and numbered column references, resolved to plain positional arguments.

``nova:servers(id=x, 3="ACTIVE")`` becomes ``nova:servers(x, _, _, "ACTIVE", _, ...)`` using
the table's schema, as Congress did at insert time. A positional literal shorter than its
schema is padded with fresh variables, for Congress's policies; ``charter check`` warns.
"""

from __future__ import annotations

from dataclasses import replace

from charter.lang.ast import Atom, Term, Variable
from charter.lang.errors import WARNING, Diagnostic


class FreshVariables:
    """Fresh anonymous variables for one rule, numbered after those the parser made."""

    def __init__(self, start: int = 1000):
        self.next = start

    def __call__(self) -> Variable:
        self.next += 1
        return Variable(f"_#{self.next}")


def resolve_columns(
    atom: Atom,
    columns: tuple[str, ...] | None,
    fresh: FreshVariables,
    diagnostics: list[Diagnostic],
    label: str | None = None,
) -> Atom:
    """Return ``atom`` with only positional arguments, reporting misuse of column references.

    ``label`` is the literal as messages show it (as the user wrote it; default ``atom``).
    """
    label = label or str(atom)
    if not atom.named:
        if columns is not None and len(atom.args) < len(columns):
            diagnostics.append(
                Diagnostic(
                    "padded_literal",
                    f"literal {label} has {len(atom.args)} of the {len(columns)} columns of "
                    f"{atom.qualified}; the rest are padded with anonymous variables "
                    f"(write them out, or use named columns)",
                    atom.span,
                    WARNING,
                )
            )
            pad = tuple(fresh() for _ in range(len(columns) - len(atom.args)))
            return replace(atom, args=atom.args + pad)
        return atom
    if columns is None:
        diagnostics.append(
            Diagnostic(
                "unknown_schema",
                f"literal {label} uses named arguments, but the schema of {atom.qualified} is "
                f"unknown; use positional arguments or declare the table's columns",
                atom.span,
            )
        )
        return atom
    args: list[Term | None] = list(atom.args) + [None] * (len(columns) - len(atom.args))
    if len(atom.args) > len(columns):
        return atom  # the arity check reports it
    ok = True
    for key, term in atom.named:
        if isinstance(key, int):
            position = key
            if position >= len(columns) or position < 0:
                diagnostics.append(
                    Diagnostic(
                        "unknown_column",
                        f"in literal {label} column index {key} is too large: "
                        f"{atom.qualified} has {len(columns)} columns (0 to {len(columns) - 1})",
                        term.span or atom.span,
                    )
                )
                ok = False
                continue
        else:
            if key not in columns:
                diagnostics.append(
                    Diagnostic(
                        "unknown_column",
                        f"in literal {label} column name {key} does not exist; "
                        f"{atom.qualified} has columns {', '.join(columns)}",
                        term.span or atom.span,
                    )
                )
                ok = False
                continue
            position = columns.index(key)
        if args[position] is not None:
            what = "provided by position" if position < len(atom.args) else "already given"
            diagnostics.append(
                Diagnostic(
                    "duplicate_column",
                    f"in literal {label} column {key} references position {position}, "
                    f"which is {what}",
                    term.span or atom.span,
                )
            )
            ok = False
            continue
        args[position] = term
    if not ok:
        return atom
    filled = tuple(a if a is not None else fresh() for a in args)
    return replace(atom, args=filled, named=())
