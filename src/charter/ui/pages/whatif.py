"""What if: rows (and rules) to insert or delete, and the violations they would make appear
and clear, computed by the admission check without changing anything.

The changes are typed as Datalog, one per line, each line starting with ``+`` (insert) or
``-`` (delete): ``+nova:servers("vm9", "web", "ACTIVE")`` is a row, ``+error(x) :- p(x)`` a
rule of the policy. Charter's own parser reads them (a syntax error is shown at its line
and column). Rows alone go to :func:`charter.service.admission.admit`, exactly what
``POST /v1/policies/{policy}/admission`` answers; with rules, the same projection
(simulate's, under the service's lock, undone before the answer, published nowhere) applies
the rule changes too, which the admission endpoint's JSON cannot state.

The form is a GET: nothing changes, so the URL of a what-if can be bookmarked and shared.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fastapi import APIRouter, Request
from fastapi.responses import Response

from charter.engine import RuleChange
from charter.lang.ast import Atom, Constant, Rule, Span
from charter.lang.errors import ERROR, Diagnostic, EngineError, PolicyError
from charter.lang.parser import parse
from charter.service.admission import admit
from charter.service.errors import ServiceError
from charter.service.simulate import Update, format_row, projected, row_key, row_step
from charter.service.violations import VIOLATION_TABLES
from charter.ui.deps import Forbidden, Viewer, allowed
from charter.ui.pages.policies import Finding, explain_url, source_lines
from charter.ui.render import render

router = APIRouter()

SOURCE = "changes"  # the file name of the typed changes' spans
EXAMPLE = ('+nova:servers("vm9", "web-9", "ACTIVE")\n'
           '-neutron:ports("port-1", "vm1")\n'
           '+error(id) :- nova:servers(id, _, "ERROR")')


@dataclass(frozen=True)
class Change:
    """One typed change: a row or a rule, inserted (+1) or deleted (-1)."""

    sign: int
    rule: Rule
    line: int

    @property
    def is_row(self) -> bool:
        return self.rule.is_fact

    def shown(self) -> str:
        return ("+" if self.sign > 0 else "-") + str(self.rule)


def parse_changes(text: str) -> list[Change]:
    """The changes of ``text``; PolicyError with every problem at its line and column.

    A statement starts on a line beginning with ``+`` or ``-`` (after blanks) and may go on
    over the lines that follow; ``#`` starts a comment. The sign is replaced by a blank
    before parsing, so columns stay those the user sees.
    """
    signs: dict[int, int] = {}
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    masked = []
    for number, line in enumerate(lines, 1):
        body = line.lstrip()
        if body[:1] in ("+", "-") and body:
            signs[number] = 1 if body[0] == "+" else -1
            line = line[:len(line) - len(body)] + " " + body[1:]
        masked.append(line)
    rules = parse("\n".join(masked), SOURCE)  # raises PolicyError at the place
    problems: list[Diagnostic] = []
    changes: list[Change] = []
    for rule in rules:
        span = rule.span or Span(SOURCE, 1, 1)
        sign = signs.get(span.line)
        if sign is None:
            problems.append(Diagnostic(
                "whatif_sign", f"{rule} is not marked: start the line of each change with + "
                "(insert) or - (delete)", span))
            continue
        head = rule.head
        if not isinstance(head, Atom) or len(rule.heads) != 1 or head.update:
            problems.append(Diagnostic(
                "whatif_change", f"{rule}: a change is one row (a fact) or one rule with a "
                "table as its head (no execute[...], no p+/p- update atoms)", span))
            continue
        if rule.is_fact and (head.named or not head.args or not all(
                isinstance(a, Constant) for a in head.args)):
            problems.append(Diagnostic(
                "whatif_row", f"{rule}: a row needs a value for each column, by position "
                "(strings and numbers, no variables)", span))
            continue
        changes.append(Change(sign, rule, span.line))
    if problems:
        raise PolicyError(problems)
    if not changes:
        raise PolicyError([Diagnostic(
            "whatif_empty", "state a change: a row or rule per line, starting with + "
            "(insert) or - (delete)", Span(SOURCE, 1, 1))])
    return changes


def _row(change: Change) -> dict:
    head = change.rule.head
    assert isinstance(head, Atom)
    table = f"{head.theory}:{head.table}" if head.theory else head.table
    return {"table": table, "row": [a.value for a in head.args]}  # type: ignore[union-attr]


def what_if(service, policy: str, changes: list[Change], tables: list[str] | None) -> dict:
    """``{"appear": [{"table", "row"}], "clear": [...]}``: the admission check's answer."""
    if all(c.is_row for c in changes):
        body: dict = {"insert": [_row(c) for c in changes if c.sign > 0],
                      "delete": [_row(c) for c in changes if c.sign < 0]}
        if tables:
            body["tables"] = tables
        return admit(service, policy, body)
    return _with_rules(service, policy, changes, tables)


