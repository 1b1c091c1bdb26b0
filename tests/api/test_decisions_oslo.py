"""POST /v1/decisions/oslo/{policy}: oslo.policy's ``http:`` check, in process (TestClient)
and with oslo.policy's own Enforcer against a real ``charter serve``, over HTTP and over
HTTPS with a client certificate (remote_ssl_* settings)."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from charter.api.app import create_app
from charter.api.auth import TokenAuthenticator
from charter.service.config import StaticToken
from tests.realservices.charter_server import CharterServer

PATH = "/v1/decisions/oslo/{policy}"
CREATE = "identity:create_project"
SCHEMA = {"tables": {"projects": ["id", "name", "domain_id"], "denylist": ["name"]}}
RULES = [
    f'deny("only admins create projects") :- oslo:rule("{CREATE}"), not oslo:role("admin")',
    f'deny(n) :- oslo:rule("{CREATE}"), oslo:target("project.name", n), ks:denylist(n)',
    f'deny(d) :- oslo:rule("{CREATE}"), oslo:target("project.domain_id", d), '
    "n = count : { ks:projects(_, _, d) }, n >= 2",
]
ADMIN, VIEWER = "adm-decide-token", "vwr-decide-token"


def ok(response, status: int = 200):
    assert response.status_code == status, response.text
    return response.json() if response.headers.get("content-type", "").startswith(
        "application/json") else response.text


def setup_world(http) -> None:
    ok(http.post("/v1/data-sources", json={"name": "ks", "driver": "push", "config": SCHEMA}),
       201)
    ok(http.put("/v1/data-sources/ks/tables/projects/rows",
                json=[["p1", "alpha", "d1"], ["p2", "beta", "d1"], ["p3", "gamma", "d2"]]))
    ok(http.put("/v1/data-sources/ks/tables/denylist/rows", json=[["forbidden"]]))
    ok(http.post("/v1/policies", json={"name": "keystone",
                                       "rules": [{"rule": r} for r in RULES]}), 201)


def form(name: str, domain: str, *roles: str, rule: str | None = CREATE) -> dict:
    """What oslo.policy's HttpCheck posts by default: each field a JSON text."""
    return {"rule": json.dumps(rule),
            "target": json.dumps({"project": {"name": name, "domain_id": domain}}),
            "credentials": json.dumps({"user_id": "u1", "project_id": "admin-project",
                                       "roles": list(roles)})}


@pytest.fixture
def api(client):
    setup_world(client)
    return client


def decide(api, data=None, policy: str = "keystone", **kwargs) -> str:
    r = api.post(PATH.format(policy=policy), data=data, **kwargs)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def refused(response, *words: str) -> str:
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    for word in words:
        assert word in message, message
    return message


# ---------------------------------------------------------------- answers


def test_allow_and_deny_as_oslo_policy_reads_them(api):
    assert decide(api, form("delta", "d2", "admin")) == "True"
    assert decide(api, form("delta", "d2", "member")) == "False"
    assert decide(api, form("forbidden", "d2", "admin")) == "False"  # the live deny list
    assert decide(api, form("delta", "d1", "admin")) == "False"  # d1 has 2 projects
    assert decide(api, form("forbidden", "d1", "member", rule="identity:get_project")) == "True"


def test_the_answer_follows_the_live_tables(api):
    assert decide(api, form("delta", "d1", "admin")) == "False"
    ok(api.put("/v1/data-sources/ks/tables/projects/rows", json=[["p1", "alpha", "d1"]]))
    assert decide(api, form("delta", "d1", "admin")) == "True"


def test_the_json_body_of_remote_content_type_json(api):
    body = {"rule": CREATE, "target": {"project": {"name": "forbidden", "domain_id": "d2"}},
            "credentials": {"roles": ["admin"]}}
    assert decide(api, json=body) == "False"
    body["target"]["project"]["name"] = "fine"
    assert decide(api, json=body) == "True"


def test_a_bare_rule_name_and_a_null_rule(api):
    data = form("delta", "d2", "member")
    assert decide(api, data | {"rule": CREATE}) == "False"
    assert decide(api, data | {"rule": "null"}) == "True"  # no rule: no deny rule matches


