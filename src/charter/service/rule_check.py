"""Rule text checked against the live program, as ``charter check`` checks policy files.

The dashboard's rule editor shows, as the user types, what ``charter check`` would say of the
text if it were one more file of the policy: syntax errors, rules written twice, each rule's
compile checks (safety, columns and tables of the datasources' schemas, builtins), the
program-wide checks (one arity per table, no recursion through negation) and lint warnings,
less those a ``charter: disable=CODE`` comment switches off. The context is the server's own
program (:meth:`Engine.view`): every policy's rules as compiled, the datasources' schemas and
the arities of tables that hold rows, so ``ok`` means what adding (or, in replace mode,
putting) the rule would say, bar a change made in between.

The checks are :mod:`charter.lang`'s, in ``charter check``'s order
(:func:`charter.cli.loading.compile_diagnostics` and ``_checked``); only the program is the
view's instead of files. The submitted text goes last (its policy after the others, its rules
after the policy's own), so where two rules disagree (an arity, a copy of another policy's
rule) the finding lands on the text, not on the live rule. Only findings in the text are
answered: an error the program checks report at another rule's place (a cycle through
negation whose first table a live rule defines) is moved to the submitted rule in the cycle,
with a note naming the place it was found at.

>>> from charter.engine import Engine
>>> engine = Engine()
>>> engine.create_policy("p")
>>> [str(d) for d in check_rule_text(engine.view(), "p", "q(x) :- r(x, y)")]  # doctest: +ELLIPSIS
['rule:1:9: warning[unknown_table]: ...', 'rule:1:14: warning[singleton_variable]: ...']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from charter.engine.rule_check import ProgramView
from charter.lang.ast import Rule, Span
from charter.lang.checks import check_program, compile_rules, head_table
from charter.lang.duplicates import unique_rules
from charter.lang.errors import Diagnostic, EngineError, PolicyError
from charter.lang.lint import WARNING_CODES, lint_policies
from charter.lang.parser import parse
from charter.lang.suppress import Suppressions, filter_suppressed, unknown_codes

__all__ = ["SOURCE", "check_rule_text"]

SOURCE = "rule"
"""The file name of the submitted text's spans (the request's field), which tells its
findings from the live rules' (parsed without a file name)."""


@dataclass(frozen=True, slots=True)
class _Policy:
    """A policy as lint reads it (:class:`charter.lang.lint.PolicySource`)."""

    name: str
    kind: str
    rules: tuple[Rule, ...]


def check_rule_text(
    view: ProgramView, policy: str, text: str, replaced: Rule | None = None
) -> list[Diagnostic]:
    """Every diagnostic of ``text`` (rules and facts) as more rules of ``policy``, sorted.

    Args:
        view: the live program, from :meth:`Engine.view`.
        policy: the policy the text's rules would join (a name the view knows).
        text: the rules, as typed; spans are lines and columns within it (file ``rule``).
        replaced: one of the policy's rules (as written) checked as if the text replaced it.

    Raises:
        EngineError: ``policy`` is not in the view, or ``replaced`` is not one of its rules.
    """
    if policy not in view.kinds:
        raise EngineError(f"no policy named {policy}")
    live = dict(view.rules[policy])
    if replaced is not None:
        if replaced not in live:
            raise EngineError(f"policy {policy} has no rule {replaced}")
        del live[replaced]
    try:
        written = parse(text, SOURCE)
    except PolicyError as exc:  # charter check reports a file that does not parse alone
        return exc.diagnostics
    rules, diagnostics = unique_rules(written, policy)
    kind = view.kinds[policy]
    for rule in rules:
        if rule in live:
            diagnostics.append(
                Diagnostic(
                    "rule_already_exists",
                    f"rule {rule} already exists in policy {policy}",
                    rule.span,
                )
            )
    fresh = [rule for rule in rules if rule not in live]
    compiled, found = compile_rules(policy, fresh, view.schemas, kind)
    diagnostics += found
    normalized = {name: list(r.values()) for name, r in view.rules.items() if name != policy}
    normalized[policy] = [*live.values(), *compiled]
    program = {name: r for name, r in normalized.items() if view.kinds[name] != "action"}
    diagnostics += _moved_into_text(check_program(program, view.known_arity), policy, compiled)
    sources = [
        _Policy(name, view.kinds[name], tuple(r))
        for name, r in view.rules.items()
        if name != policy
    ]
    sources.append(_Policy(policy, kind, (*live, *rules)))
    diagnostics += lint_policies(sources, view.schemas, normalized)
    comments = {SOURCE: Suppressions(text, written)}
    diagnostics += unknown_codes(comments, WARNING_CODES)
    mine = [d for d in diagnostics if d.span is not None and d.span.file == SOURCE]
    return sorted(filter_suppressed(mine, comments), key=Diagnostic.sort_key)


def _moved_into_text(
    found: list[Diagnostic], policy: str, compiled: Sequence[Rule]
) -> list[Diagnostic]:
    """The program checks' errors, each at a place in the text.

    The live program passed these checks, so an error is the text's doing; one reported at a
    live rule (a cycle named from a table a live rule defines) goes to the text's rule whose
    head is in the message (the cycle), else its first rule, with a note of where it was."""
    out = []
    for d in found:
        if d.span is not None and d.span.file == SOURCE:
            out.append(d)
            continue
        if not compiled:  # the text adds no rule, so it caused nothing
            continue
        target = next((r for r in compiled if head_table(policy, r.head) in d.message), compiled[0])
        where = f"reported at the live rule written {d.span}" if d.span else "reported"
        span = target.span or Span(SOURCE, 1, 1)
        out.append(replace(d, span=span, notes=(*d.notes, f"{where} by charter check")))
    return out
