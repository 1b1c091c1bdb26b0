"""Rule coverage: which rules of the policy files under test derived a row in some case.

A rule is covered when, in some case, its body has a match over the tables as the case
left them (after loading, and inside each simulate): its compiled plan is run once more
over the materialized tables, apart from the engine's own evaluation, so the engine's
paths pay nothing for coverage. Facts are data, not rules, and are not counted; so are the
rules of policies written inline in a test file.

>>> from charter.engine import Engine, RuleChange
>>> from charter.lang.parser import parse
>>> rules = parse("p(x) :- q(x)  r(x) :- s(x)  q(1)", "p.dl")
>>> eng = Engine()
>>> eng.create_policy("p")
>>> _ = eng.apply(RuleChange("p", rule, +1) for rule in rules)
>>> cov = Coverage()
>>> cov.add("p", "p.dl", rules)
>>> cov.record(eng, "case one")
>>> print(cov.to_text())
p.dl: 1/2 rules covered (50.0%)
  p.dl:1: not covered: r(x) :- s(x)
TOTAL: 1/2 rules covered (50.0%)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from charter.engine import Engine
from charter.engine.evaluate import sizer
from charter.engine.execute import run
from charter.lang.ast import Modal, Rule

__all__ = ["Coverage", "RuleCoverage"]


@dataclass
class RuleCoverage:
    """One rule of a policy file and the cases in which it derived a row."""

    file: str
    line: int
    col: int
    policy: str
    text: str
    cases: list[str] = field(default_factory=list)

    @property
    def covered(self) -> bool:
        return bool(self.cases)

    def to_json(self) -> dict:
        return {
            "line": self.line,
            "col": self.col,
            "policy": self.policy,
            "rule": self.text,
            "covered": self.covered,
            "cases": self.cases,
        }


def _percent(covered: int, total: int) -> float:
    return round(100.0 * covered / total, 1) if total else 100.0


class Coverage:
    """The rules of every policy file the cases loaded, and the cases that covered each."""

    def __init__(self) -> None:
        self.rules: dict[tuple[str, int, int], RuleCoverage] = {}

    def add(self, policy: str, file: str, rules: Iterable[Rule]) -> None:
        """Count a policy file's rules (facts excluded); adding a file again changes nothing."""
        for rule in rules:
            if not rule.body and not isinstance(rule.head, Modal):
                continue
            span = rule.span
            if span is None:
                continue
            key = (file, span.line, span.col)
            if key not in self.rules:
                text = " ".join(str(rule).split())
                self.rules[key] = RuleCoverage(file, span.line, span.col, policy, text)

    def record(self, engine: Engine, case: str) -> None:
        """Mark the counted rules that derive a row from the engine's tables as they are."""
        state = engine.state
        size = sizer(state)
        written: dict[str, dict[Rule, Rule]] = {}
        for name, policy in engine.policies.items():
            inverse: dict[Rule, Rule] = {}
            for user, normalized in policy.rules.items():
                inverse.setdefault(normalized, user)
            written[name] = inverse
        for stratum in engine.program.strata:
            for compiled in stratum.rules:
                if compiled.source is not None:  # an aggregate's body: its rule is what counts
                    continue
                user = written.get(compiled.policy, {}).get(compiled.rule)
                span = user.span if user is not None else None
                if span is None or span.file is None:
                    continue
                entry = self.rules.get((span.file, span.line, span.col))
                if entry is None or case in entry.cases:
                    continue
                if run(compiled.plan(None, size), [()], state):
                    entry.cases.append(case)

    # ------------------------------------------------------------ reports

    def files(self) -> dict[str, list[RuleCoverage]]:
        out: dict[str, list[RuleCoverage]] = {}
        for key in sorted(self.rules):
            out.setdefault(key[0], []).append(self.rules[key])
        return out

    def to_json(self) -> dict:
        files = []
        for file, rules in self.files().items():
            covered = sum(r.covered for r in rules)
            files.append(
                {
                    "file": file,
                    "covered": covered,
                    "total": len(rules),
                    "percent": _percent(covered, len(rules)),
                    "rules": [r.to_json() for r in rules],
                }
            )
        covered = sum(r.covered for r in self.rules.values())
        return {
            "files": files,
            "covered": covered,
            "total": len(self.rules),
            "percent": _percent(covered, len(self.rules)),
        }

    def to_text(self, verbose: bool = False) -> str:
        """Per file ``covered/total``, each uncovered rule at ``file:line``, then the total;
        ``verbose`` also lists the cases that covered each covered rule."""
        lines = []
        for file, rules in self.files().items():
            covered = sum(r.covered for r in rules)
            lines.append(
                f"{file}: {covered}/{len(rules)} rules covered ({_percent(covered, len(rules))}%)"
            )
            for rule in rules:
                if not rule.covered:
                    lines.append(f"  {file}:{rule.line}: not covered: {rule.text}")
                elif verbose:
                    lines.append(f"  {file}:{rule.line}: covered by {'; '.join(rule.cases)}")
        covered = sum(r.covered for r in self.rules.values())
        total = len(self.rules)
        lines.append(f"TOTAL: {covered}/{total} rules covered ({_percent(covered, total)}%)")
        return "\n".join(lines)
