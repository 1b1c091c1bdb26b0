"""The Kubernetes validating admission webhook, ``POST /v1/decisions/kubernetes/{policy}``:
AdmissionReview requests as the API server sends them (tests/fixtures/admission), decided by
the kubernetes-pod-security pack's controls and by decision policies, in process and end to
end over TLS against a real ``charter serve``."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client as k8s
from typer.testing import CliRunner

from charter.cli.main import app as cli
from charter.engine import Delta
from charter.service.kubernetes_admission import (
    flatten,
    object_rows,
    parse_review,
    request_rows,
)
from tests.realservices.ports import reserve_port

FIXTURES = Path(__file__).parent.parent / "fixtures" / "admission"
PACK = "kubernetes-pod-security"
URL = f"/v1/decisions/kubernetes/{PACK}"

#: fixture -> (allowed, the controls its refusal names)
EXPECTED = {
    "pod-restricted.json": (True, set()),
    "pod-generated-name.json": (True, set()),
    "pod-privileged.json": (False, {"K8S-PSS-002", "K8S-PSS-102", "K8S-PSS-106"}),
    "pod-privileged-dry-run.json": (False, {"K8S-PSS-002", "K8S-PSS-102", "K8S-PSS-106"}),
    "pod-host-network.json": (False, {"K8S-PSS-001"}),
    "pod-run-as-root.json": (False, {"K8S-PSS-103", "K8S-PSS-104"}),
    "pod-host-path.json": (False, {"K8S-PSS-004", "K8S-PSS-101"}),
    "pod-update-privileged.json": (False, {"K8S-PSS-002", "K8S-PSS-102", "K8S-PSS-106"}),
    "pod-delete.json": (True, set()),
}


def review(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def named_controls(message: str) -> set[str]:
    return {part.split(" ", 1)[0] for part in message.split("; ")}


def check_answer(body: dict, fixture: str) -> None:
    """The AdmissionReview the API server expects, with the fixture's decision."""
    allowed, controls = EXPECTED[fixture]
    assert body["apiVersion"] == "admission.k8s.io/v1"
    assert body["kind"] == "AdmissionReview"
    response = body["response"]
    assert response["uid"] == review(fixture)["request"]["uid"]
    assert response["allowed"] is allowed
    if allowed:
        assert set(response) == {"uid", "allowed"}
    else:
        assert set(response) == {"uid", "allowed", "status"}
        assert response["status"]["code"] == 403
        assert named_controls(response["status"]["message"]) == controls


@pytest.fixture
def pack(service):
    service.packs.enable(PACK)
    return service


# ---------------------------------------------------------------- the fixtures


