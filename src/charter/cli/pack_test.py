"""``charter pack test``: a pack's ``*_test.yaml`` cases, run by ``charter test``'s machinery.

Every case of a pack's test files loads the pack's policy first: all of its ``.dl`` files
as one policy (named by ``pack.yaml``'s ``policy``, e.g. ``openstack_security``) with the
parameters' default rows as facts. A case names the pack's tables without a prefix, gives
datasource rows as ``charter test`` cases do, and may add parameter rows as facts of the
pack's policy (``openstack_security:admin_ports: [[8443, ...]]``).

Coverage counts each rule at its own file and line. Beyond the cases, every control must
have a case where its table has rows and one where it is expected empty: a control never
seen to fire, or never seen to pass, is untested (reported, and the run fails).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from charter.cli.loading import PolicyFile
from charter.lang.ast import Rule
from charter.packs.build import datasource_tables
from charter.packs.load import Pack
from charter.policytest.cases import PolicySource, TestCase, load_test_file
from charter.policytest.coverage import Coverage
from charter.policytest.runner import Runner

__all__ = ["PackCoverage", "PackRunner", "control_gaps", "pack_cases"]


class PackCoverage(Coverage):
    """Coverage whose rules are counted at the file each was written in (a pack's policy
    is made of several files)."""

    def add(self, policy: str, file: str, rules: Iterable[Rule]) -> None:
        by_file: dict[str, list[Rule]] = {}
        for rule in rules:
            where = rule.span.file if rule.span is not None and rule.span.file else file
            by_file.setdefault(where, []).append(rule)
        for where, found in by_file.items():
            super().add(policy, where, found)


def _key(pack: Pack) -> str:
    return str(pack.folder)


class PackRunner(Runner):
    """A runner that knows the packs' policies: a case's source naming a pack folder loads
    that pack's rules and default parameters."""

    def __init__(self, seed: int, coverage: Coverage | None, packs: Iterable[Pack]):
        super().__init__(seed, coverage)
        self.packs: dict[str, PolicyFile] = {}
        for pack in packs:
            self.packs[_key(pack)] = PolicyFile(
                pack.spec.policy_name, _key(pack), "nonrecursive", tuple(pack.test_rules())
            )
            self.sources.update(pack.sources)
            self.schemas.update(datasource_tables(pack.spec))

    def policy_file(self, source: PolicySource) -> PolicyFile:
        if source.text is None and source.path in self.packs:
            return self.packs[source.path]
        return super().policy_file(source)


def pack_cases(pack: Pack) -> list[TestCase]:
    """The cases of the pack's test files, each loading the pack's policy first.

    Raises:
        TestFileError: a test file that does not fit the schema, every problem listed.
    """
    out = []
    for file in pack.tests:
        for case in load_test_file(file):
            case.policies = [PolicySource(path=_key(pack)), *case.policies]
            out.append(case)
    return out


@dataclass
class _Seen:
    fires: bool = False
    passes: bool = False


def control_gaps(pack: Pack, cases: Iterable[TestCase]) -> list[str]:
    """Each control without a case where its table has rows, or one where it has none."""
    policy = pack.spec.policy_name
    seen = {c.table: _Seen() for c in pack.controls}
    for case in cases:
        for check in case.expect:
            table = check.table.removeprefix(f"{policy}:")
            found = seen.get(table)
            if found is None:
                continue
            if check.exact is not None:
                found.fires |= bool(check.exact)
                found.passes |= not check.exact
            else:
                found.fires |= bool(check.contains)
    out = []
    for control in pack.controls:
        found = seen[control.table]
        missing = [
            what for what, ok in (("fails", found.fires), ("passes", found.passes)) if not ok
        ]
        if missing:
            out.append(
                f"{pack.folder / 'pack.yaml'}: control {control.id}: no case where it "
                f"{' or where it '.join(missing)} (a case expecting rows in "
                f"{control.table}, and one expecting {control.table}: [])"
            )
    return out
