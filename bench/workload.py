"""The cloud-inventory workload: a seeded, vectorised generator and its two updates.

Everything is drawn with NumPy from one ``numpy.random.Generator`` in a fixed order, so a
given ``(n, seed)`` always yields the same tables, and generation at N = 1M stays well under
a second (no Python loop over rows). Sizes follow the workload's table:

=========  ================  =====================================================
table      rows              columns
=========  ================  =====================================================
servers    N                 id, tenant, image, flavor, host, status
ports      2N                id, server_id, network_id
networks   max(10, N/10)     id, tenant, shared
images     max(10, N/100)    id, approved
member     max(10, N/10)     child, parent
=========  ================  =====================================================

3.21 N input rows in all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_SEED = 42

#: Column names of each base table, in positional order (the order of a row tuple).
COLUMNS: dict[str, tuple[str, ...]] = {
    "servers": ("id", "tenant", "image", "flavor", "host", "status"),
    "ports": ("id", "server_id", "network_id"),
    "networks": ("id", "tenant", "shared"),
    "images": ("id", "approved"),
    "member": ("child", "parent"),
}

TABLES: tuple[str, ...] = tuple(COLUMNS)

#: The derived tables both engines report (``count`` of distinct rows each).
RESULTS: tuple[str, ...] = ("p1", "p2", "p3")

GROUP_SIZE = 32  # nodes per member group (a near-chain)
CYCLE_P = 0.05  # share of groups whose root gets an edge back to the group's last node
OWN_NET_P = 0.95  # share of ports on a network of the server's own tenant
SHARED_P = 0.2
APPROVED_P = 0.9

Row = tuple[int, ...]
#: One row change: (table, row, sign) with sign +1 (insert) or -1 (delete).
Change = tuple[str, Row, int]


@dataclass(frozen=True)
class Update:
    """A named batch of row changes applied as one transaction (U1 or U2)."""

    name: str
    changes: tuple[Change, ...]


@dataclass
class Workload:
    """The generated base tables: ``tables[name][column]`` is an int64 NumPy array."""

    n: int
    seed: int
    tables: dict[str, dict[str, np.ndarray]] = field(repr=False)

    def num_rows(self, table: str) -> int:
        """Number of rows of ``table``."""
        return len(next(iter(self.tables[table].values())))

    def total_rows(self) -> int:
        """Number of input rows over all base tables (about 3.21 N)."""
        return sum(self.num_rows(t) for t in self.tables)

    def rows(self, table: str) -> list[Row]:
        """``table`` as a list of Python-int tuples, built in C (``tolist`` + ``zip``)."""
        cols = [c.tolist() for c in self.tables[table].values()]
        return list(zip(*cols, strict=True))

    def u1(self) -> Update:
        """U1: the lowest-id approved image used by some server becomes unapproved."""
        images = self.tables["images"]
        used = np.zeros(len(images["id"]), dtype=bool)
        used[self.tables["servers"]["image"]] = True  # image ids are 0..I-1
        candidates = images["id"][(images["approved"] == 1) & used[images["id"]]]
        if len(candidates) == 0:
            raise ValueError("no approved image is used by a server")
        i = int(candidates.min())
        return Update("U1", (("images", (i, 1), -1), ("images", (i, 0), +1)))

    def u2(self) -> Update:
        """U2: a new port (fresh id) of server 0 on another tenant's non-shared network."""
        servers, networks = self.tables["servers"], self.tables["networks"]
        tenant0 = servers["tenant"][servers["id"] == 0][0]
        ok = (networks["tenant"] != tenant0) & (networks["shared"] == 0)
        if not ok.any():
            raise ValueError("no non-shared network of another tenant")
        net = int(networks["id"][ok].min())
        port = int(self.tables["ports"]["id"].max()) + 1
        return Update("U2", (("ports", (port, 0, net), +1),))

    def updates(self) -> tuple[Update, Update]:
        """U1 then U2; U2 is applied to the state U1 left."""
        return self.u1(), self.u2()