def test_every_fixture_is_expected():
    assert {p.name for p in FIXTURES.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_fixture_objects_are_pods_of_the_official_client(fixture):
    """Each object deserializes into the client's V1Pod and serializes back unchanged."""
    api = k8s.ApiClient()
    req = review(fixture)["request"]
    for key in ("object", "oldObject"):
        if req[key] is not None:
            pod = api._ApiClient__deserialize(req[key], "V1Pod")  # the client's own reader
            assert api.sanitize_for_serialization(pod) == req[key]


# ---------------------------------------------------------------- pack controls decide


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_pack_controls_decide_each_fixture(pack, client, fixture):
    r = client.post(URL, json=review(fixture))
    assert r.status_code == 200, r.text
    check_answer(r.json(), fixture)


def test_the_refusal_says_what_and_where(pack, client):
    message = client.post(URL, json=review("pod-host-path.json")).json()["response"]["status"]
    assert message["message"].startswith(
        "K8S-PSS-004 Pod mounts a hostPath volume: pod hostpath-1, namespace shop, volume "
        "docker: mounts the node's /var/run/docker.sock")


def test_controls_narrow_the_pack(pack, client):
    r = client.post(URL + "?controls=K8S-PSS-0", json=review("pod-privileged.json"))
    assert named_controls(r.json()["response"]["status"]["message"]) == {"K8S-PSS-002"}
    r = client.post(URL + "?controls=K8S-PSS-001", json=review("pod-privileged.json"))
    assert r.json()["response"]["allowed"] is True
    # in the path, as a webhook's clientConfig.service.path says it (it takes no query)
    r = client.post(URL + "/K8S-PSS-002,K8S-PSS-10", json=review("pod-privileged.json"))
    assert named_controls(r.json()["response"]["status"]["message"]) == {
        "K8S-PSS-002", "K8S-PSS-102", "K8S-PSS-106"}
    r = client.post(URL + "/K8S-NOPE", json=review("pod-privileged.json")).json()
    assert "controls K8S-NOPE match no control of pack" in r["response"]["status"]["message"]


def test_an_exempt_namespace_is_admitted(pack, client):
    body = review("pod-privileged.json")
    body["request"]["namespace"] = body["request"]["object"]["metadata"]["namespace"] = \
        "kube-system"
    assert client.post(URL, json=body).json()["response"]["allowed"] is True


def test_nothing_is_kept(pack, client):
    before = {t: pack.engine.rows(t) for t in pack.engine.tables()}
    client.post(URL, json=review("pod-privileged.json"))
    assert {t: pack.engine.rows(t) for t in pack.engine.tables()} == before


def test_a_decision_is_audited_but_not_a_dry_run(pack, client):
    client.post(URL, json=review("pod-privileged-dry-run.json"))
    assert pack.store.audit(policy=PACK) == []
    client.post(URL, json=review("pod-privileged.json"))
    (rec,) = pack.store.audit(policy=PACK)
    assert (rec.action, rec.result, rec.rule) == ("decision:kubernetes", "denied",
                                                  "CREATE pods shop/priv-1")
    assert rec.arguments["user"] == "alice@example.com"
    assert "object" not in rec.arguments
    metrics = client.get("/metrics").text
    assert 'charter_decisions_total{answer="deny",kind="kubernetes"} 2.0' in metrics


def test_a_pack_not_enabled_fails_closed_or_open(client):
    r = client.post(URL, json=review("pod-restricted.json")).json()["response"]
    assert r["allowed"] is False
    assert "pack kubernetes-pod-security is not enabled" in r["status"]["message"]
    r = client.post(URL + "?fail=open", json=review("pod-restricted.json")).json()["response"]
    assert r["allowed"] is True
    assert r["warnings"][0].startswith("Charter could not decide (fail-open): pack "
                                       "kubernetes-pod-security is not enabled")


# ---------------------------------------------------------------- decision policies

RULES = [
    # an image allow-list, over the request tables
    'deny(r) :- k8s:container(c, image, _), not approved_image(image),'
    ' r = "container " + c + " image " + image + " is not approved"',
    'approved_image("registry.example/web:1")',
    # the pack's control, for the object under review only
    'deny(r) :- k8s:request(_, "Pod", ns, pod, _, _), K8S_PSS_001:error(pod, ns, d),'
    ' r = "K8S-PSS-001: " + d',
    # who asks: a user of the policy's own table
    'deny(r) :- k8s:request(_, _, _, _, "CREATE", user), frozen_user(user),'
    ' r = user + " may not create objects"',
    'frozen_user("mallory@example.com")',
]


@pytest.fixture
def admission_policy(pack, client):
    assert client.post("/v1/policies", json={"name": "k8s_admission"}).status_code == 201
    for rule in RULES:
        r = client.post("/v1/policies/k8s_admission/rules", json={"rule": rule})
        assert r.status_code == 201, r.text
    return "/v1/decisions/kubernetes/k8s_admission"


def test_a_decision_policy_reads_the_request_tables(admission_policy, client):
    r = client.post(admission_policy, json=review("pod-restricted.json")).json()["response"]
    assert r["status"]["message"] == "container web image nginx:1.27.2 is not approved"
    body = review("pod-host-network.json")
    body["request"]["object"]["spec"]["containers"][0]["image"] = "registry.example/web:1"
    body["request"]["userInfo"]["username"] = "mallory@example.com"
    r = client.post(admission_policy, json=body).json()["response"]
    assert set(r["status"]["message"].split("; ")) == {
        "K8S-PSS-001: shares the node's network namespace (hostNetwork)",
        "mallory@example.com may not create objects"}
    body = review("pod-restricted.json")
    body["request"]["object"]["spec"]["containers"][0]["image"] = "registry.example/web:1"
    r = client.post(admission_policy, json=body).json()["response"]
    assert r == {"uid": body["request"]["uid"], "allowed": True}


def test_controls_are_for_a_pack_not_a_policy(admission_policy, client):
    r = client.post(admission_policy + "/K8S-PSS", json=review("pod-restricted.json"))
    assert r.status_code == 400
    assert "k8s_admission is a policy" in r.json()["error"]["message"]


def test_the_docs_decision_policy_passes_its_charter_test_cases():
    result = CliRunner().invoke(cli, ["test", str(FIXTURES / "k8s_admission_test.yaml")])
    assert result.exit_code == 0, result.output
    assert "PASS: 3/3" in result.output


def test_a_policy_that_cannot_decide_fails_closed(pack, client):
    client.post("/v1/policies", json={"name": "empty"})
    r = client.post("/v1/decisions/kubernetes/empty", json=review("pod-restricted.json"))
    response = r.json()["response"]
    assert response["allowed"] is False
    assert "no deny or allow table" in response["status"]["message"]


# ---------------------------------------------------------------- the manifest

MANIFEST = Path(__file__).parents[2] / "deploy" / "kubernetes" / "validating-webhook.yaml"


def test_the_manifest_is_a_webhook_configuration_charter_answers(pack, client):
    data = yaml.safe_load(MANIFEST.read_text())
    config = k8s.ApiClient()._ApiClient__deserialize(data, "V1ValidatingWebhookConfiguration")
    (hook,) = config.webhooks
    assert hook.admission_review_versions == ["v1"]
    assert hook.side_effects == "NoneOnDryRun"
    assert {r.resources[0] for r in hook.rules} == {"pods"}
    r = client.post(hook.client_config.service.path, json=review("pod-privileged.json"))
    assert r.status_code == 200
    assert named_controls(r.json()["response"]["status"]["message"]) == {
        "K8S-PSS-002", "K8S-PSS-102", "K8S-PSS-106"}


# ---------------------------------------------------------------- request tables


def test_request_tables():
    rows = request_rows(parse_review(review("pod-generated-name.json")))
    assert rows["k8s:request"] == [("705ab4f5-6393-11e8-b7cc-42010a800002", "Pod", "shop",
                                    "web-7d4b9c-", "CREATE", "alice@example.com")]
    assert rows["k8s:resource"] == [("", "v1", "pods", "")]
    assert rows["k8s:user_group"] == [("developers",), ("system:authenticated",)]
    assert rows["k8s:label"] == [("app", "web")]
    assert rows["k8s:container"] == [("web", "nginx:1.27.2", "container")]
    assert ("spec.containers[0].securityContext.capabilities.drop[0]", "ALL") in \
        rows["k8s:object"]
    assert ("spec.automountServiceAccountToken", "False") in rows["k8s:object"]
    assert rows["k8s:old_object"] == []


def test_flatten_quotes_keys_with_dots():
    assert list(flatten({"metadata": {"labels": {"app.kubernetes.io/name": "x"}}})) == [
        ('metadata.labels["app.kubernetes.io/name"]', "x")]


# ---------------------------------------------------------------- bad reviews

BAD = [
    ([], "body: must be a JSON object"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}, 'kind: must be "AdmissionReview"'),
    ({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}},
     'apiVersion: must be "admission.k8s.io/v1"'),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}, "request: missing"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
      "request": {"operation": "CREATE"}}, "request.uid: missing"),
]


