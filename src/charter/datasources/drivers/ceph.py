"""Ceph: health, OSDs, CRUSH, pools and placement groups, read with the ``ceph`` CLI.

The driver runs the ``ceph`` command-line tool (no librados binding in Charter's venv) with
``-f json``. A poll feeds all its commands to ONE ``ceph`` process on stdin (the CLI's
batch mode): each ``ceph`` start costs a Python start and a cluster connection, so seven
separate processes take about three times as long as one. The CLI hangs while the mon is
down, so every call has ``--connect-timeout`` and a subprocess timeout; a poll that fails
raises DriverError and the service keeps the last good tables.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from charter.datasources.driver import (
    ActionArg,
    ActionSpec,
    Column,
    ConfigOption,
    Driver,
    DriverError,
    Row,
    TableSpec,
)

DEFAULT_TIMEOUT_S = 10.0

# One poll: the commands, in the order their JSON documents come back.
POLL_COMMANDS: tuple[str, ...] = (
    "health detail",
    "osd tree",
    "osd dump",
    "osd crush dump",
    "pg dump pgs_brief",
    "osd df",
    "quorum_status",
)

RULE_TYPES = {1: "replicated", 3: "erasure"}  # crush rule / pool "type" numbers
QUOTA_FIELDS = ("max_objects", "max_bytes")
CRUSH_ITEM_NONE = 2147483647  # an erasure-coded PG's missing shard in its acting set


def _c(name: str, description: str, type_: str) -> Column:
    return Column(name, description, type_)


TABLES: tuple[TableSpec, ...] = (
    TableSpec("health", (
        _c("status", "overall health: HEALTH_OK, HEALTH_WARN or HEALTH_ERR", "str"),
    )),
    TableSpec("health_checks", (
        _c("check", "the health check's code, e.g. OSD_DOWN, PG_DEGRADED", "str"),
        _c("severity", "HEALTH_WARN or HEALTH_ERR", "str"),
        _c("summary", "the check's one-line message, e.g. '1 osds down'", "str"),
    )),
    TableSpec("osds", (
        _c("id", "OSD id (the N of osd.N)", "int"),
        _c("name", "osd.N", "str"),
        _c("host", "name of the CRUSH host bucket holding the OSD (null if none)", "str"),
        _c("up", "'True' when the OSD daemon is up (osd dump), else 'False'", "str"),
        _c("in", "'True' when the OSD is in (gets data), 'False' when marked out", "str"),
        _c("status", "up, down or destroyed", "str"),
        _c("crush_weight", "CRUSH weight (capacity in TiB by convention)", "float"),
        _c("reweight", "override weight 0.0-1.0 (0 when out)", "float"),
        _c("device_class", "device class (hdd, ssd, nvme; null if none)", "str"),
    )),
    TableSpec("osd_flags", (
        _c("flag", "a cluster-wide OSD flag that is set, e.g. noout, noscrub", "str"),
    )),
    TableSpec("crush_buckets", (
        _c("id", "bucket id (negative)", "int"),
        _c("name", "bucket name, e.g. default, host0", "str"),
        _c("type", "bucket type: root, datacenter, rack, host, ...", "str"),
        _c("parent", "name of the bucket holding this one (null for a root)", "str"),
    )),
    TableSpec("crush_types", (
        _c("id", "type id: 0 is osd, larger ids hold smaller ones (host 1, rack 3, ...)",
           "int"),
        _c("name", "type name: osd, host, chassis, rack, row, ..., root", "str"),
    )),
    TableSpec("crush_rules", (
        _c("id", "rule id (pools' crush_rule)", "int"),
        _c("name", "rule name, e.g. replicated_rule", "str"),
        _c("type", "replicated or erasure", "str"),
        _c("min_size", "smallest pool size the rule applies to (null if not given)", "int"),
        _c("max_size", "largest pool size the rule applies to (null if not given)", "int"),
        _c("root", "the bucket the rule's first take step starts from, e.g. default (null "
                   "if none)", "str"),
        _c("failure_domain", "type of the rule's last choose/chooseleaf step: the level "
                             "(osd, host, rack, ...) whose buckets each hold one copy "
                             "(null if none)", "str"),
        _c("device_class", "device class the take step is restricted to (null if none)",
           "str"),
    )),
    TableSpec("pools", (
        _c("id", "pool id", "int"),
        _c("name", "pool name", "str"),
        _c("type", "replicated or erasure", "str"),
        _c("size", "number of replicas (or k+m for erasure pools)", "int"),
        _c("min_size", "replicas needed to serve I/O", "int"),
        _c("pg_num", "number of placement groups", "int"),
        _c("crush_rule", "id of the pool's CRUSH rule (crush_rules.id)", "int"),
        _c("application", "applications enabled on the pool, comma-separated, sorted "
                          "(rbd, rgw, cephfs, ...; null if none)", "str"),
        _c("quota_max_objects", "object quota (0: none)", "int"),
        _c("quota_max_bytes", "byte quota (0: none)", "int"),
        _c("erasure_code_profile", "the erasure-code profile of an erasure pool "
                                   "(erasure_code_profiles.name; null for replicated)", "str"),
    )),
    TableSpec("erasure_code_profiles", (
        _c("name", "profile name, e.g. default", "str"),
        _c("k", "data chunks", "int"),
        _c("m", "coding chunks", "int"),
        _c("plugin", "erasure-code plugin, e.g. jerasure, isa", "str"),
        _c("failure_domain", "crush-failure-domain of the profile (null if not given: "
                             "host)", "str"),
    )),
    TableSpec("placement_groups", (
        _c("pgid", "placement group id, <pool id>.<hex>", "str"),
        _c("pool_id", "id of the PG's pool", "int"),
        _c("state", "full state, e.g. active+clean, active+undersized+degraded", "str"),
        _c("up_primary", "primary OSD of the up set (-1 if none)", "int"),
        _c("acting_primary", "primary OSD of the acting set (-1 if none)", "int"),
    )),
    TableSpec("pg_acting", (
        _c("pgid", "placement group id", "str"),
        _c("position", "place in the acting set, from 0 (the shard of an erasure pool)",
           "int"),
        _c("osd", "the OSD serving it (a missing shard has no row)", "int"),
    )),
    TableSpec("pg_states", (
        _c("pgid", "placement group id", "str"),
        _c("state", "one word of the PG's state (active, clean, degraded, ...)", "str"),
    )),
    TableSpec("osd_df", (
        _c("id", "OSD id", "int"),
        _c("kb", "capacity in KiB", "int"),
        _c("kb_used", "KiB used", "int"),
        _c("kb_avail", "KiB available", "int"),
        _c("utilization", "percent used (0-100)", "float"),
        _c("pgs", "placement groups on the OSD", "int"),
    )),
    TableSpec("monitors", (
        _c("name", "monitor name (the a of mon.a)", "str"),
        _c("rank", "rank in the monmap", "int"),
        _c("addr", "its address, host:port/nonce", "str"),
        _c("in_quorum", "'True' when the monitor is in the quorum, else 'False'", "str"),
    )),
)
SPECS = {t.name: t for t in TABLES}

ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("osd.out", "mark an OSD out (ceph osd out): its data moves elsewhere",
               (ActionArg("id", "OSD id"),)),
    ActionSpec("osd.in", "mark an OSD in (ceph osd in)", (ActionArg("id", "OSD id"),)),
    ActionSpec("osd.reweight", "set an OSD's override weight (ceph osd reweight)",
               (ActionArg("id", "OSD id"), ActionArg("weight", "0.0 to 1.0"))),
    ActionSpec("osd.set_flag", "set a cluster-wide OSD flag (ceph osd set), e.g. noout",
               (ActionArg("flag", "noout, noin, nodown, noup, noscrub, nodeep-scrub, ..."),)),
    ActionSpec("osd.unset_flag", "clear a cluster-wide OSD flag (ceph osd unset)",
               (ActionArg("flag", "the flag to clear"),)),
    ActionSpec("pool.set_quota", "set a pool quota (ceph osd pool set-quota); 0 removes it",
               (ActionArg("pool", "pool name"),
                ActionArg("field", "max_objects or max_bytes"),
                ActionArg("value", "the quota, an integer >= 0"))),
)

# stderr lines the CLI prints on every call without a keyring; never the reason for a failure
_NOISE = re.compile(r"unable to find a keyring|no keyring found|did not load config file")
# the "<time> <thread> <level> " prefix of a Ceph log line
_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT\S+ [0-9a-f]+ +-?\d+ ")


def _bool(value: Any) -> str:
    return "True" if value else "False"


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


class CephDriver(Driver):
    driver = "ceph"
    description = ("Ceph cluster state (health, monitors, OSDs, CRUSH, pools, "
                   "erasure-code profiles, placement groups, usage) read with the ceph CLI; "
                   "actions mark OSDs out/in, reweight, set flags and pool quotas")
    poll_seconds = 60.0
    config_options = (
        ConfigOption("conf", "path to the cluster's ceph.conf (default: the ceph CLI's, "
                             "/etc/ceph/<cluster>.conf)"),
        ConfigOption("cluster", "cluster name (the CLI's --cluster; default ceph)"),
        ConfigOption("keyring", "path to the client keyring (for cephx)"),
        ConfigOption("user", "client id to connect as, e.g. admin for client.admin "
                             "(the CLI's --id)"),
        ConfigOption("ceph_bin", "the ceph CLI to run: a name on PATH or a path",
                     default="ceph"),
        ConfigOption("timeout_seconds", "seconds a poll or action may take, connecting "
                                        "included", default=DEFAULT_TIMEOUT_S),
        ConfigOption("poll_time", "seconds between polls", default=poll_seconds),
    )

    def check_config(self) -> None:
        super().check_config()
        for key in ("conf", "cluster", "keyring", "user", "ceph_bin"):
            value = self.config.get(key)
            if value is not None and not isinstance(value, str):
                raise DriverError(f"datasource {self.name}: config {key!r} must be a string")
        for key in ("conf", "keyring"):
            path = self.config.get(key)
            if path and not Path(path).is_file():
                raise DriverError(f"datasource {self.name}: config {key!r}: no file {path}; "
                                  f"give the path of the cluster's {key} file")
        bin_name = self.config.get("ceph_bin") or "ceph"
        found = shutil.which(bin_name)
        if found is None:
            raise DriverError(
                f"datasource {self.name}: the ceph CLI {bin_name!r} was not found (config "
                "'ceph_bin'): install ceph-common (apt-get install ceph-common) or set "
                "ceph_bin to the ceph executable's path")
        self.ceph_bin = found
        try:
            self.timeout = float(self.config.get("timeout_seconds", DEFAULT_TIMEOUT_S))
        except (TypeError, ValueError):
            self.timeout = math.nan
        if not self.timeout > 0:
            raise DriverError(f"datasource {self.name}: config 'timeout_seconds' must be a "
                              "number of seconds > 0")
        poll_time = self.config.get("poll_time")
        if poll_time is not None:
            try:
                ok = float(poll_time) > 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise DriverError(f"datasource {self.name}: config 'poll_time' must be a "
                                  "number of seconds > 0")

    # ------------------------------------------------------------ schema

    def tables(self) -> dict[str, TableSpec]:
        return dict(SPECS)

    @classmethod
    def static_tables(cls) -> list[TableSpec]:
        return list(TABLES)

    def actions(self) -> list[ActionSpec]:
        return list(ACTIONS)

    # ------------------------------------------------------------ the CLI

    @property
    def _where(self) -> str:
        conf = self.config.get("conf") or "the default ceph.conf"
        cluster = self.config.get("cluster")
        return f"Ceph cluster {cluster + ' ' if cluster else ''}({conf})"

    def _argv(self, *args: str) -> list[str]:
        argv = [self.ceph_bin]
        if self.config.get("conf"):
            argv += ["-c", self.config["conf"]]
        if self.config.get("cluster"):
            argv += ["--cluster", self.config["cluster"]]
        if self.config.get("keyring"):
            argv += ["--keyring", self.config["keyring"]]
        if self.config.get("user"):
            argv += ["--id", self.config["user"]]
        # --connect-timeout takes whole seconds; the subprocess timeout is the hard limit.
        argv += ["--connect-timeout", str(max(1, math.ceil(self.timeout)))]
        return [*argv, *args]

    def _run(self, argv: list[str], stdin: str | None, what: str) -> subprocess.CompletedProcess:
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                  timeout=self.timeout,
                                  stdin=None if stdin is not None else subprocess.DEVNULL,
                                  env={**os.environ, "LC_ALL": "C.UTF-8"})
        except subprocess.TimeoutExpired as exc:
            raise DriverError(
                f"datasource {self.name}: {self._where} unreachable: {what} got no answer "
                f"within {self.timeout:g} s (timeout_seconds); check that its mons (and mgr) "
                "run and that mon host in the conf is right", status=503) from exc
        except OSError as exc:
            raise DriverError(f"datasource {self.name}: cannot run {self.ceph_bin} "
                              f"(config 'ceph_bin'): {exc}", status=400) from exc
        if done.returncode != 0:
            self._failed(done, what)
        return done

    def _failed(self, done: subprocess.CompletedProcess, what: str) -> None:
        reason = _reason(done.stderr) or f"exit status {done.returncode}"
        low = reason.lower()
        # cephx refusals also say "error connecting to the cluster": test them first.
        if any(w in low for w in ("permission denied", "operation not permitted", "eacces",
                                  "eperm", "[errno 13]", "[errno 1]")):
            raise DriverError(
                f"datasource {self.name}: {self._where} refused the credentials: {what}: "
                f"{reason}; check the 'user' and 'keyring' config", status=502)
        if "[errno 2]" in low and "error connecting to the cluster" in low:
            raise DriverError(  # cephx wanted, but the CLI found no keyring for the user
                f"datasource {self.name}: {self._where}: {what}: {reason}; the cluster wants "
                "cephx and no keyring was found: set the 'keyring' (and 'user') config",
                status=400)
        if any(w in low for w in ("timed out", "error connecting to the cluster",
                                  "connection refused")):
            raise DriverError(
                f"datasource {self.name}: {self._where} unreachable: {what}: {reason}; check "
                "that its mons run and that mon host in the conf is right", status=503)
        if done.returncode in (2, 22, 34) or "does not exist" in low:  # ENOENT/EINVAL/ERANGE
            raise DriverError(f"datasource {self.name}: {self._where} refused {what}: {reason}",
                              status=400)
        raise DriverError(f"datasource {self.name}: {self._where}: {what} failed "
                          f"(exit {done.returncode}): {reason}", status=502)

    def _read(self, commands: Sequence[str]) -> list[Any]:
        """Run ``commands`` in one ``ceph -f json`` process; their JSON documents in order.

        In batch mode the CLI does not stop on a failed command, it prints nothing for it,
        so a missing document means a command failed: its error is on stderr.
        """
        what = f"polling (ceph {'; '.join(commands)})"
        done = self._run(self._argv("-f", "json"), "\n".join(commands) + "\n", what)
        docs = _documents(done.stdout)
        if docs is None or len(docs) != len(commands):
            got = "output that is not JSON" if docs is None else f"{len(docs)} JSON documents"
            reason = _reason(done.stderr)
            raise DriverError(
                f"datasource {self.name}: {self._where}: {what} gave {got} for "
                f"{len(commands)} commands{': ' + reason if reason else ''}; is ceph_bin "
                "the ceph CLI, and of a matching version?", status=502)
        return docs

    # ------------------------------------------------------------ poll

    def poll(self) -> dict[str, list[Row]]:
        health, tree, dump, crush, pgs, df, quorum = self._read(POLL_COMMANDS)
        try:
            return self._tables(health, tree, dump, crush, pgs, df, quorum)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DriverError(f"datasource {self.name}: {self._where} answered in a shape "
                              f"this driver does not know ({type(exc).__name__}: {exc})",
                              status=502) from exc

    def _tables(self, health: dict, tree: dict, dump: dict, crush: dict, pgs: Any,
                df: dict, quorum: dict) -> dict[str, list[Row]]:
        if isinstance(pgs, dict):
            if pgs.get("pg_ready") is False:  # a fresh mgr: no stats yet, not "no PGs"
                raise DriverError(
                    f"datasource {self.name}: {self._where}: the mgr has no placement "
                    "group stats yet (pg_ready false); the next poll will have them",
                    status=503)
            pg_stats = pgs["pg_stats"]
        else:  # older releases answer a bare list
            pg_stats = pgs
        out: dict[str, list[Row]] = {t.name: [] for t in TABLES}
        out["health"] = [(health["status"],)]
        out["health_checks"] = [
            (code, check.get("severity"), (check.get("summary") or {}).get("message"))
            for code, check in sorted(health.get("checks", {}).items())]

        nodes = {n["id"]: n for n in tree["nodes"]}
        nodes.update({n["id"]: n for n in tree.get("stray", [])})
        parent: dict[int, int] = {}
        for n in tree["nodes"]:
            for child in n.get("children", ()):
                parent[child] = n["id"]

        def host_of(node_id: int) -> str | None:
            at = parent.get(node_id)
            while at is not None:
                if nodes[at].get("type") == "host":
                    return nodes[at]["name"]
                at = parent.get(at)
            return None

        for o in dump["osds"]:
            osd = o["osd"]
            node = nodes.get(osd, {})
            state = o.get("state", [])
            status = "destroyed" if "destroyed" in state else ("up" if o["up"] else "down")
            out["osds"].append((
                osd, node.get("name", f"osd.{osd}"), host_of(osd), _bool(o["up"]),
                _bool(o["in"]), status, _float(node.get("crush_weight")),
                float(o["weight"]), node.get("device_class")))
        out["osd_flags"] = [(f,) for f in sorted(dump.get("flags_set", []))]
        for n in tree["nodes"]:
            if n["id"] < 0:
                up = parent.get(n["id"])
                out["crush_buckets"].append(
                    (n["id"], n["name"], n["type"], None if up is None else nodes[up]["name"]))
        out["crush_types"] = [(t["type_id"], t["name"]) for t in crush["types"]]
        for r in crush["rules"]:
            out["crush_rules"].append((
                r["rule_id"], r["rule_name"], RULE_TYPES.get(r["type"], str(r["type"])),
                _int(r.get("min_size")), _int(r.get("max_size")), *_rule_steps(r)))
        for p in dump["pools"]:
            apps = sorted(p.get("application_metadata") or {})
            out["pools"].append((
                p["pool"], p["pool_name"], RULE_TYPES.get(p["type"], str(p["type"])),
                p["size"], p["min_size"], p["pg_num"], p["crush_rule"],
                ",".join(apps) or None, p.get("quota_max_objects", 0),
                p.get("quota_max_bytes", 0), p.get("erasure_code_profile") or None))
        for name, profile in sorted(dump.get("erasure_code_profiles", {}).items()):
            out["erasure_code_profiles"].append((
                name, _int(profile.get("k")), _int(profile.get("m")), profile.get("plugin"),
                profile.get("crush-failure-domain")))
        for pg in pg_stats:
            pgid, state = pg["pgid"], pg["state"]
            out["placement_groups"].append((
                pgid, int(pgid.split(".", 1)[0]), state, pg.get("up_primary", -1),
                pg.get("acting_primary", -1)))
            out["pg_states"] += [(pgid, word) for word in dict.fromkeys(state.split("+"))]
            out["pg_acting"] += [(pgid, at, osd) for at, osd in enumerate(pg.get("acting", ()))
                                 if osd != CRUSH_ITEM_NONE and osd >= 0]
        for n in [*df.get("nodes", []), *df.get("stray", [])]:
            if n.get("type", "osd") == "osd" and n.get("id", -1) >= 0:
                out["osd_df"].append((n["id"], n["kb"], n["kb_used"], n["kb_avail"],
                                      float(n["utilization"]), n.get("pgs")))
        in_quorum = set(quorum.get("quorum_names", ()))
        for mon in quorum["monmap"]["mons"]:
            out["monitors"].append((mon["name"], mon["rank"], mon.get("addr"),
                                    _bool(mon["name"] in in_quorum)))
        return out

    # ------------------------------------------------------------ actions

    def execute(self, action: str, positional: Sequence[Any], named: Mapping[str, Any]) -> Any:
        spec = self.action(action)
        if spec is None:
            return super().execute(action, positional, named)
        args = spec.bind(positional, named)
        if action in ("osd.out", "osd.in"):
            cmd = ["osd", action.split(".")[1], str(self._osd_id(args["id"]))]
        elif action == "osd.reweight":
            weight = _number(args["weight"], f"{action} weight")
            if not 0.0 <= weight <= 1.0:
                raise DriverError(f"{action}: weight must be between 0.0 and 1.0, not {weight}")
            cmd = ["osd", "reweight", str(self._osd_id(args["id"])), repr(weight)]
        elif action in ("osd.set_flag", "osd.unset_flag"):
            flag = args["flag"]
            if not isinstance(flag, str) or not re.fullmatch(r"[a-z_][a-z_-]*", flag):
                raise DriverError(f"{action}: flag must be a flag name such as noout, "
                                  f"not {flag!r}")
            cmd = ["osd", "set" if action == "osd.set_flag" else "unset", flag]
        else:  # pool.set_quota
            pool, field, value = args["pool"], args["field"], args["value"]
            if not isinstance(pool, str) or not pool or pool.startswith("-"):
                raise DriverError(f"{action}: pool must be a pool name, not {pool!r}")
            if field not in QUOTA_FIELDS:
                raise DriverError(f"{action}: field must be max_objects or max_bytes, "
                                  f"not {field!r}")
            quota = _number(value, f"{action} value")
            if quota != int(quota) or quota < 0:
                raise DriverError(f"{action}: value must be an integer >= 0, not {value!r}")
            cmd = ["osd", "pool", "set-quota", pool, field, str(int(quota))]
        what = "ceph " + " ".join(cmd)
        done = self._run(self._argv(*cmd), None, what)
        message = " ".join((done.stderr.strip() or done.stdout.strip()).split())
        if "does not exist" in message:  # "osd out 99" says so but exits 0
            raise DriverError(f"datasource {self.name}: {what}: {message}", status=400)
        return {"command": what, "message": message}

    @staticmethod
    def _osd_id(value: Any) -> int:
        text = str(value).removeprefix("osd.")
        if isinstance(value, bool) or not text.isdigit():
            raise DriverError(f"an OSD id is a number >= 0 (or osd.N), not {value!r}")
        return int(text)


def _rule_steps(rule: dict) -> tuple[str | None, str | None, str | None]:
    """A CRUSH rule's root, failure domain and device class, from its steps.

    The root is the first take step's bucket: a rule restricted to a device class takes
    the class's shadow tree, named ``default~ssd``. The failure domain is the type of the
    last choose/chooseleaf step, the finest level at which copies are kept apart (a rule
    choosing 2 racks then 2 hosts in each puts no two copies on one host).
    """
    root = device_class = failure_domain = None
    for step in rule.get("steps", ()):
        op = step.get("op", "")
        if op == "take" and root is None:
            root, _, device_class = str(step.get("item_name", "")).partition("~")
            device_class = device_class or None
        elif op.startswith("choose"):
            failure_domain = step.get("type")
    return root or None, failure_domain, device_class


def _number(value: Any, what: str) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise DriverError(f"{what} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise DriverError(f"{what} must be a finite number, not {value!r}")
    return number


def _documents(text: str) -> list[Any] | None:
    """The JSON documents printed one after another in ``text``; None if any is not JSON."""
    decoder = json.JSONDecoder()
    docs, at = [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return docs
        try:
            doc, at = decoder.raw_decode(text, at)
        except ValueError:
            return None
        docs.append(doc)


def _reason(stderr: str) -> str:
    """What the CLI said on stderr, without the keyring notices, its last 500 characters.

    Its error ("Error EINVAL: invalid command") comes after the useful line ("Invalid
    command: bogus not in full|pause|..."), so the last few lines are kept, not one.
    """
    lines = [_LOG_PREFIX.sub("", ln.strip()) for ln in stderr.splitlines()
             if ln.strip() and not _NOISE.search(ln)]
    return " / ".join(lines[-3:])[-500:]