def _with_rules(service, policy: str, changes: list[Change], tables: list[str] | None
                ) -> dict:
    """Admission's comparison, with rule changes among the steps (rows first, as admit
    orders them: inserts, deletes, then the rules)."""
    engine = service.engine
    labels = tables or list(VIOLATION_TABLES)
    with service.lock:
        name = service.policies.get(policy).record.name
        steps: list[Update] = []
        for sign in (1, -1):
            for c in changes:
                if c.is_row and c.sign == sign:
                    row = _row(c)
                    steps.append(row_step(name, row["table"], tuple(row["row"]), sign))
        for c in changes:
            if c.is_row:
                continue
            head = c.rule.head
            assert isinstance(head, Atom)
            target = head.theory or name
            rule = Rule((replace(head, theory=None),), c.rule.body)
            if c.sign < 0 and (target not in engine.policies
                               or rule not in engine.rules(target)):
                raise ServiceError(f"{SOURCE}:{c.line}: policy {target} has no rule {rule} "
                                   "to delete; copy its text from the policy's page")
            steps.append(Update(c.shown(), rule=RuleChange(target, rule, c.sign)))

        def qualified(label: str) -> str:
            return label if ":" in label else f"{name}:{label}"

        before = {label: _read(engine, qualified(label)) for label in labels}
        with projected(engine, name, None, steps):
            after = {label: _read(engine, qualified(label)) for label in labels}
            known = {label for label in labels if engine.has_table(qualified(label))}
        known |= {label for label in labels if engine.has_table(qualified(label))}
    if tables:
        unknown = [label for label in labels if label not in known]
        if unknown:
            raise ServiceError(f"unknown table {unknown[0]}: name a table of policy {name} "
                               "or <policy>:<table>")
    appear, clear = [], []
    for label in labels:
        appear += [{"table": label, "row": list(r)}
                   for r in sorted(after[label] - before[label], key=row_key)]
        clear += [{"table": label, "row": list(r)}
                  for r in sorted(before[label] - after[label], key=row_key)]
    return {"appear": appear, "clear": clear}


def _read(engine, table: str) -> set[tuple]:
    try:
        return engine.rows(table)
    except EngineError:
        return set()


def _shown(policy: str, found: list[dict], explain: bool) -> list[dict]:
    out = []
    for item in found:
        label = item["table"]
        owner, _, table = label.rpartition(":")
        owner = owner or policy
        out.append({"table": label, "row": item["row"],
                    "text": format_row(label, tuple(item["row"])),
                    "explain": explain_url(owner, table, item["row"]) if explain else None})
    return out


@router.get("/whatif")
def whatif(request: Request, user: Viewer, policy: str = "", changes: str | None = None,
           tables: str = "") -> Response:
    service = request.app.state.service
    names = [p.name for p in service.policies.list()]
    context: dict = {
        "title": "What if", "policies": names, "policy": policy, "changes": changes or "",
        "tables": tables, "example": EXAMPLE, "ran": False, "error": None, "findings": None,
        "lines": [], "appear": [], "clear": [], "summary": [],
    }
    status = 200
    if changes is not None:
        if not allowed(user, "POST", "/v1/policies/{policy}/admission"):
            raise Forbidden(f"'{user.name}' has role {user.role}; a what-if needs the "
                            "admission check's role")
        watched = [t.strip() for t in tables.replace(",", " ").split() if t.strip()] or None
        try:
            if not policy:
                raise ServiceError("choose the policy whose violations to compare")
            parsed = parse_changes(changes)
            found = what_if(service, policy, parsed, watched)
        except PolicyError as exc:
            findings = [Finding.of(d) for d in exc.diagnostics]
            context.update(error="the changes do not parse: " + "; ".join(
                f"line {f.line}, column {f.column}: {f.message}" for f in findings
                if f.severity == ERROR), findings=findings,
                lines=source_lines(changes, findings))
            status = 400
        except ServiceError as exc:
            context.update(error=exc.message)
            status = exc.status
        else:
            name = service.policies.get(policy).record.name
            context.update(ran=True, summary=[c.shown() for c in parsed],
                           appear=_shown(name, found["appear"], explain=False),
                           clear=_shown(name, found["clear"], explain=True))
    return render(request, "whatif.html", context, status=status)
