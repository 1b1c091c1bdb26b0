"""A real Ceph 16 cluster for tests: 1 mon, 1 mgr and 3 memstore OSDs on 127.0.0.1.

The session fixture ``ceph_cluster`` builds the cluster in a temp dir (no cephx, pool size
1, memstore OSDs so no block device is needed), waits for the 3 OSDs to be up and the
test pool's placement groups to be active+clean, and at the end stops every daemon by the
PID in its pid file. The packages come from Debian (``.ci/ceph.sh``, run here when the
binaries are missing). Use it from a test module with::

    from tests.realservices import ceph as realceph
    ceph_cluster = realceph.ceph_cluster  # (an import would trip ruff's F811)

The ``CephCluster`` helpers stop and start single daemons (an OSD, the mon) so tests can
change the cluster for real; each waits until the cluster has seen the change.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.realservices.ports import reserve_port

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = ROOT / ".ci" / "ceph.sh"
HOST = "127.0.0.1"  # never anything else
BINARIES = ("ceph", "ceph-mon", "ceph-mgr", "ceph-osd", "monmaptool", "rados")
OSDS = 3
POOL = "testpool"
POOL_PGS = 8
# OSD flags a test may set and CephCluster.restore clears.
TEST_FLAGS = ("noout", "noin", "nodown", "noup", "noscrub", "nodeep-scrub", "norebalance",
              "norecover", "nobackfill", "pause")
START_TIMEOUT = 180.0  # the recipe takes ~18 s; a loaded 2-core machine much longer

CONF = """\
[global]
fsid = {fsid}
mon host = {mon_addrs}
public addr = {host}
auth cluster required = none
auth service required = none
auth client required = none
mon warn on insecure global id reclaim allowed = false
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd crush chooseleaf type = 0
run dir = {d}/run
pid file = {d}/run/$name.pid
admin socket = {d}/run/$name.asok
log file = {d}/log/$name.log
mon data avail warn = 1
mon data avail crit = 0
ms bind port min = {port_min}
ms bind port max = {port_max}
[mon]
mon data = {d}/mon/$name
mon allow pool delete = true
mon warn on pool no redundancy = false
[mgr]
mgr data = {d}/mgr/$name
[osd]
osd data = {d}/osd/$name
osd objectstore = memstore
memstore device bytes = 536870912
# Beyond the recipe: memstore writes its data out only on a full shutdown, and the default
# fast one skips it, so a stopped-and-restarted OSD would come back empty.
osd fast shutdown = false
"""


class CephError(RuntimeError):
    """The test cluster could not be set up or changed; the message says why."""


def ceph_installed() -> bool:
    return all(shutil.which(b) for b in BINARIES)


def ensure_installed() -> None:
    """Install the packages with .ci/ceph.sh when a binary is missing, or fail saying so."""
    if ceph_installed():
        return
    done = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True,
                          check=False, timeout=900)
    if done.returncode != 0 or not ceph_installed():
        raise CephError(
            f"the tests marked 'ceph' need {', '.join(BINARIES)} (Debian packages ceph-mon "
            f"ceph-mgr ceph-osd ceph-common); {INSTALL_SCRIPT} failed (exit "
            f"{done.returncode}): run `bash .ci/ceph.sh` as root to see why. Last output:\n"
            + (done.stdout + done.stderr)[-3000:]
        )


def free_port_range(size: int = 100) -> tuple[int, int]:
    """A block of ports that are all free now, for the daemons' ``ms bind port`` range.

    Ceph takes the next port of its range when one is busy, so a port taken later only
    moves a daemon along; the probe just keeps clear of other clusters' ranges.
    """
    for _ in range(50):
        low = random.randrange(20000, 30000 - size)
        socks: list[socket.socket] = []
        try:
            for port in range(low, low + size):
                s = socket.socket()
                socks.append(s)
                s.bind((HOST, port))
            return low, low + size - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise CephError(f"no block of {size} free ports in 20000-30000 on {HOST}")


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone: nobody may ever reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_for(what: str, check: Callable[[], bool], timeout: float, pause: float = 0.5) -> None:
    """Call ``check`` until it is true; a check that fails (the CLI hangs or errs) is "not yet"."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            if check():
                return
        except (CephError, subprocess.TimeoutExpired, ValueError, KeyError) as exc:
            last = f" (last: {exc})"
        if time.monotonic() > deadline:
            raise CephError(f"timed out after {timeout:.0f} s waiting for {what}{last}")
        time.sleep(pause)


