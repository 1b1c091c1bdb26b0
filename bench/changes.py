"""The cloud workload's change streams: 1,000 single-row changes, then a poll-sized batch.

Both are drawn from one seeded script that tracks the current rows of every base table
(starting from the generated tables with U1 and U2 applied), so a delete always names a row
that exists and an insert always adds a row that does not (fresh ids). The script is
deterministic in ``(n, seed)``: the Charter child and the DuckDB child each rebuild it and
get the same changes, so the DuckDB baseline can recompute the state Charter reached.

- **single changes** (``ChangeScript.singles``): ``count`` changes, each its own batch. The
  table is uniform over the five tables, the kind is an insert or a delete with equal
  odds. An insert is a new row with a fresh id and values drawn like the generator's
  (a server of a uniform tenant, image, flavor, host and status; a port of a uniform
  existing server, on one of its tenant's networks with p = 0.95; a network of a uniform
  tenant, shared with p = 0.2; an image, approved with p = 0.9; a member edge from a fresh
  node to an existing one). A delete removes a uniformly chosen existing row.
- **poll batch** (``ChangeScript.batch``): one batch changing ``fraction`` of the servers
  (each a delete plus an insert of the same id with a new status or a new image, half each)
  and ``fraction`` of the ports (same id and server, a new network drawn like the
  generator's), taken from the generated rows still present after the single changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.workload import (
    APPROVED_P,
    OWN_NET_P,
    SHARED_P,
    TABLES,
    Change,
    Row,
    Workload,
    sizes,
)

DEFAULT_SINGLES = 1000
DEFAULT_FRACTION = 0.01


class _TableModel:
    """The current rows of one table: the generated columns minus deletions, plus additions.

    Rows are addressed by a slot: ``0 .. len(generated) - 1`` for the generated rows, then
    one slot per added row. ``pick`` draws a live slot uniformly (rejection sampling: only a
    few thousand slots are ever dead).
    """

    def __init__(self, columns: dict[str, np.ndarray]):
        self.cols = list(columns.values())
        self.base = len(self.cols[0])
        self.dead: set[int] = set()
        self.added: list[Row | None] = []
        self.live = self.base

    def row(self, slot: int) -> Row:
        if slot < self.base:
            return tuple(int(c[slot]) for c in self.cols)
        row = self.added[slot - self.base]
        assert row is not None
        return row

    def pick(self, rng: np.random.Generator) -> int:
        total = self.base + len(self.added)
        while True:
            slot = int(rng.integers(0, total))
            if slot not in self.dead:
                return slot

    def delete(self, slot: int) -> Row:
        row = self.row(slot)
        self.dead.add(slot)
        if slot >= self.base:
            self.added[slot - self.base] = None
        self.live -= 1
        return row

    def insert(self, row: Row) -> None:
        self.added.append(row)
        self.live += 1

    def find(self, row: Row) -> int:
        """The live slot holding ``row`` (a vectorised scan of the generated rows first)."""
        match = np.ones(self.base, dtype=bool)
        for col, value in zip(self.cols, row, strict=True):
            match &= col == value
        for slot in np.flatnonzero(match).tolist():
            if slot not in self.dead:
                return slot
        for i, r in enumerate(self.added):
            if r == row:
                return self.base + i
        raise KeyError(row)


@dataclass(frozen=True)
class ChangeScript:
    """The single changes (each its own batch) and the poll batch that follows them."""

    singles: tuple[Change, ...]
    batch: tuple[Change, ...]
    #: Rows per base table once U1, U2, the single changes and the batch are applied.
    final_sizes: dict[str, int]


class _Script:
    def __init__(self, workload: Workload, seed: int):
        self.w = workload
        self.rng = np.random.default_rng([workload.seed, seed])
        self.models = {t: _TableModel(workload.tables[t]) for t in TABLES}
        sz = sizes(workload.n)
        self.n_tenants, self.n_hosts = sz["tenants"], sz["hosts"]
        self.n_images, self.n_nets = sz["images"], sz["networks"]
        nets = workload.tables["networks"]
        self.nets_by_tenant: dict[int, np.ndarray] = {}
        order = np.argsort(nets["tenant"], kind="stable")
        tenants, starts = np.unique(nets["tenant"][order], return_index=True)
        for t, part in zip(tenants.tolist(), np.split(order, starts[1:]), strict=True):
            self.nets_by_tenant[t] = nets["id"][part]
        member = workload.tables["member"]
        self.next_id = {
            "servers": int(workload.tables["servers"]["id"].max()) + 1,
            "ports": int(workload.tables["ports"]["id"].max()) + 1,
            "networks": int(nets["id"].max()) + 1,
            "images": int(workload.tables["images"]["id"].max()) + 1,
            "member": int(max(member["child"].max(), member["parent"].max())) + 1,
        }
        self.server_tenant = workload.tables["servers"]["tenant"]

    def fresh(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value

    def apply(self, change: Change) -> None:
        table, row, sign = change
        model = self.models[table]
        if sign > 0:
            model.insert(row)
            self.next_id[table] = max(self.next_id[table], row[0] + 1)
        else:
            model.delete(model.find(row))

    def network_for(self, tenant: int) -> int:
        rng = self.rng
        own = self.nets_by_tenant.get(tenant)
        if own is not None and rng.random() < OWN_NET_P:
            return int(own[rng.integers(0, len(own))])
        return int(rng.integers(0, self.n_nets))

    def new_row(self, table: str) -> Row:
        rng = self.rng
        if table == "servers":
            return (
                self.fresh("servers"),
                int(rng.integers(0, self.n_tenants)),
                int(rng.integers(0, self.n_images)),
                int(rng.integers(0, 5)),
                int(rng.integers(0, self.n_hosts)),
                int(rng.integers(0, 3)),
            )
        if table == "ports":
            servers = self.models["servers"]
            server = servers.row(servers.pick(rng))
            return (self.fresh("ports"), server[0], self.network_for(server[1]))
        if table == "networks":
            tenant = int(rng.integers(0, self.n_tenants))
            return (self.fresh("networks"), tenant, int(rng.random() < SHARED_P))
        if table == "images":
            return (self.fresh("images"), int(rng.random() < APPROVED_P))
        if table == "member":
            member = self.models["member"]
            parent = member.row(member.pick(rng))[0]  # a node of some group
            return (self.fresh("member"), parent)
        raise ValueError(table)

    def singles(self, count: int) -> list[Change]:
        out: list[Change] = []
        for _ in range(count):
            table = TABLES[int(self.rng.integers(0, len(TABLES)))]
            model = self.models[table]
            if self.rng.random() < 0.5 and model.live > 0:
                out.append((table, model.delete(model.pick(self.rng)), -1))
            else:
                row = self.new_row(table)
                model.insert(row)
                out.append((table, row, +1))
        return out

    def _sample(self, table: str, fraction: float) -> np.ndarray:
        """About ``fraction`` of the generated rows of ``table`` still present, sorted."""
        model = self.models[table]
        k = max(1, round(fraction * model.live))
        slots = self.rng.choice(
            model.base, size=min(model.base, k + len(model.dead)), replace=False
        )
        keep = np.array([s not in model.dead for s in slots.tolist()], dtype=bool)
        return np.sort(slots[keep][:k])

    def _replace(self, table: str, slots: np.ndarray, rows: list[Row]) -> None:
        model = self.models[table]
        for slot in slots.tolist():
            model.delete(slot)
        for row in rows:
            model.insert(row)

    def batch(self, fraction: float) -> list[Change]:
        rng = self.rng
        out: list[Change] = []
        if fraction <= 0:
            return out
        servers = self.w.tables["servers"]
        slots = self._sample("servers", fraction)
        cols = {c: servers[c][slots].copy() for c in servers}
        old = list(zip(*(c.tolist() for c in cols.values()), strict=True))
        image = rng.random(len(slots)) < 0.5  # else the status changes; either way, a new row
        shift_img = rng.integers(1, max(2, self.n_images), len(slots))
        shift_st = rng.integers(1, 3, len(slots))
        cols["image"] = np.where(image, (cols["image"] + shift_img) % self.n_images, cols["image"])
        cols["status"] = np.where(image, cols["status"], (cols["status"] + shift_st) % 3)
        new = list(zip(*(c.tolist() for c in cols.values()), strict=True))
        self._replace("servers", slots, new)
        out += [("servers", r, -1) for r in old] + [("servers", r, +1) for r in new]

        ports = self.w.tables["ports"]
        slots = self._sample("ports", fraction)
        pid, sid, nid = (ports[c][slots] for c in ("id", "server_id", "network_id"))
        tenant = self.server_tenant[sid]
        new_net = np.array([self.network_for(t) for t in tenant.tolist()], dtype=np.int64)
        same = new_net == nid
        shift = 1 + rng.integers(0, self.n_nets - 1, int(same.sum()))
        new_net[same] = (nid[same] + shift) % self.n_nets  # always a different network
        old_p = list(zip(pid.tolist(), sid.tolist(), nid.tolist(), strict=True))
        new_p = list(zip(pid.tolist(), sid.tolist(), new_net.tolist(), strict=True))
        self._replace("ports", slots, new_p)
        out += [("ports", r, -1) for r in old_p] + [("ports", r, +1) for r in new_p]
        return out


def change_script(
    workload: Workload,
    singles: int = DEFAULT_SINGLES,
    fraction: float = DEFAULT_FRACTION,
    seed: int = 1,
) -> ChangeScript:
    """The change streams following U1 and U2 on ``workload`` (deterministic).

    >>> from bench.workload import generate
    >>> s = change_script(generate(1000), singles=20)
    >>> len(s.singles), len([c for c in s.batch if c[0] == "servers"])
    (20, 20)
    """
    script = _Script(workload, seed)
    for update in workload.updates():
        for change in update.changes:
            script.apply(change)
    ones = tuple(script.singles(singles))
    batch = tuple(script.batch(fraction))
    final = {t: script.models[t].live for t in TABLES}
    return ChangeScript(ones, batch, final)


def net_changes(changes: tuple[Change, ...] | list[Change]) -> dict[str, dict[Row, int]]:
    """Per table, each changed row's last sign: what the changes amount to as one batch."""
    out: dict[str, dict[Row, int]] = {t: {} for t in TABLES}
    for table, row, sign in changes:
        out[table][row] = sign
    return out
