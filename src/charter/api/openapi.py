"""``/openapi.json``: FastAPI's description, completed with what the handlers read themselves.

- the request bodies' schemas (``components/schemas``, from :data:`models.DOCUMENTED`);
- FastAPI's 422 removed: Charter answers every validation error with 400 in Congress's
  error body, which each route declares;
- who may call each operation (``security`` and an ``x-charter-role`` from
  api/permissions.py), with the two ways of sending a token as security schemes;
- Open API links from each create to the reads and deletes of what it created, so a
  stateful tester (schemathesis) can follow them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from charter.api.models import DOCUMENTED
from charter.api.permissions import OPEN, PERMISSIONS

SECURITY_SCHEMES = {
    "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token",
              "description": "A static token or a Keystone token (python-congressclient "
                             "sends this header)."},
    "bearer": {"type": "http", "scheme": "bearer"},
}

#: (method, path of a create, status) -> {link name: (method, path, {parameter: expression})}
LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("post", "/v1/policies", "201"): {
        "GetPolicy": ("get", "/v1/policies/{policy}", {"policy": "$response.body#/id"}),
        "ListRules": ("get", "/v1/policies/{policy}/rules", {"policy": "$response.body#/id"}),
        "CreateRule": ("post", "/v1/policies/{policy}/rules",
                       {"policy": "$response.body#/id"}),
        "CheckRules": ("post", "/v1/policies/{policy}/check",
                       {"policy": "$response.body#/id"}),
        "PolicyStatus": ("get", "/v1/policies/{policy}/status",
                         {"policy": "$response.body#/id"}),
        "DeletePolicy": ("delete", "/v1/policies/{policy}", {"policy": "$response.body#/id"}),
    },
    ("post", "/v1/policies/{policy}/rules", "201"): {
        "GetRule": ("get", "/v1/policies/{policy}/rules/{rule}",
                    {"policy": "$request.path.policy", "rule": "$response.body#/id"}),
        "ReplaceRule": ("put", "/v1/policies/{policy}/rules/{rule}",
                        {"policy": "$request.path.policy", "rule": "$response.body#/id"}),
        "DeleteRule": ("delete", "/v1/policies/{policy}/rules/{rule}",
                       {"policy": "$request.path.policy", "rule": "$response.body#/id"}),
    },
    ("post", "/v1/data-sources", "201"): {
        "GetDatasource": ("get", "/v1/data-sources/{ds}", {"ds": "$response.body#/id"}),
        "DatasourceStatus": ("get", "/v1/data-sources/{ds}/status",
                             {"ds": "$response.body#/id"}),
        "DatasourceTables": ("get", "/v1/data-sources/{ds}/tables",
                             {"ds": "$response.body#/id"}),
        "DeleteDatasource": ("delete", "/v1/data-sources/{ds}", {"ds": "$response.body#/id"}),
    },
    ("post", "/v1/packs/{pack}", "200"): {
        "GetPack": ("get", "/v1/packs/{pack}", {"pack": "$request.path.pack"}),
        "PackPosture": ("get", "/v1/packs/{pack}/posture", {"pack": "$request.path.pack"}),
    },
    ("post", "/v1/librarypolicies", "201"): {
        "GetLibraryPolicy": ("get", "/v1/librarypolicies/{lib}", {"lib": "$response.body#/id"}),
        "ReplaceLibraryPolicy": ("put", "/v1/librarypolicies/{lib}",
                                 {"lib": "$response.body#/id"}),
        "DeleteLibraryPolicy": ("delete", "/v1/librarypolicies/{lib}",
                                {"lib": "$response.body#/id"}),
    },
}


def _pointer(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")


def build(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name, model in DOCUMENTED.items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["securitySchemes"] = SECURITY_SCHEMES
    roles = {(p.method.lower(), p.path): p.role for p in PERMISSIONS if p.when is None}
    qualified: dict[tuple[str, str], list[str]] = {}
    for p in PERMISSIONS:
        if p.when is not None:
            qualified.setdefault((p.method.lower(), p.path), []).append(f"{p.when}: {p.role}")
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.get("responses", {})
            responses.pop("422", None)
            role = roles.get((method, path), OPEN)
            operation["x-charter-role"] = role
            if qualified.get((method, path)):
                operation["x-charter-role-when"] = qualified[(method, path)]
            operation["security"] = [] if role == OPEN else [{"token": []}, {"bearer": []}]
    for (method, path, status), links in LINKS.items():
        response = doc["paths"][path][method]["responses"][status]
        response["links"] = {
            name: {"operationRef": f"#/paths/{_pointer(target)}/{verb}",
                   "parameters": parameters}
            for name, (verb, target, parameters) in links.items()}
    return doc


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