@dataclass
class CephCluster:
    """A running test cluster and helpers to run the ceph CLI and stop/start its daemons."""

    directory: Path
    fsid: str
    mon_port_v2: int
    mon_port_v1: int
    osd_hosts: dict[int, str] = field(default_factory=dict)  # OSD id -> its CRUSH host
    started_in: float = 0.0

    @property
    def conf(self) -> Path:
        return self.directory / "ceph.conf"

    @property
    def mon_addrs(self) -> str:
        return f"[v2:{HOST}:{self.mon_port_v2},v1:{HOST}:{self.mon_port_v1}]"

    # ------------------------------------------------------------ the CLI

    def run(self, *args: str, timeout: float = 60) -> str:
        cmd = ["ceph", "-c", str(self.conf), "--connect-timeout", "30", *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              check=False)
        if done.returncode != 0:
            raise CephError(f"{' '.join(cmd)} exited {done.returncode}: "
                            f"{done.stderr.strip()[-2000:]}")
        return done.stdout

    def json(self, *args: str, timeout: float = 60) -> Any:
        return json.loads(self.run(*args, "-f", "json", timeout=timeout))

    def osds_up(self) -> set[int]:
        return {o["osd"] for o in self.json("osd", "dump", timeout=20)["osds"] if o["up"]}

    def osds_in(self) -> set[int]:
        return {o["osd"] for o in self.json("osd", "dump", timeout=20)["osds"] if o["in"]}

    def pg_states(self) -> dict[str, str]:
        stats = self.json("pg", "dump", "pgs_brief", timeout=20)
        stats = stats.get("pg_stats", stats) if isinstance(stats, dict) else stats
        return {p["pgid"]: p["state"] for p in stats}

    def all_pgs_clean(self) -> bool:
        states = self.pg_states()
        return bool(states) and all(s == "active+clean" for s in states.values())

    def wait_healthy(self, timeout: float = 120) -> None:
        """Every OSD up and in and every PG active+clean: the state each test starts from."""
        everyone = set(self.osd_hosts)

        def up_and_in() -> bool:
            osds = self.json("osd", "dump", timeout=20)["osds"]
            return {o["osd"] for o in osds if o["up"] and o["in"]} == everyone

        wait_for(f"OSDs {sorted(everyone)} up and in", up_and_in, timeout)
        wait_for("every placement group active+clean", self.all_pgs_clean, timeout)

    # ------------------------------------------------------------ daemons

    def pid_file(self, daemon: str) -> Path:
        return self.directory / "run" / f"{daemon}.pid"

    def pid(self, daemon: str) -> int | None:
        try:
            return int(self.pid_file(daemon).read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def _daemon(self, cmd: list[str], daemon: str) -> None:
        """Start a daemon (it forks into the background) and wait for its pid file."""
        self.pid_file(daemon).unlink(missing_ok=True)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise CephError(f"{' '.join(cmd)} exited {done.returncode}: "
                            f"{(done.stdout + done.stderr).strip()[-2000:]}\n{self.log(daemon)}")
        wait_for(f"{daemon}'s pid file", lambda: self.pid(daemon) is not None, 30, 0.1)

    def log(self, daemon: str) -> str:
        path = self.directory / "log" / f"{daemon}.log"
        tail = path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"
        return f"--- {path} (end):\n{tail}"

    def stop_daemon(self, daemon: str, timeout: float = 30) -> None:
        """SIGTERM by pid file, SIGKILL if it lingers (a memstore OSD saves its data on TERM)."""
        pid = self.pid(daemon)
        if pid is None or not _alive(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        try:
            wait_for(f"{daemon} (pid {pid}) to exit", lambda: not _alive(pid), timeout, 0.1)
        except CephError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.pid_file(daemon).unlink(missing_ok=True)

    def start_mon(self) -> None:
        self._daemon(["ceph-mon", "-c", str(self.conf), "-i", "a"], "mon.a")

    def start_mgr(self) -> None:
        self._daemon(["ceph-mgr", "-c", str(self.conf), "-i", "x"], "mgr.x")

    def start_osd(self, osd: int) -> None:
        location = f"root=default host={self.osd_hosts[osd]}"
        self._daemon(["ceph-osd", "-c", str(self.conf), "-i", str(osd),
                      "--crush-location", location], f"osd.{osd}")

    def stop_osd(self, osd: int, timeout: float = 60) -> None:
        """Stop an OSD's process and wait until the cluster has marked it down."""
        self.stop_daemon(f"osd.{osd}")
        wait_for(f"osd.{osd} marked down", lambda: osd not in self.osds_up(), timeout)

    def restart_osd(self, osd: int, timeout: float = 90) -> None:
        self.start_osd(osd)
        wait_for(f"osd.{osd} up again", lambda: osd in self.osds_up(), timeout)

    def alive(self, daemon: str) -> bool:
        pid = self.pid(daemon)
        return pid is not None and _alive(pid)

    def restore(self, timeout: float = 120) -> None:
        """Undo what a test changed: every daemon running, every OSD in at full weight, no
        test flag, no quota; then wait until all is healthy again."""
        if not self.alive("mon.a"):
            self.start_mon()
        if not self.alive("mgr.x"):
            self.start_mgr()
        for osd in self.osd_hosts:
            if not self.alive(f"osd.{osd}"):
                self.start_osd(osd)
        dump: dict = {}

        def read_dump() -> bool:
            dump.update(self.json("osd", "dump", timeout=20))
            return True

        wait_for("the mon to answer", read_dump, timeout)
        for o in dump["osds"]:
            if not o["in"]:
                self.run("osd", "in", str(o["osd"]))
            if o["weight"] != 1:
                self.run("osd", "reweight", str(o["osd"]), "1")
        for flag in set(dump.get("flags_set", [])) & set(TEST_FLAGS):
            self.run("osd", "unset", flag)
        for pool in dump["pools"]:
            for quota in ("max_objects", "max_bytes"):
                if pool.get(f"quota_{quota}"):
                    self.run("osd", "pool", "set-quota", pool["pool_name"], quota, "0")
        self.wait_healthy(timeout)

    def stop(self) -> None:
        """Stop every daemon whose pid file exists: OSDs first, then the mgr, the mon last."""
        run = self.directory / "run"
        names = sorted(p.stem for p in run.glob("*.pid")) if run.exists() else []
        order = [n for n in names if n.startswith("osd.")] + \
            [n for n in names if n.startswith("mgr.")] + [n for n in names if n.startswith("mon.")]
        order += [n for n in names if n not in order]
        for name in order:
            self.stop_daemon(name)


def _create(root: Path, reservations: list[socket.socket]) -> CephCluster:
    """Build and start the cluster of real-services.md section 4 under ``root``; the
    reservations of the mon's ports go into ``reservations``, for the caller to close
    once the cluster is gone."""
    for sub in ("run", "log", "mon", "mgr/mgr.x", "osd"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    port_min, port_max = free_port_range()
    # The mon's two ports, reserved until the cluster is gone (see ports.reserve_port): a
    # port merely free now could be taken before the mon binds it, or while a test has the
    # mon stopped. (The other daemons take any free port of the range.)
    mon_ports: list[int] = []
    while len(mon_ports) < 2:
        s = reserve_port()
        reservations.append(s)
        if not port_min <= s.getsockname()[1] <= port_max:
            mon_ports.append(s.getsockname()[1])
    v2, v1 = mon_ports
    cluster = CephCluster(root, str(uuid.uuid4()), v2, v1)
    cluster.conf.write_text(CONF.format(fsid=cluster.fsid, mon_addrs=cluster.mon_addrs,
                                        host=HOST, d=root, port_min=port_min,
                                        port_max=port_max))
    conf = str(cluster.conf)
    monmap = str(root / "monmap")
    subprocess.run(["monmaptool", "--create", "--fsid", cluster.fsid, "--addv", "a",
                    cluster.mon_addrs, monmap], check=True, capture_output=True, timeout=60)
    subprocess.run(["ceph-mon", "-c", conf, "--mkfs", "-i", "a", "--monmap", monmap],
                   check=True, capture_output=True, timeout=120)
    cluster.start_mon()
    cluster.start_mgr()
    for n in range(OSDS):
        osd_uuid = str(uuid.uuid4())
        osd = int(cluster.run("osd", "new", osd_uuid).strip())
        (root / "osd" / f"osd.{osd}").mkdir(parents=True, exist_ok=True)
        subprocess.run(["ceph-osd", "-c", conf, "-i", str(osd), "--mkfs", "--osd-uuid",
                        osd_uuid], check=True, capture_output=True, timeout=120)
        host = f"host{n}"
        cluster.run("osd", "crush", "add-bucket", host, "host")
        cluster.run("osd", "crush", "move", host, "root=default")
        cluster.osd_hosts[osd] = host
        cluster.start_osd(osd)
    wait_for(f"{OSDS} OSDs up", lambda: len(cluster.osds_up()) == OSDS, START_TIMEOUT)
    # Two copies and some objects, so a stopped OSD leaves real degraded PGs behind (a PG
    # without objects is only undersized); a fixed pg_num so the PG list stays put.
    cluster.run("osd", "pool", "create", POOL, str(POOL_PGS), str(POOL_PGS),
                "--autoscale-mode=off")
    cluster.run("osd", "pool", "set", POOL, "size", "2")
    cluster.run("osd", "pool", "application", "enable", POOL, "rbd")
    cluster.wait_healthy(START_TIMEOUT)
    subprocess.run(["rados", "-c", conf, "-p", POOL, "bench", "1", "write", "-b", "4096",
                    "-t", "4", "--no-cleanup"], check=True, capture_output=True, timeout=120)
    cluster.wait_healthy(START_TIMEOUT)
    return cluster


@contextlib.contextmanager
def running_ceph() -> Iterator[CephCluster]:
    """Start a throw-away cluster in a temp dir; stop its daemons and remove it afterwards."""
    ensure_installed()
    root = Path(tempfile.mkdtemp(prefix="charter-ceph-"))
    cluster: CephCluster | None = None
    reservations: list[socket.socket] = []
    start = time.monotonic()
    try:
        try:
            cluster = _create(root, reservations)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            out = getattr(exc, "stderr", b"") or b""
            text = out.decode(errors="replace") if isinstance(out, bytes) else str(out)
            raise CephError(f"setting up the test cluster failed: {exc}\n{text[-2000:]}") \
                from exc
        cluster.started_in = time.monotonic() - start
        yield cluster
    finally:
        # Stop by the pid files even when _create failed half-way (cluster is then None).
        (cluster or CephCluster(root, "", 0, 0)).stop()
        for s in reservations:
            s.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def ceph_cluster() -> Iterator[CephCluster]:
    """A real Ceph cluster that lives for the test session (3 OSDs up, PGs active+clean)."""
    with contextlib.ExitStack() as stack:
        try:
            cluster = stack.enter_context(running_ceph())
        except CephError as exc:
            problem = str(exc)
        else:
            yield cluster
            return
    pytest.fail(problem, pytrace=False)
