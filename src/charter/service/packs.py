"""Packs in the running service: enabling one makes its controls' policies, and its posture
says, per control, whether the cloud passes.

Enabling is Congress's create-from-library, once per control: each control's policy (see
:mod:`charter.packs.build`) is created with the operator's parameters, and each control is
also a library policy (with the defaults), so the library lists it and
``POST /v1/policies?library_policy=OS_NET_001`` makes it alone. Enabling an enabled pack
again brings its policies to the pack and parameters now in force (a new Charter's pack, new
parameters): rules are added before old ones are removed, so a violation that stays keeps
its first sighting. Disabling deletes the policies the pack made.

The store keeps which packs are enabled, with their parameters; the policies are ordinary
policies, stored and restored as every policy is.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from charter.packs.build import (
    ControlPolicy,
    ParameterError,
    Rows,
    control_policy,
    overrides_of,
    parameter_values,
)
from charter.packs.describe import control_datasources
from charter.packs.load import Pack
from charter.packs.registry import Installed, installed_packs
from charter.packs.spec import ControlSpec
from charter.service.errors import Conflict, NotFound, ServiceError
from charter.service.service import utcnow
from charter.store.records import PackRecord

log = logging.getLogger(__name__)

PASSING, FAILING, NOT_EVALUATED = "passing", "failing", "not_evaluated"
STATUSES = (PASSING, FAILING, NOT_EVALUATED)


@dataclass
class ControlPosture:
    """One control now: its status, why it is not evaluated, its violations and when the
    oldest of them was first seen."""

    control: ControlSpec
    status: str
    reason: str | None
    rows: list[tuple[tuple, datetime | None]] = field(default_factory=list)

    @property
    def first_seen(self) -> datetime | None:
        seen = [s for _, s in self.rows if s is not None]
        return min(seen) if seen else None


@dataclass
class Posture:
    pack: Pack
    record: PackRecord
    controls: list[ControlPosture]
    at: datetime

    def summary(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for c in self.controls:
            out[c.status] += 1
        out["total"] = len(self.controls)
        return out


@functools.cache
def _installed() -> Installed:
    """The installed packs, loaded (and checked) once per process: they change only when
    distributions are installed, which needs a restart to take effect anyway."""
    return installed_packs()


class Packs:
    """The installed packs, which are enabled, enabling, disabling and posture."""

    def __init__(self, service) -> None:
        self.service = service
        self._installed: Installed | None = None
        self.enabled: dict[str, PackRecord] = {}
        self._changing = threading.Lock()  # one enable or disable at a time

    @property
    def installed(self) -> Installed:
        if self._installed is None:
            self._installed = _installed()
            for broken in self._installed.broken:
                log.error(
                    "pack %s (%s) is not available: %s", broken.name, broken.origin, broken.error
                )
        return self._installed

    @installed.setter
    def installed(self, value: Installed) -> None:
        self._installed = value

    def restore(self, seed: bool) -> None:
        """Read the enabled packs from the store; on a fresh store, put every installed
        pack's controls in the library."""
        svc = self.service
        self.enabled = {rec.id: rec for rec in svc.stored(svc.store.list_packs)}
        for pack_id in self.enabled:
            if pack_id not in self.installed.packs:
                log.error(
                    "pack %s is enabled, but no installed pack has that id: its "
                    "policies stay as they are; disable it or install it again",
                    pack_id,
                )
        if seed:
            for pack in self.installed.packs.values():
                self._library(
                    pack,
                    [self._policy(pack, c, parameter_values(pack.spec)) for c in pack.controls],
                )

    # ------------------------------------------------------------ reading

    def list(self) -> list[tuple[Pack, PackRecord | None]]:
        return [
            (p, self.enabled.get(p.id))
            for p in sorted(self.installed.packs.values(), key=lambda p: p.id)
        ]

    def get(self, ref: str) -> Pack:
        pack = self.installed.get(ref)
        if pack is not None:
            return pack
        for broken in self.installed.broken:
            if broken.name == ref:
                raise Conflict(f"pack {ref} is installed but does not load: {broken.error}")
        known = ", ".join(sorted(self.installed.packs)) or "none"
        raise NotFound(f"No pack {ref}; installed packs: {known}")

    def values(self, pack: Pack) -> Rows:
        """The parameters in force: the enabled pack's, else the defaults."""
        rec = self.enabled.get(pack.id)
        try:
            return parameter_values(pack.spec, rec.parameters if rec else None)
        except ParameterError:  # an older version's parameters: the defaults until enabled
            return parameter_values(pack.spec)

    # ------------------------------------------------------------ enable and disable

    def _policy(self, pack: Pack, control: ControlSpec, values: Rows) -> ControlPolicy:
        return control_policy(pack.spec, pack.rules, control, values)

    def _library(self, pack: Pack, policies: list[ControlPolicy]) -> None:
        """Each control as a library policy, unless one of its name exists."""
        library = self.service.library
        for cp in policies:
            if library.find(cp.name) is not None:
                continue
            try:
                library.create({"name": cp.name, "description": cp.description, "rules": cp.rules})
            except ServiceError as exc:
                log.error(
                    "control %s of pack %s is not in the library: %s", cp.name, pack.id, exc.message
                )

    def enable(
        self, ref: str, parameters: dict[str, Any] | None = None, who: str = "user"
    ) -> PackRecord:
        """Create (or bring up to date) the policies of the pack's controls.

        ``parameters`` (parameter -> rows) replace the defaults of the parameters they
        name; None keeps those of the pack as enabled before (or the defaults).

        Raises:
            NotFound: no such pack.
            ServiceError: parameters that do not fit (400, every problem listed).
            Conflict: a control's policy name is taken by a policy the pack did not make.
        """
        pack = self.get(ref)
        svc = self.service
        with self._changing:
            current = self.enabled.get(pack.id)
            if parameters is None:
                parameters = current.parameters if current is not None else {}
            try:
                values = parameter_values(pack.spec, parameters)
            except ParameterError as exc:
                raise ServiceError(
                    f"cannot enable pack {pack.id}: {exc}", data=exc.messages
                ) from None
            wanted = [self._policy(pack, c, values) for c in pack.controls]
            ours = set(current.policies) if current is not None else set()
            for cp in wanted:
                if cp.name not in ours and svc.policies.find(cp.name) is not None:
                    raise Conflict(
                        f"policy {cp.name} exists and pack {pack.id} did not make "
                        f"it; delete or rename it, then enable the pack"
                    )
            self._library(
                pack, [self._policy(pack, c, parameter_values(pack.spec)) for c in pack.controls]
            )
            created: list[str] = []
            try:
                for cp in wanted:
                    if cp.name in ours and svc.policies.find(cp.name) is not None:
                        self._bring_up_to_date(cp)
                    else:
                        svc.policies.create(
                            cp.name,
                            description=cp.description,
                            owner=who,
                            rules=[dict(r) for r in cp.rules],
                        )
                        created.append(cp.name)
                names = tuple(cp.name for cp in wanted)
                rec = PackRecord(
                    pack.id,
                    pack.spec.version,
                    overrides_of(pack.spec, values),
                    names,
                    who,
                    utcnow(),
                )
                svc.stored(svc.store.put_pack, rec)
            except BaseException:
                for name in reversed(created):  # all of it or none of it
                    try:
                        svc.policies.delete(name)
                    except ServiceError as undo:
                        log.error(
                            "policy %s of pack %s not undone: %s", name, pack.id, undo.message
                        )
                raise
            for name in sorted(ours - set(names)):  # a control the pack no longer has
                if svc.policies.find(name) is not None:
                    svc.policies.delete(name)
            self.enabled[pack.id] = rec
            return rec

    def _bring_up_to_date(self, cp: ControlPolicy) -> None:
        """The policy's rules become ``cp``'s: the new ones added, then the others removed."""
        policies = self.service.policies
        have = {r.rule: r.id for r in policies.rules(cp.name)}
        wanted = {r["rule"] for r in cp.rules}
        for rule in cp.rules:
            if rule["rule"] not in have:
                policies.add_rule(cp.name, rule["rule"], None, rule.get("comment"))
        for text, rule_id in have.items():
            if text not in wanted:
                policies.delete_rule(cp.name, rule_id)

    def disable(self, ref: str) -> PackRecord:
        """Delete the policies the pack made, and forget it was enabled."""
        pack_id = self.installed.get(ref).id if self.installed.get(ref) else ref
        svc = self.service
        with self._changing:
            rec = self.enabled.get(pack_id)
            if rec is None:
                self.get(ref)  # 404 for a pack that does not exist
                raise Conflict(f"pack {pack_id} is not enabled")
            for name in rec.policies:
                if svc.policies.find(name) is not None:
                    svc.policies.delete(name)
            svc.stored(svc.store.delete_pack, pack_id)
            del self.enabled[pack_id]
            return rec

    # ------------------------------------------------------------ posture

    def posture(self, ref: str) -> Posture:
        """Each control's status now (see :class:`ControlPosture`).

        Raises:
            NotFound: no such pack. Conflict: the pack is not enabled.
        """
        pack = self.get(ref)
        rec = self.enabled.get(pack.id)
        if rec is None:
            raise Conflict(
                f"pack {pack.id} is not enabled: enable it first (charter pack "
                f"enable {pack.id}, or POST /v1/packs/{pack.id}?action=enable)"
            )
        svc = self.service
        out = []
        with svc.lock:
            for control in pack.controls:
                out.append(self._control(pack, control))
        return Posture(pack, rec, out, utcnow())

    def _control(self, pack: Pack, control: ControlSpec) -> ControlPosture:
        svc = self.service
        name = control.policy
        if svc.policies.find(name) is None:
            return ControlPosture(
                control,
                NOT_EVALUATED,
                f"policy {name} was deleted: enable the pack again to make it",
            )
        table = f"{name}:error"
        rows = svc.engine.rows(table) if svc.engine.has_table(table) else set()
        seen = {row: at for t, row, at in svc.violations.current(name) if t == "error"}
        found = [(row, seen.get(row)) for row in sorted(rows, key=repr)]
        reason = self._missing(pack, control)
        status = NOT_EVALUATED if reason else FAILING if rows else PASSING
        return ControlPosture(control, status, reason, found)

    def _missing(self, pack: Pack, control: ControlSpec) -> str | None:
        """Why the control's datasources cannot be trusted to be complete, or None."""
        reasons = []
        for ds in control_datasources(pack, control):
            live = self.service.datasources.find(ds)
            driver = pack.spec.datasources[ds].driver or ds
            if live is None:
                reasons.append(
                    f"datasource {ds} is not configured (create it with driver {driver})"
                )
            elif not live.record.enabled:
                reasons.append(f"datasource {ds} is disabled")
            elif not live.status.initialized:
                why = f": {live.status.last_error}" if live.status.last_error else ""
                reasons.append(f"datasource {ds} has not reported yet{why}")
        return "; ".join(reasons) or None
