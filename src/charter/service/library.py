"""Library policies: named sets of rules that operators copy into live policies.

A fresh store is seeded with the policies shipped in ``charter/library/*.yaml`` and any
in the configured ``library_dir``; after that the store is the truth (a deleted library
policy stays deleted across restarts).
"""

from __future__ import annotations

import logging
import uuid
from importlib import resources
from pathlib import Path

from charter.lang.duplicates import duplicate_positions
from charter.lang.errors import Diagnostic, PolicyError
from charter.lang.library import load_library_file
from charter.lang.names import policy_name_problem
from charter.lang.parser import parse_rule
from charter.service import errors as E
from charter.service.errors import Conflict, NotFound, ServiceError
from charter.service.policies import KINDS, _rule_body, request_places
from charter.store.records import LibraryPolicyRecord, PolicyRecord, RuleRecord

log = logging.getLogger(__name__)


def shipped_files(extra: Path | None) -> list[Path]:
    files = sorted(Path(str(resources.files("charter") / "library")).glob("*.yaml"))
    if extra is not None:
        files += sorted(Path(extra).glob("*.yaml"))
    return files


class Library:
    def __init__(self, service, library_dir: Path | None = None) -> None:
        self.service = service
        self.library_dir = library_dir
        self.items: dict[str, LibraryPolicyRecord] = {}

    def restore(self, seed: bool) -> None:
        svc = self.service
        for rec in svc.stored(svc.store.list_library_policies):
            self.items[rec.id] = rec
        if not seed:
            return
        for path in shipped_files(self.library_dir):
            try:
                lib = load_library_file(path)
            except (PolicyError, OSError) as exc:
                log.error("library policy %s not loaded: %s", path, exc)
                continue
            if self.find(lib.name) is not None:
                continue
            for warning in lib.warnings:  # a rule the file writes twice: stored once
                log.warning("library policy %s: %s", path, warning)
            rules = [{"rule": r.text, "name": r.name, "comment": r.comment or ""}
                     for r in lib.rules]
            self.create({"name": lib.name, "description": lib.description, "kind": lib.kind,
                         "abbreviation": lib.abbreviation, "rules": rules})

    def list(self, name: str | None = None) -> list[LibraryPolicyRecord]:
        with self.service.lock:
            items = list(self.items.values())
        return [i for i in items if name is None or i.name == name]

    def find(self, ref: str) -> LibraryPolicyRecord | None:
        if ref in self.items:
            return self.items[ref]
        return next((i for i in self.items.values() if i.name == ref), None)

    def get(self, ref: str) -> LibraryPolicyRecord:
        with self.service.lock:
            found = self.find(ref)
        if found is None:
            raise NotFound(f"No library policy {ref}")
        return found

    def _record(self, body: object, lib_id: str,
                warnings: list[Diagnostic] | None = None) -> LibraryPolicyRecord:
        """The library policy a request body describes; a rule given twice is kept once,
        with a ``duplicate_rule`` warning added to ``warnings`` (when given)."""
        if not isinstance(body, dict):
            raise ServiceError("a library policy is a JSON object with name, rules, ...")
        if "id" in body and body["id"] != lib_id:
            raise ServiceError("a library policy's id is chosen by the server",
                               code=E.POLICY_ID_MUST_NOT_BE_PROVIDED)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise ServiceError("Library policy name is required",
                               code=E.POLICY_NAME_MUST_BE_PROVIDED)
        problem = policy_name_problem(name)
        if problem is not None:  # Congress: "name `%s` is not a valid policy name"
            raise ServiceError(f"invalid library policy name: {problem}")
        kind = body.get("kind") or "nonrecursive"
        if kind not in KINDS:
            raise ServiceError(f"unknown policy kind {kind!r}; use one of {', '.join(KINDS)}")
        abbreviation = body.get("abbreviation") or name[:5]
        if len(abbreviation) > 5:
            raise ServiceError(f"abbreviation {abbreviation!r} is longer than 5 characters",
                               code=E.ABBREVIATION_TOO_LONG)
        raw_rules = body.get("rules", [])
        if not isinstance(raw_rules, list):
            raise ServiceError("'rules' must be a list of {rule, name?, comment?} objects")
        rules, parsed = [], []
        for i, item in enumerate(raw_rules):
            text, rname, comment = _rule_body(i, item)
            try:
                parsed.append(parse_rule(text))
            except PolicyError as exc:
                raise E.rule_error(exc, f"rules[{i}]") from exc
            rules.append({"rule": text, "name": rname, "comment": comment or ""})
        kept, found = duplicate_positions(parsed, name, request_places(parsed, "rules"))
        rules = [rules[i] for i in kept]
        if warnings is not None:
            warnings += found
        return LibraryPolicyRecord(id=lib_id, name=name,
                                   description=str(body.get("description") or ""),
                                   abbreviation=abbreviation, kind=kind, rules=rules)

    def create(self, body: object,
               warnings: list[Diagnostic] | None = None) -> LibraryPolicyRecord:
        svc = self.service
        rec = self._record(body, str(uuid.uuid4()), warnings)
        with svc.lock:
            if self.find(rec.name) is not None:
                raise Conflict(f"a library policy named {rec.name} already exists")
            svc.stored(svc.store.put_library_policy, rec)
            self.items[rec.id] = rec
        return rec

    def replace(self, ref: str, body: object,
                warnings: list[Diagnostic] | None = None) -> LibraryPolicyRecord:
        svc = self.service
        rec = self._record(body, self.get(ref).id, warnings)  # parsed outside the lock
        with svc.lock:
            old = self.get(ref)
            if old.id != rec.id:  # replaced by another request meanwhile
                raise NotFound(f"No library policy {ref}")
            other = self.find(rec.name)
            if other is not None and other.id != old.id:
                raise Conflict(f"a library policy named {rec.name} already exists")
            svc.stored(svc.store.put_library_policy, rec)
            self.items[rec.id] = rec
        return rec

    def delete(self, ref: str) -> LibraryPolicyRecord:
        svc = self.service
        with svc.lock:
            rec = self.get(ref)
            svc.stored(svc.store.delete_library_policy, rec.id)
            del self.items[rec.id]
        return rec

    def activate(self, ref: str, owner: str = "user",
                 warnings: list[Diagnostic] | None = None,
                 ) -> tuple[PolicyRecord, list[RuleRecord]]:
        """Create a live policy from a library policy (``POST /v1/policies?library_policy=``)."""
        lib = self.get(ref)
        return self.service.policies.create(
            lib.name, abbreviation=lib.abbreviation, kind=lib.kind,
            description=lib.description, owner=owner, rules=[dict(r) for r in lib.rules],
            warnings=warnings)