def test_fail_closed_by_default_and_fail_open_when_configured(api, service, settings):
    assert decide(api, form("x", "d2", "admin"), policy="nope") == "False"
    ok(api.post("/v1/policies", json={"name": "plain", "rules": [{"rule": "p(1)"}]}), 201)
    assert decide(api, form("x", "d2", "admin"), policy="plain") == "False"
    opened = settings.model_validate(settings.model_dump() | {"decisions": {"fail": "open"}})
    with TestClient(create_app(service, opened), raise_server_exceptions=False) as other:
        assert decide(other, form("x", "d2", "admin"), policy="nope") == "True"
        assert decide(other, form("x", "d2", "admin"), policy="plain") == "True"
        assert decide(other, form("x", "d2", "member")) == "False"  # a decided deny stays
        entry = ok(other.get("/v1/audit", params={"policy": "nope"}))["results"][0]
        assert entry["result"] == "allowed (policy error)"
        assert entry["detail"] == "No such policy: nope"


# ---------------------------------------------------------------- bad input


def test_target_not_json(api):
    data = form("x", "d2") | {"target": "{'project': 1}"}
    refused(api.post(PATH.format(policy="keystone"), data=data),
            "form field 'target' is not JSON", "line 1 column 2", "sends rule, target and "
            "credentials")


@pytest.mark.parametrize("field", ["target", "credentials"])
def test_missing_field(api, field):
    data = {k: v for k, v in form("x", "d2").items() if k != field}
    refused(api.post(PATH.format(policy="keystone"), data=data), f"field '{field}' is missing",
            "oslo.policy's http: check sends")
    body = {"rule": CREATE, "target": {}, "credentials": {}}
    del body[field]
    refused(api.post(PATH.format(policy="keystone"), json=body), f"field '{field}' is missing")


def test_wrong_shapes(api):
    url = PATH.format(policy="keystone")
    refused(api.post(url, data=form("x", "d2") | {"credentials": "[1]"}),
            "'credentials' must be a JSON object", "not list")
    refused(api.post(url, json=[1]), "the request body must be a JSON object")
    refused(api.post(url, json={"rule": 3, "target": {}, "credentials": {}}),
            "'rule' must be the name of the rule checked", "not int")
    refused(api.post(url, content=b"x", headers={"Content-Type": "text/plain"}),
            "content type 'text/plain' is not one oslo.policy sends")
    refused(api.post(url, content=b"target=%7B%7D&target=%7B%7D&credentials=%7B%7D",
                     headers={"Content-Type": "application/x-www-form-urlencoded"}),
            "form field 'target' is given more than once")
    refused(api.post(url, content=b"{", headers={"Content-Type": "application/json"}),
            "the request body is not JSON")


# ---------------------------------------------------------------- audit and metrics


def test_every_decision_is_audited(api):
    data = form("forbidden", "d1", "member")
    data["credentials"] = json.dumps({"user_id": "u1", "roles": ["member"], "auth_token": "s3"})
    assert decide(api, data) == "False"
    assert decide(api, form("delta", "d2", "admin")) == "True"
    denied, allowed = reversed(ok(api.get("/v1/audit", params={"policy": "keystone"}))["results"])
    assert denied["actor"] == "anonymous"  # noauth: no caller's name
    assert (denied["rule"], denied["action"], denied["mode"]) == (CREATE, "decision:oslo",
                                                                  "decision")
    assert denied["result"] == "denied"
    assert denied["row"] == ["d1", "forbidden", "only admins create projects"]
    assert denied["detail"] == "d1; forbidden; only admins create projects"
    assert denied["arguments"]["rows"] == {"deny": [["d1"], ["forbidden"],
                                                    ["only admins create projects"]]}
    assert denied["arguments"]["credentials"] == {"user_id": "u1", "roles": ["member"],
                                                  "auth_token": "***"}
    assert denied["arguments"]["target"] == {"project": {"name": "forbidden", "domain_id": "d1"}}
    assert (allowed["result"], allowed["row"], allowed["detail"]) == ("allowed", [], "")


def metric(api, line_start: str) -> float:
    for line in api.get("/metrics").text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_decisions_are_counted(api):
    decide(api, form("delta", "d2", "admin"))
    decide(api, form("delta", "d2", "member"))
    decide(api, form("delta", "d2", "member"))
    decide(api, form("delta", "d2", "member"), policy="nope")
    assert metric(api, 'charter_decisions_total{answer="allow",kind="oslo"}') == 1
    assert metric(api, 'charter_decisions_total{answer="deny",kind="oslo"}') == 3
    assert metric(api, 'charter_decision_errors_total{kind="oslo"}') == 1
    assert metric(api, 'charter_decision_seconds_count{kind="oslo"}') == 4