@pytest.mark.parametrize(("body", "message"), BAD)
def test_a_bad_review_is_a_400_naming_the_field(client, body, message):
    r = client.post(URL, json=body)
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith(message)


@pytest.mark.parametrize(("path", "value", "message"), [
    (("operation",), "PATCH", "request.operation: must be one of"),
    (("kind",), "Pod", "request.kind: must be an object"),
    (("object",), [], "request.object: must be the object"),
    (("object", "metadata"), ["web"], "request.object.metadata: must be an object"),
    (("dryRun",), "yes", "request.dryRun: must be true or false"),
    (("userInfo", "groups"), "devs", "request.userInfo: username must be a string"),
])
def test_a_bad_request_field_is_named(client, path, value, message):
    body = review("pod-restricted.json")
    at = body["request"]
    for key in path[:-1]:
        at = at[key]
    at[path[-1]] = value
    r = client.post(URL, json=body)
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith(message)


# ---------------------------------------------------------------- over TLS, end to end


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signs for 127.0.0.1 (what the webhook's caBundle and
    ``tls.cert_file`` hold): ``(ca.pem, server.pem, server-key.pem)``."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("charter test CA"))
          .issuer_name(_name("charter test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("charter.charter.svc"))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("charter.charter.svc"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "server.pem", folder / "server-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@pytest.fixture
def tls_server(tmp_path):
    """``charter serve`` over HTTPS on 127.0.0.1, the pack enabled; stopped by its PID."""
    ca, cert, key = make_certificates(tmp_path)
    reservation = reserve_port()  # held until the server is done: uvicorn binds it anyway
    port = reservation.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    env.update({"CHARTER_DATA_DIR": str(tmp_path), "CHARTER_HOST": "127.0.0.1",
                "CHARTER_PORT": str(port), "CHARTER_LOG_LEVEL": "warning",
                "CHARTER_TLS__CERT_FILE": str(cert), "CHARTER_TLS__KEY_FILE": str(key)})
    log = tmp_path / "serve.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "charter.cli.main", "serve"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ssl.create_default_context(cafile=str(ca)), timeout=30)
    try:
        deadline = time.monotonic() + 90
        while True:  # polled until it answers: the server has no readiness signal of its own
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.1)
        r = client.post(f"/v1/packs/{PACK}?action=enable", json={})
        assert r.status_code in (200, 201), r.text
        yield client, ca, port
    finally:
        client.close()
        reservation.close()
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)


