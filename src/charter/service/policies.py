"""Policies and their rules, as Congress's API names them (by id or by name).

Each rule keeps the text the user wrote (shown back unchanged) beside its parsed form (what
the engine holds). ``classification`` and ``action`` exist from the first start, as in
Congress.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from charter.enforce.actions import MODES
from charter.engine import RuleChange
from charter.engine.rule_check import CheckedRules, ProgramView, check_changes
from charter.lang.ast import Atom, Rule, Span, rule_atoms
from charter.lang.duplicates import duplicate_positions
from charter.lang.errors import CharterError, Diagnostic, EngineError, PolicyError
from charter.lang.names import (
    POLICY_NAME_RULE,
    is_policy_name,
    policy_name_problem,
    suggested_name,
)
from charter.lang.parser import parse_rule
from charter.service import errors as E
from charter.service.errors import Conflict, NotFound, ServiceError
from charter.service.rule_check import check_rule_text
from charter.service.service import utcnow
from charter.service.violations import VIOLATION_TABLES
from charter.store.records import AuditRecord, PolicyRecord, RuleRecord

log = logging.getLogger(__name__)

BUILTIN_POLICIES = (
    ("classification", "nonrecursive", "default policy"),
    ("action", "action", "default action policy"),
)
KINDS = ("nonrecursive", "action", "database", "materialized")


@dataclass
class LivePolicy:
    record: PolicyRecord
    rules: dict[str, tuple[RuleRecord, Rule]] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # rule id -> why it did not load


class Policies:
    def __init__(self, service) -> None:
        self.service = service
        self.live: dict[str, LivePolicy] = {}  # by id

    # ------------------------------------------------------------ restart

    def restore(self) -> None:
        svc = self.service
        records = svc.stored(svc.store.list_policies)
        rules = svc.stored(svc.store.list_rules)
        for rec in records:
            if not is_policy_name(rec.name):  # stored by an earlier Charter: still served
                log.warning("policy %s was stored under a name new policies may no longer "
                            "have (%s); it loads and serves as before, but rules cannot "
                            "read its tables: copy its rules into a policy named %s",
                            rec.name, POLICY_NAME_RULE, suggested_name(rec.name))
            svc.engine.create_policy(rec.name, rec.kind)
            self.live[rec.id] = LivePolicy(rec)
        by_id = {p.record.id: p for p in self.live.values()}
        parsed: list[tuple[LivePolicy, RuleRecord, Rule]] = []
        for r in rules:
            live = by_id.get(r.policy_id)
            if live is None:
                continue
            try:
                parsed.append((live, r, parse_rule(r.rule)))
            except PolicyError as exc:
                live.broken[r.id] = exc.summary()
        try:
            svc.apply(RuleChange(live.record.name, rule, +1) for live, _, rule in parsed)
            loaded = parsed
        except CharterError:
            loaded = []  # one rule no longer loads: add them one by one, keep the rest
            for live, rec, rule in parsed:
                try:
                    svc.apply([RuleChange(live.record.name, rule, +1)])
                    loaded.append((live, rec, rule))
                except CharterError as exc:
                    live.broken[rec.id] = str(exc)
                    log.error("rule %s of policy %s did not load: %s", rec.id,
                              live.record.name, exc)
        for live, rec, rule in loaded:
            live.rules[rec.id] = (rec, rule)
        for name, kind, description in BUILTIN_POLICIES:
            if self.find(name) is None:
                self.create(name, kind=kind, description=description)

    def violation_rows(self) -> dict[str, dict[str, set[tuple]]]:
        """Each policy's ``error`` and ``warning`` rows in the engine now."""
        tables = set(self.service.engine.tables())
        out: dict[str, dict[str, set[tuple]]] = {}
        for live in self.live.values():
            policy = live.record.name
            out[policy] = {t: self.service.engine.rows(f"{policy}:{t}")
                           for t in VIOLATION_TABLES if f"{policy}:{t}" in tables}
        return out

    # ------------------------------------------------------------ policies

    def list(self) -> list[PolicyRecord]:
        with self.service.lock:
            return sorted((p.record for p in self.live.values()), key=lambda r: r.created_at)

    def find(self, ref: str) -> LivePolicy | None:
        live = self.live.get(ref)
        if live is not None:
            return live
        for p in list(self.live.values()):  # a C-level copy: lock-free readers call this
            if p.record.name == ref:
                return p
        return None

    def get(self, ref: str) -> LivePolicy:
        live = self.find(ref)
        if live is None:
            if self.service.datasources.find(ref) is not None:
                raise ServiceError(
                    f"{ref} is a datasource, not a policy: its tables are read-only to rules "
                    f"(write {ref}:<table> in a policy's rules)", code=E.RULE_NOT_PERMITTED)
            raise NotFound(f"No such policy: {ref}", code=E.POLICY_NOT_EXIST)
        return live

    def create(self, name: str | None, *, abbreviation: str | None = None,
               kind: str | None = None, description: str = "", owner: str = "user",
               rules: list[dict] | None = None,
               warnings: list[Diagnostic] | None = None,
               ) -> tuple[PolicyRecord, list[RuleRecord]]:
        """Create a policy with its rules, all or none.

        A rule given twice is created once, and a ``duplicate_rule`` warning is added to
        ``warnings`` (when given), as Congress kept the unique rules of one request.
        """
        svc = self.service
        if not name:
            raise ServiceError("Policy name is required", code=E.POLICY_NAME_MUST_BE_PROVIDED)
        problem = policy_name_problem(name)
        if problem is not None:  # Congress: "Policy name %s is not a valid tablename"
            raise ServiceError(f"invalid policy name: {problem}")
        kind = kind or "nonrecursive"
        if kind not in KINDS:
            raise ServiceError(
                f"unknown policy kind {kind!r}; use one of {', '.join(KINDS)} (Charter's "
                "engine evaluates recursion in every kind, so z3 is not needed)")
        abbreviation = abbreviation if abbreviation is not None else name[:5]
        if len(abbreviation) > 5:
            raise ServiceError(f"abbreviation {abbreviation!r} is longer than 5 characters",
                               code=E.ABBREVIATION_TOO_LONG)
        texts = [_rule_body(i, r) for i, r in enumerate(rules or [])]
        with svc.lock:
            self._refuse_taken(name)
            view = svc.engine.view()
        # Parsed and checked outside the lock: both take time in proportion to the rules.
        parsed = [self._parse(text, f"rule {i}") for i, (text, _, _) in enumerate(texts)]
        kept, found = duplicate_positions(parsed, name, request_places(parsed, "rules"))
        texts, parsed = [texts[i] for i in kept], [parsed[i] for i in kept]
        if warnings is not None:
            warnings += found
        changes = [RuleChange(name, r, +1) for r in parsed]
        checked = self._check(view, changes, new_policy=(name, kind))
        with svc.lock:
            self._refuse_taken(name)
            rec = PolicyRecord(id=str(uuid.uuid4()), name=name, abbreviation=abbreviation,
                               description=description or "", owner_id=owner, kind=kind,
                               created_at=utcnow())
            rule_recs = [RuleRecord(id=str(uuid.uuid4()), policy_id=rec.id, name=rname,
                                    rule=text, comment=comment or "", created_at=utcnow())
                         for text, rname, comment in texts]
            _unique_names(rule_recs)
            # Known before its rules apply, so the batch's decisions and audit entries can
            # name the policy's mode and rules; forgotten again if anything fails.
            live = LivePolicy(rec)
            for rr, rule in zip(rule_recs, parsed, strict=True):
                live.rules[rr.id] = (rr, rule)
            try:
                svc.engine.create_policy(name, kind)
            except CharterError as exc:
                raise self._refusal(exc) from exc
            self.live[rec.id] = live

            def forget() -> None:
                self.live.pop(rec.id, None)
                svc.engine.delete_policy(name)
                svc.published.forget(name)
                svc.violations.forget(name)

            try:
                svc.commit(changes, lambda: svc.store.create_policy(rec, rule_recs),
                           forget=forget, checked=checked)
            except CharterError as exc:  # the engine refused: nothing was applied
                forget()
                raise self._refusal(exc) from exc
            return rec, rule_recs

    def _refuse_taken(self, name: str) -> None:
        if self.find(name) is not None:
            raise Conflict(f"Policy with name {name} already exists")
        if self.service.datasources.find(name) is not None:
            raise Conflict(f"{name} is a datasource; a policy needs another name")

    @staticmethod
    def _check(view: ProgramView, changes: list[RuleChange],
               new_policy: tuple[str, str] | None = None) -> CheckedRules:
        """Check rule changes against a view of the program (outside the lock), with the
        policy ``new_policy`` (name, kind) created first if given."""
        try:
            if new_policy is not None:
                view = view.with_policy(*new_policy)
            return check_changes(view, changes)
        except CharterError as exc:
            raise Policies._refusal(exc) from exc

    @staticmethod
    def _refusal(exc: CharterError) -> ServiceError:
        if isinstance(exc, PolicyError):
            return E.rule_error(exc)
        return ServiceError(str(exc))

    def delete(self, ref: str) -> PolicyRecord:
        svc = self.service
        with svc.lock:
            live = self.get(ref)
            if any(live.record.name == name for name, _, _ in BUILTIN_POLICIES):
                # Congress refused too, and answered 404 (its KeyError) with this message
                raise NotFound(f"Cannot delete system-maintained policy {live.record.name}")
            name = live.record.name
            svc.stored(svc.store.delete_policy, live.record.id, at=utcnow(),
                       outbox=svc.notifier.outbox(name))
            svc.notifier.wake()
            deltas = svc.engine.delete_policy(name)
            svc.publish(deltas)
            svc.published.forget(name)
            svc.violations.forget(live.record.name)
            del self.live[live.record.id]
            return live.record

    # ------------------------------------------------------------ enforcement

    def set_enforcement(self, ref: str, mode: object, who: str) -> PolicyRecord:
        """Switch a policy between ``dry-run`` and ``enforce``: stored, audited, and in force
        for the next row that appears (rows already derived do not act on the switch)."""
        if mode not in MODES:
            raise ServiceError(f"enforcement mode must be one of {', '.join(MODES)}; got "
                               f"{mode!r}")
        svc = self.service
        with svc.lock:
            live = self.get(ref)
            previous = live.record.enforcement
            if previous != mode:
                entry = AuditRecord(
                    id=0, at=utcnow(), actor=who, policy=live.record.name, rule="", row=(),
                    action="enforcement.mode", arguments={"mode": mode, "previous": previous},
                    mode=str(mode), result="mode-changed", detail=f"{previous} -> {mode}")
                svc.stored(svc.store.set_enforcement, live.record.id, mode, entry)
                live.record = replace(live.record, enforcement=str(mode))
                log.warning("policy %s: enforcement %s -> %s (by %s)", live.record.name,
                            previous, mode, who)
            return live.record

    # ------------------------------------------------------------ rules

    def rules(self, ref: str) -> list[RuleRecord]:
        with self.service.lock:
            live = self.get(ref)
            stored = [rec for rec, _ in live.rules.values()]
            return sorted(stored, key=lambda r: r.created_at)

    def rule(self, ref: str, rule_ref: str) -> RuleRecord:
        with self.service.lock:
            live = self.get(ref)
            return self._rule(live, rule_ref)[0]

    def rule_status(self, ref: str, rule_ref: str) -> dict:
        with self.service.lock:
            live = self.get(ref)
            rec, rule = self._rule(live, rule_ref)
            errors, last = 0, None
            for policy, r, count, message in self.service.engine.rule_stats():
                if policy == live.record.name and r == rule:
                    errors, last = count, message
            return {"id": rec.id, "loaded": rec.id not in live.broken,
                    "load_error": live.broken.get(rec.id), "builtin_errors": errors,
                    "last_builtin_error": last}

    def _rule(self, live: LivePolicy, rule_ref: str) -> tuple[RuleRecord, Rule]:
        found = live.rules.get(rule_ref)
        if found is not None:
            return found
        for rec, rule in live.rules.values():
            if rec.name == rule_ref:
                return rec, rule
        raise NotFound(f"No such rule {rule_ref} in policy {live.record.name}")

    def add_rule(self, ref: str, text: object, name: str | None = None,
                 comment: str | None = None) -> RuleRecord:
        svc = self.service
        text, name, comment = _rule_body(0, {"rule": text, "name": name, "comment": comment})
        rule = self._parse(text, "rule")  # parsed and checked outside the lock
        with svc.lock:
            policy = self.get(ref).record.name
            view = svc.engine.view()
        change = RuleChange(policy, rule, +1)
        checked = self._check(view, [change])
        with svc.lock:
            live = self.get(ref)
            if name is not None and any(r.name == name for r, _ in live.rules.values()):
                raise Conflict(f"a rule named {name!r} already exists in policy "
                               f"{live.record.name}", code=E.RULE_ALREADY_EXISTS)
            rec = RuleRecord(id=str(uuid.uuid4()), policy_id=live.record.id, name=name,
                             rule=text, comment=comment or "", created_at=utcnow())
            live.rules[rec.id] = (rec, rule)  # for the batch's audit entries; undone below
            try:
                svc.commit([change], lambda: svc.store.add_rule(rec),
                           forget=lambda: live.rules.pop(rec.id, None), checked=checked)
            except CharterError as exc:
                live.rules.pop(rec.id, None)
                raise self._refusal(exc) from exc
            return rec

    def check_text(self, ref: str, text: str, replace_ref: str | None = None
                   ) -> list[Diagnostic]:
        """What ``charter check`` says of ``text`` as more rules of the policy, in the live
        program (:func:`charter.service.rule_check.check_rule_text`); with ``replace_ref``
        (a rule's id or name), as if the text replaced that rule. Changes nothing."""
        with self.service.lock:
            live = self.get(ref)
            replaced = self._rule(live, replace_ref)[1] if replace_ref is not None else None
            view = self.service.engine.view()
        try:
            return check_rule_text(view, live.record.name, text, replaced)
        except EngineError as exc:  # the policy or rule went meanwhile
            raise Conflict(f"{exc}: it changed while the text was checked; retry") from exc

    def replace_rule(self, ref: str, rule_ref: str, text: object, fields: Mapping[str, object]
                     ) -> RuleRecord:
        """Put new text in a rule's place, keeping its id: the old rule out and the new one in
        as one batch and one store write, so no row both derive is retracted meanwhile.

        ``fields`` holds ``name`` and ``comment`` when the request gives them (a null clears
        one); an omitted one is kept. A rule that does not check leaves the old one in place
        and raises as :meth:`add_rule` does.
        """
        svc = self.service
        text, _, _ = _rule_body(0, {"rule": text})
        for key in set(fields) & {"name", "comment"}:
            if fields[key] is not None and not isinstance(fields[key], str):
                raise ServiceError(f"'{key}' must be a string")
        rule = self._parse(text, "rule")  # parsed and checked outside the lock
        with svc.lock:
            live = self.get(ref)
            old, old_rule = self._rule(live, rule_ref)
            view = svc.engine.view()
        policy = live.record.name
        changes = [] if rule == old_rule else [RuleChange(policy, old_rule, -1),
                                                 RuleChange(policy, rule, +1)]
        checked = self._check(view, changes) if changes else None
        with svc.lock:
            live = self.get(ref)
            if live.rules.get(old.id, (None, None))[1] != old_rule:
                raise Conflict(f"rule {old.id} of policy {policy} changed or was deleted "
                               "while the new text was checked; read it again and retry")
            old = live.rules[old.id][0]
            name = fields.get("name", old.name)
            comment = fields.get("comment", old.comment)
            new = replace(old, rule=text, name=str(name) if name else None,
                          comment=str(comment or ""))
            if new.name is not None and any(r.name == new.name and r.id != old.id
                                            for r, _ in live.rules.values()):
                raise Conflict(f"a rule named {new.name!r} already exists in policy {policy}",
                               code=E.RULE_ALREADY_EXISTS)
            live.rules[old.id] = (new, rule)  # for the batch's audit entries; undone below

            def forget() -> None:
                live.rules[old.id] = (old, old_rule)

            try:
                if changes:
                    svc.commit(changes, lambda: svc.store.replace_rule(new), forget=forget,
                               checked=checked)
                else:  # the same rule (up to layout): only the store's text changes
                    svc.stored(svc.store.replace_rule, new)
            except CharterError as exc:
                forget()
                raise self._refusal(exc) from exc
            except BaseException:
                forget()
                raise
            return new

    def delete_rule(self, ref: str, rule_ref: str) -> RuleRecord:
        svc = self.service
        with svc.lock:
            live = self.get(ref)
            rec, rule = self._rule(live, rule_ref)
            svc.stored(svc.store.delete_rule, rec.id)
            svc.apply([RuleChange(live.record.name, rule, -1)])
            del live.rules[rec.id]
            return rec

    @staticmethod
    def _parse(text: str, what: str) -> Rule:
        try:
            return parse_rule(text)
        except PolicyError as exc:
            raise E.rule_error(exc, what) from exc

    # ------------------------------------------------------------ tables

    def tables(self, ref: str) -> list[str]:
        """Tables the policy's rules define or read within the policy (Congress's list)."""
        with self.service.lock:
            return sorted(self._tables_of(self.get(ref)))

    @staticmethod
    def _tables_of(live: LivePolicy) -> set[str]:
        name = live.record.name
        out: set[str] = set()
        # list(): a C-level copy, safe while a writer adds a rule (a lock-free reader calls this)
        for _, rule in list(live.rules.values()):
            for atom in rule_atoms((rule,)):
                if (atom.theory or name) == name:
                    out.add(atom.table)
        return out

    def rows(self, ref: str, table: str) -> list[tuple]:
        """The table's rows after the last batch: from the copy kept for readers, without
        waiting for a batch in progress (service/published.py); the first read of a table,
        or one that may no longer be the policy's, takes the lock."""
        svc = self.service
        live = self.get(ref)
        qualified = f"{live.record.name}:{table}"
        kept = svc.published.rows(qualified)
        if kept or (kept is not None and table in self._tables_of(live)):
            return sorted(kept, key=repr)
        with svc.lock:
            live = self.get(ref)
            if not svc.engine.has_table(qualified):
                if table in self._tables_of(live):
                    return []
                raise NotFound(f"No such table {table} in policy {live.record.name}")
            rows = svc.engine.rows(qualified)
            svc.published.keep(qualified, rows)
            return sorted(rows, key=repr)

    def defining_rules(self, ref: str, table: str) -> list[RuleRecord]:
        live = self.get(ref)
        return [rec for rec, rule in live.rules.values()
                if isinstance(rule.head, Atom) and rule.head.theory in (None, live.record.name)
                and rule.head.table == table]