# ---------------------------------------------------------------- who may ask


def token_app(service, settings, anonymous: bool) -> TestClient:
    authenticator = TokenAuthenticator(tuple(
        StaticToken(name, role, hashlib.sha256(token.encode()).digest())  # type: ignore[arg-type]
        for name, role, token in (("ops", "admin", ADMIN), ("nova", "viewer", VIEWER))))
    changed = settings.model_validate(settings.model_dump()
                                      | {"decisions": {"anonymous": anonymous}})
    return TestClient(create_app(service, changed, authenticator), raise_server_exceptions=False)


def test_a_token_of_any_role_or_none_with_anonymous(service, settings):
    with token_app(service, settings, anonymous=False) as api:
        api.headers["X-Auth-Token"] = ADMIN
        setup_world(api)
        del api.headers["X-Auth-Token"]
        url = PATH.format(policy="keystone")
        assert api.post(url, data=form("x", "d2", "admin")).status_code == 401
        r = api.post(url, data=form("x", "d2", "admin"), headers={"X-Auth-Token": VIEWER})
        assert r.text == "True"
        entry = ok(api.get("/v1/audit", headers={"X-Auth-Token": VIEWER}))["results"][0]
        assert entry["actor"] == "nova"
    with token_app(service, settings, anonymous=True) as api:
        assert decide(api, form("x", "d2", "member")) == "False"
        assert api.get("/v1/audit").status_code == 401  # only decisions are open


# ---------------------------------------------------------------- oslo.policy's Enforcer


def enforcer(url: str, **ssl):
    """oslo.policy's Enforcer (the dev extra installs it) with rules routed to ``url``."""
    oslo_policy = pytest.importorskip("oslo_policy.policy")
    oslo_config = pytest.importorskip("oslo_config.cfg")
    conf = oslo_config.ConfigOpts()
    conf([], project="charter-test", default_config_files=[], default_config_dirs=[])
    found = oslo_policy.Enforcer(conf, use_conf=False)
    for key, value in ssl.items():
        conf.set_override(key, value, group="oslo_policy")
    found.set_rules(oslo_policy.Rules.from_dict({
        CREATE: f"role:admin and {url}",
        "identity:get_project": url}), overwrite=True, use_conf=False)
    return found


def creds(*roles: str) -> dict:
    return {"user_id": "u1", "project_id": "p0", "roles": list(roles)}


def target(name: str, domain: str) -> dict:
    return {"project": {"name": name, "domain_id": domain}}


def admin_setup(url: str, **client) -> None:
    with httpx.Client(base_url=url, headers={"X-Auth-Token": ADMIN}, timeout=60,
                      **client) as http:
        setup_world(http)


def token_env(data: Path) -> dict:
    (data / "tokens.toml").write_text(
        f'[[tokens]]\nname = "ops"\nrole = "admin"\ntoken = "{ADMIN}"\n')
    return {"CHARTER_AUTH__STRATEGY": "token", "CHARTER_AUTH__TOKENS_FILE": str(data / "tokens.toml"),
            "CHARTER_DECISIONS__ANONYMOUS": "true"}


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded",
                                          "application/json"])
def test_oslo_policy_enforcer_over_http(tmp_path, content_type):
    server = CharterServer(tmp_path, env=token_env(tmp_path)).start()
    try:
        admin_setup(server.url)
        e = enforcer(f"http:{server.url.removeprefix('http:')}/v1/decisions/oslo/keystone",
                     remote_content_type=content_type)
        assert e.enforce(CREATE, target("delta", "d2"), creds("admin")) is True
        assert e.enforce(CREATE, target("forbidden", "d2"), creds("admin")) is False
        assert e.enforce(CREATE, target("delta", "d1"), creds("admin")) is False
        assert e.enforce(CREATE, target("delta", "d2"), creds("member")) is False  # role:admin
        assert e.enforce("identity:get_project", target("forbidden", "d1"), creds()) is True
        with httpx.Client(base_url=server.url, headers={"X-Auth-Token": ADMIN}) as http:
            audit = http.get("/v1/audit", params={"policy": "keystone"}).json()["results"]
        assert [(a["rule"], a["result"]) for a in reversed(audit)] == [
            (CREATE, "allowed"), (CREATE, "denied"), (CREATE, "denied"),
            ("identity:get_project", "allowed")]
    finally:
        server.stop()


