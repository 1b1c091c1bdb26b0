"""What the API accepts, the store keeps and every reader renders, before and after a
restart; what it refuses changes nothing.

Hypothesis writes policies, rules, comments, string constants and pushed rows made of any
Unicode text (lone surrogates included, as ``\\ud800`` escapes in the JSON body, which is
how a client sends them), integers near and past the limit, and floats. Each accepted write
must read back the same, through every read of it, and again from a service restarted on
the same database; each refused one must be a 400 that names the problem.
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.api.app import create_app
from charter.service.config import load_settings
from charter.service.service import Service
from charter.store import Store

KEY = Store.generate_key()

# Any character, surrogates (category Cs) included: JSON can carry them as escapes.
TEXT = st.text(st.characters(codec=None, categories=None), max_size=12)
VALUE = st.one_of(TEXT, st.integers(min_value=-(10 ** 120), max_value=10 ** 120),
                  st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none())


def valid(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def fits(value: object) -> bool:
    if isinstance(value, str):
        return valid(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return len(str(abs(value))) <= 100
    return True


def body(payload: object) -> bytes:
    """JSON as a client sends it: non-ASCII escaped, so a lone surrogate travels too."""
    return json.dumps(payload, ensure_ascii=True).encode()


def literal(value: str) -> str:
    """A Datalog string constant holding ``value`` (escapes as a Python literal)."""
    return json.dumps(value, ensure_ascii=True)


def start(path: Path) -> tuple[Service, TestClient]:
    service = Service(Store(f"sqlite:///{path / 'charter.db'}", secret_key=KEY))
    service.start()
    return service, TestClient(create_app(service, load_settings()),
                               raise_server_exceptions=False)


def snapshot(client: TestClient) -> dict:
    out = {}
    for p in client.get("/v1/policies").json()["results"]:
        name = p["name"]
        out[name] = {
            "description": p["description"],
            "rules": sorted((r["rule"], r["comment"]) for r in
                            client.get(f"/v1/policies/{name}/rules").json()["results"]),
            "tables": {t["id"]: sorted(map(repr, (r["data"] for r in client.get(
                f"/v1/policies/{name}/tables/{t['id']}/rows").json()["results"])))
                for t in client.get(f"/v1/policies/{name}/tables").json()["results"]},
            "violations": client.get(f"/v1/policies/{name}/violations").status_code,
        }
    rows = client.get("/v1/data-sources/inv/tables/t/rows")
    assert rows.status_code == 200, rows.text
    out["rows"] = sorted(map(repr, (r["data"] for r in rows.json()["results"])))
    return out


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(descriptions=st.lists(TEXT, min_size=1, max_size=3),
       constants=st.lists(TEXT, min_size=1, max_size=4),
       comments=st.lists(TEXT, min_size=1, max_size=3),
       rows=st.lists(st.tuples(VALUE, VALUE), max_size=6))
def test_what_the_api_accepts_survives_a_restart(tmp_path_factory, descriptions, constants,
                                                 comments, rows):
    path = tmp_path_factory.mktemp("state")
    service, client = start(path)
    try:
        headers = {"content-type": "application/json"}
        assert client.post("/v1/data-sources", json={
            "name": "inv", "driver": "push",
            "config": {"tables": {"t": ["a", "b"]}}}).status_code == 201
        for i, description in enumerate(descriptions):
            r = client.post("/v1/policies", content=body(
                {"name": f"p{i}", "description": description}), headers=headers)
            assert r.status_code == (201 if valid(description) else 400), r.text
        for i, (constant, comment) in enumerate(zip(constants, comments * 4, strict=False)):
            r = client.post("/v1/policies/p0/rules", content=body(
                {"rule": f"fact({literal(constant)}, {i})", "comment": comment}),
                headers=headers) if valid(descriptions[0]) else None
            if r is not None:
                ok = valid(constant) and valid(comment)
                assert r.status_code == (201 if ok else 400), r.text
                if not ok:
                    assert "invalid_unicode" in r.text or "surrogate" in r.text
        r = client.put("/v1/data-sources/inv/tables/t/rows", content=body(
            [list(row) for row in rows]), headers=headers)
        accepted = all(fits(v) for row in rows for v in row)
        assert r.status_code == (200 if accepted else 400), r.text
        before = snapshot(client)
    finally:
        client.close()
        service.close()
    service, client = start(path)
    try:
        assert snapshot(client) == before
    finally:
        client.close()
        service.close()