def test_end_to_end_over_tls(tls_server):
    client, _, port = tls_server
    for fixture in sorted(EXPECTED):
        r = client.post(URL, json=review(fixture))
        assert r.status_code == 200, r.text
        check_answer(r.json(), fixture)
    # a client that does not trust the CA is refused the connection, as an API server
    # without the caBundle would be
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.post(f"https://127.0.0.1:{port}{URL}", json=review("pod-restricted.json"))


def test_an_update_decides_on_the_new_object_not_the_old_one_left_live(pack, client):
    """The old object is live (the driver's tables hold it); an update takes its rows out
    before the new object's go in, so the old object's privileged container refuses
    nothing once the update drops it, and a privileged one the update adds refuses it."""
    assert client.post("/v1/policies", json={"name": "no_privileged"}).status_code == 201
    rest = ", ".join(["_"] * 12)  # container_security: namespace, pod, container, kind,
    rule = ('deny(r) :- k8s:request(_, "Pod", ns, pod, _, _), '  # privileged, then 12 more
            f'kubernetes:container_security(ns, pod, c, _, "True", {rest}), '
            'r = "container " + c + " runs privileged"')
    r = client.post("/v1/policies/no_privileged/rules", json={"rule": rule})
    assert r.status_code == 201, r.json()
    url = "/v1/decisions/kubernetes/no_privileged"
    adding = review("pod-update-privileged.json")
    dropping = review("pod-update-privileged.json")
    request = dropping["request"]
    request["object"], request["oldObject"] = request["oldObject"], request["object"]

    def live(body: dict) -> list[Delta]:  # the old object, as the driver has it listed
        created = dict(body["request"], operation="CREATE", object=body["request"]["oldObject"],
                       oldObject=None)
        inserted, _ = object_rows(parse_review({**body, "request": created}))
        return [Delta(t, row, 1) for t, rows in inserted.items() for row in rows]

    pack.engine.apply(live(dropping))  # the privileged pod runs
    r = client.post(url, json=dropping).json()["response"]
    assert r["allowed"] is True, r
    pack.engine.apply([Delta(d.table, d.row, -1) for d in live(dropping)])
    pack.engine.apply(live(adding))  # the unprivileged pod runs
    r = client.post(url, json=adding).json()["response"]
    assert r["allowed"] is False
    assert r["status"]["message"] == "container web runs privileged"
