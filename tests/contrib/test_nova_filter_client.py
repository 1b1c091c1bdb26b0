"""contrib/nova-filter's HTTP side (charter_nova_filter.client, no Nova needed) against a
real ``charter serve``: the request spec as Charter reads it, one question for all hosts,
token auth, and the fail mode when Charter cannot answer or cannot decide. The Nova class
itself runs in scripts/openstack-e2e.sh."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from tests.realservices.charter_server import CharterServer, free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "contrib" / "nova-filter"))
from charter_nova_filter.client import Answer, CharterClient, Settings, spec_fields  # noqa: E402

TOKEN = "nova-filter-admin-token"
RULES = Path(__file__).resolve().parents[2] / "examples" / "decisions" / "nova_hosts.dl"


class Obj(SimpleNamespace):
    """A Nova object stand-in: only its set fields are read."""

    def obj_attr_is_set(self, name: str) -> bool:
        return name in vars(self)


def request_spec(group_hosts: list[str], memory: int = 512) -> Obj:
    return Obj(project_id="p1", user_id="u1", instance_uuid="i-1", num_instances=1,
               flavor=Obj(name="m1.tiny", flavorid="1", vcpus=1, memory_mb=memory, root_gb=1,
                          ephemeral_gb=0, swap=0, extra_specs={}),
               image=Obj(id="img-1"),  # no name set: left out, not read
               instance_group=Obj(uuid="g1", name="web", policy="anti-affinity",
                                  members=["s0"], hosts=group_hosts, rules={}),
               scheduler_hints={"group": ["g1"]})


def test_spec_fields_reads_only_set_fields():
    fields = spec_fields(request_spec(["h1"]))
    assert fields["image"] == {"id": "img-1"}
    assert fields["instance_group"]["hosts"] == ["h1"]
    assert fields["scheduler_hints"] == {"group": ["g1"]}
    assert "availability_zone" not in fields
    assert spec_fields(Obj(project_id="p")) == {"project_id": "p"}


def test_settings_name_the_option_to_fix():
    with pytest.raises(ValueError, match=r"\[charter\] url is not set"):
        Settings(url="")
    with pytest.raises(ValueError, match="closed or open"):
        Settings(url="http://x", fail="maybe")
    with pytest.raises(ValueError, match="cert_file and key_file go together"):
        Settings(url="http://x", cert_file="c.pem")


def dl_rules(path: Path) -> list[str]:
    blocks = (b.splitlines() for b in path.read_text().split("\n\n"))
    rules = ["\n".join(ln for ln in b if ln.strip() and not ln.strip().startswith("//"))
             for b in blocks]
    return [r for r in rules if r]


@pytest.fixture(scope="module")
def charter(tmp_path_factory):
    data = tmp_path_factory.mktemp("charter")
    (data / "tokens.toml").write_text(
        f'[[tokens]]\nname = "nova"\nrole = "admin"\ntoken = "{TOKEN}"\n')
    server = CharterServer(data, env={"CHARTER_AUTH__STRATEGY": "token",
                                      "CHARTER_AUTH__TOKENS_FILE": str(data / "tokens.toml")})
    server.start()
    try:
        with httpx.Client(base_url=server.url, headers={"X-Auth-Token": TOKEN}) as http:
            r = http.post("/v1/data-sources", json={"name": "nova", "driver": "push", "config": {
                "tables": {"hypervisors.capacity": [
                    "hypervisor_id", "host", "vcpus", "vcpus_used", "memory_mb",
                    "memory_mb_used"], "server_group_members": ["group_id", "server_id"],
                    "servers.details": ["server_id", "host"]}}})
            assert r.status_code == 201, r.text
            for table, rows in (
                    ("hypervisors.capacity", [["1", "h1", 8, 1, 8192, 1024],
                                              ["2", "h2", 8, 1, 8192, 4096],
                                              ["3", "h3", 8, 1, 8192, 1024]]),
                    ("server_group_members", [["g1", "s0"]]),
                    ("servers.details", [["s0", "h3"]])):
                r = http.put(f"/v1/data-sources/nova/tables/{table}/rows", json=rows)
                assert r.status_code == 200, r.text
            r = http.post("/v1/policies", json={"name": "nova_hosts", "rules": [
                {"rule": rule} for rule in dl_rules(RULES)]})
            assert r.status_code == 201, r.text
        yield server
    finally:
        server.stop()


def client(server: CharterServer, **kw) -> CharterClient:
    return CharterClient(Settings(url=server.url, token=TOKEN, **kw))


def test_one_question_for_all_hosts(charter):
    answer = client(charter).hosts(spec_fields(request_spec(["h1"])), ["h1", "h2", "h3"])
    assert answer.error is None
    assert answer.hosts == ["h2"]  # h1: the request's group; h3: a member in the live tables
    assert answer.refused == {
        "h1": ["a member of anti-affinity group g1 runs on this host"],
        "h3": ["server s0 of its anti-affinity group runs on this host"]}
    answer = client(charter).hosts(spec_fields(request_spec([], memory=6000)), ["h1", "h2"])
    assert answer.hosts == ["h1"]
    assert answer.refused == {"h2": ["not enough free memory for the flavor"]}


def test_audited_in_charter(charter):
    client(charter).hosts(spec_fields(request_spec(["h1"])), ["h1", "h2"])
    with httpx.Client(base_url=charter.url, headers={"X-Auth-Token": TOKEN}) as http:
        audit = http.get("/v1/audit", params={"policy": "nova_hosts"}).json()["results"]
    assert audit[0]["action"] == "decision:nova" and audit[0]["actor"] == "nova"
    assert audit[0]["arguments"]["passed"] == ["h2"]


def test_a_wrong_token_or_no_policy_answers_by_the_fail_mode(charter):
    spec = spec_fields(request_spec([]))
    bad = CharterClient(Settings(url=charter.url, token="wrong"))
    answer = bad.hosts(spec, ["h1", "h2"])
    assert answer.hosts == [] and "answered 401" in answer.error
    assert set(answer.refused) == {"h1", "h2"}
    opened = CharterClient(Settings(url=charter.url, token="wrong", fail="open"))
    assert opened.hosts(spec, ["h1", "h2"]).hosts == ["h1", "h2"]
    answer = client(charter, policy="nope").hosts(spec, ["h1"])
    assert answer == Answer(hosts=[], refused={"h1": ["No such policy: nope"]},
                            error="No such policy: nope")
    assert client(charter, policy="nope", fail="open").hosts(spec, ["h1"]).hosts == ["h1"]


def test_charter_down_answers_by_the_fail_mode():
    url = f"http://127.0.0.1:{free_port()}"
    answer = CharterClient(Settings(url=url, timeout=2)).hosts({}, ["h1"])
    assert answer.hosts == [] and "did not answer" in answer.error
    assert CharterClient(Settings(url=url, timeout=2, fail="open")).hosts(
        {}, ["h1"]).hosts == ["h1"]