# ---------------------------------------------------------------- TLS, client certificates


def make_pki(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(subject: str, key, issuer: str, issuer_key, *, ca: bool = False, usage=None,
             san=None) -> x509.Certificate:
        builder = (x509.CertificateBuilder().subject_name(name(subject))
                   .issuer_name(name(issuer)).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        if usage:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    def write(label: str, certificate, key) -> tuple[Path, Path]:
        crt, pem = directory / f"{label}.crt", directory / f"{label}.key"
        crt.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
        return crt, pem

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("charter test CA", ca_key, "charter test CA", ca_key, ca=True)
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    server = cert("127.0.0.1", server_key, "charter test CA", ca_key,
                  usage=ExtendedKeyUsageOID.SERVER_AUTH,
                  san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client = cert("keystone", client_key, "charter test CA", ca_key,
                  usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    ca_crt, _ = write("ca", ca, ca_key)
    server_crt, server_pem = write("server", server, server_key)
    client_crt, client_pem = write("client", client, client_key)
    return {"ca": ca_crt, "server_crt": server_crt, "server_key": server_pem,
            "client_crt": client_crt, "client_key": client_pem}


class TLSServer(CharterServer):
    """``charter serve`` over HTTPS, client certificates required; ready once /healthz
    answers a client presenting ``client``."""

    def __init__(self, data_dir: Path, pki: dict[str, Path], env: dict):
        super().__init__(data_dir, env=env | {
            "CHARTER_TLS__CERT_FILE": str(pki["server_crt"]),
            "CHARTER_TLS__KEY_FILE": str(pki["server_key"]),
            "CHARTER_TLS__CA_FILE": str(pki["ca"]),
            "CHARTER_TLS__CLIENT_CERT": "required"})
        context = ssl.create_default_context(cafile=str(pki["ca"]))
        context.load_cert_chain(str(pki["client_crt"]), str(pki["client_key"]))
        self.client = {"verify": context}

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> TLSServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
        env |= {"CHARTER_DATA_DIR": str(self.data_dir), "CHARTER_HOST": "127.0.0.1",
                "CHARTER_PORT": str(self.port), "CHARTER_LOG_LEVEL": "warning"} | self.env
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "charter.cli.main", "serve"],
                                         env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1, **self.client).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("charter serve (TLS) did not answer /healthz:\n"
                           + self.log.read_text()[-3000:])


def test_oslo_policy_enforcer_over_https_with_a_client_certificate(tmp_path):
    pki = make_pki(tmp_path)
    server = TLSServer(tmp_path, pki, token_env(tmp_path)).start()
    try:
        admin_setup(server.url, **server.client)
        url = f"https:{server.url.removeprefix('https:')}/v1/decisions/oslo/keystone"
        e = enforcer(url, remote_ssl_verify_server_crt=True,
                     remote_ssl_ca_crt_file=str(pki["ca"]),
                     remote_ssl_client_crt_file=str(pki["client_crt"]),
                     remote_ssl_client_key_file=str(pki["client_key"]))
        assert e.enforce(CREATE, target("delta", "d2"), creds("admin")) is True
        assert e.enforce(CREATE, target("forbidden", "d2"), creds("admin")) is False
        # without a client certificate the handshake itself is refused
        with pytest.raises(httpx.TransportError):
            httpx.post(f"{server.url}/v1/decisions/oslo/keystone",
                       verify=ssl.create_default_context(cafile=str(pki["ca"])),
                       data=form("delta", "d2", "admin"))
        # and a server certificate not of the CA is refused by oslo.policy's client
        (tmp_path / "other").mkdir()
        stranger = make_pki(tmp_path / "other")
        e = enforcer(url, remote_ssl_verify_server_crt=True,
                     remote_ssl_ca_crt_file=str(stranger["ca"]),
                     remote_ssl_client_crt_file=str(pki["client_crt"]),
                     remote_ssl_client_key_file=str(pki["client_key"]))
        with pytest.raises(Exception, match="(?i)certificate"):
            e.enforce(CREATE, target("delta", "d2"), creds("admin"))
    finally:
        server.stop()