def sizes(n: int) -> dict[str, int]:
    """Row counts per table for parameter ``n`` (and the domains the columns draw from)."""
    return {
        "servers": n,
        "ports": 2 * n,
        "networks": max(10, n // 10),
        "images": max(10, n // 100),
        "member": max(10, n // 10),
        "tenants": max(5, n // 200),
        "hosts": max(5, n // 50),
    }


def generate(n: int, seed: int = DEFAULT_SEED) -> Workload:
    """Generate the workload for ``n`` servers.

    >>> w = generate(1000)
    >>> [w.num_rows(t) for t in TABLES]
    [1000, 2000, 100, 10, 100]
    >>> w.total_rows() == generate(1000).total_rows() == 3210
    True
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    rng = np.random.default_rng(seed)
    sz = sizes(n)
    n_tenants, n_images, n_nets = sz["tenants"], sz["images"], sz["networks"]

    images = {
        "id": np.arange(n_images, dtype=np.int64),
        "approved": (rng.random(n_images) < APPROVED_P).astype(np.int64),
    }
    networks = {
        "id": np.arange(n_nets, dtype=np.int64),
        "tenant": rng.integers(0, n_tenants, n_nets, dtype=np.int64),
        "shared": (rng.random(n_nets) < SHARED_P).astype(np.int64),
    }
    servers = {
        "id": np.arange(n, dtype=np.int64),
        "tenant": rng.integers(0, n_tenants, n, dtype=np.int64),
        "image": rng.integers(0, n_images, n, dtype=np.int64),
        "flavor": rng.integers(0, 5, n, dtype=np.int64),
        "host": rng.integers(0, sz["hosts"], n, dtype=np.int64),
        "status": rng.integers(0, 3, n, dtype=np.int64),
    }
    ports = _ports(rng, servers["tenant"], networks["tenant"], sz["ports"], n_tenants)
    member = _member(rng, sz["member"])
    tables = {
        "servers": servers,
        "ports": ports,
        "networks": networks,
        "images": images,
        "member": member,
    }
    return Workload(n=n, seed=seed, tables=tables)


def _ports(
    rng: np.random.Generator,
    server_tenant: np.ndarray,
    net_tenant: np.ndarray,
    count: int,
    n_tenants: int,
) -> dict[str, np.ndarray]:
    """Ports on uniform servers; 95% on one of the server's tenant's networks.

    Networks are grouped by tenant once (a stable argsort plus offsets), so picking "a random
    network of tenant t" is an index computation. A tenant without networks (only possible
    at tiny N) falls back to any network.
    """
    n_servers, n_nets = len(server_tenant), len(net_tenant)
    server = rng.integers(0, n_servers, count, dtype=np.int64)
    own = rng.random(count) < OWN_NET_P
    pick = rng.random(count)
    anynet = rng.integers(0, n_nets, count, dtype=np.int64)

    by_tenant = np.argsort(net_tenant, kind="stable")
    per_tenant = np.bincount(net_tenant, minlength=n_tenants)
    start = np.concatenate(([0], np.cumsum(per_tenant)[:-1]))
    tenant = server_tenant[server]
    have = per_tenant[tenant]
    offset = np.minimum((pick * have).astype(np.int64), np.maximum(have - 1, 0))
    own_net = by_tenant[np.minimum(start[tenant] + offset, n_nets - 1)]
    network = np.where(own & (have > 0), own_net, anynet)
    return {
        "id": np.arange(count, dtype=np.int64),
        "server_id": server,
        "network_id": network.astype(np.int64),
    }


def _member(rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    """``count`` child->parent edges: groups of 32 nodes forming near-chains.

    In group g the nodes are ``32g .. 32g+31``, the first being the root. Node j > 0 has
    parent ``max(j - k, 0)`` with k uniform in 1..3. In 5% of the groups the root also gets
    the group's last node as parent, closing a cycle. Edges are listed group by group (the
    back edge last) and cut at ``count``.
    """
    per_group = GROUP_SIZE - 1  # chain edges per group
    n_groups = count // per_group + 1
    j = np.arange(1, GROUP_SIZE, dtype=np.int64)
    back = rng.integers(1, 4, (n_groups, per_group), dtype=np.int64)
    base = (np.arange(n_groups, dtype=np.int64) * GROUP_SIZE)[:, None]
    child = np.empty((n_groups, GROUP_SIZE), dtype=np.int64)
    parent = np.empty((n_groups, GROUP_SIZE), dtype=np.int64)
    child[:, :per_group] = base + j
    parent[:, :per_group] = base + np.maximum(j - back, 0)
    child[:, per_group] = base[:, 0]  # the root ...
    parent[:, per_group] = base[:, 0] + GROUP_SIZE - 1  # ... points at the last node
    valid = np.ones((n_groups, GROUP_SIZE), dtype=bool)
    valid[:, per_group] = rng.random(n_groups) < CYCLE_P
    keep = valid.ravel()
    return {
        "child": child.ravel()[keep][:count],
        "parent": parent.ravel()[keep][:count],
    }