def _rule_body(index: int, item: object) -> tuple[str, str | None, str | None]:
    """``(text, name, comment)`` of a rule given in JSON, or a 400 naming the field."""
    where = f"rules[{index}]"
    if not isinstance(item, dict):
        raise ServiceError(f'{where} must be an object {{"rule": "...", "name"?, "comment"?}}')
    text, name, comment = item.get("rule"), item.get("name"), item.get("comment")
    if not isinstance(text, str) or not text.strip():
        raise ServiceError(f"{where}: 'rule' must be a non-empty string of policy text",
                           code=E.RULE_SYNTAX)
    if "\x00" in text:
        raise ServiceError(f"{where}: the rule text holds a NUL character", code=E.RULE_SYNTAX)
    for field_name, value in (("name", name), ("comment", comment)):
        if value is not None and not isinstance(value, str):
            raise ServiceError(f"{where}: '{field_name}' must be a string")
    unknown = set(item) - {"rule", "name", "comment", "id"}
    if unknown:
        raise ServiceError(f"{where} has unknown keys {sorted(unknown)}; use rule, name, comment")
    return text, name or None, comment


def request_places(rules: list[Rule], field_name: str) -> list[Span | None]:
    """Where each rule of a JSON request sits, for diagnostics: ``rules[i]`` and the
    line and column within its text."""
    return [Span(f"{field_name}[{i}]", r.span.line, r.span.col) if r.span else
            Span(f"{field_name}[{i}]", 1, 1) for i, r in enumerate(rules)]


def _unique_names(rules: list[RuleRecord]) -> None:
    seen: set[str] = set()
    for r in rules:
        if r.name is not None:
            if r.name in seen:
                raise Conflict(f"two rules are named {r.name!r}", code=E.RULE_ALREADY_EXISTS)
            seen.add(r.name)
