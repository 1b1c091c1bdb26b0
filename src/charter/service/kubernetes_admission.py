"""Kubernetes admission: an ``admission.k8s.io/v1`` AdmissionReview as request rows, decided
by a policy (``deny``/``allow``, :mod:`charter.service.decisions`) or by an enabled pack's
controls, and the AdmissionReview the API server expects back.

The request becomes two kinds of rows, both hypothetical (applied with simulate's machinery,
undone before the answer, published nowhere):

- the *request tables* (module ``k8s``, read by position; docs/decisions.md):
  ``k8s:request(uid, kind, namespace, name, operation, user)``,
  ``k8s:resource(group, version, resource, sub_resource)``, ``k8s:user_group(group)``,
  ``k8s:object(path, value)`` and ``k8s:old_object(path, value)`` (every scalar of the
  object, at a dotted and indexed path such as ``spec.containers[0].image``),
  ``k8s:label(key, value)``, ``k8s:annotation(key, value)`` and
  ``k8s:container(name, image, kind)``;
- the object itself in the tables the ``kubernetes`` driver fills (``kubernetes:pods``,
  ``kubernetes:container_security``...), read by the driver's own translators
  (:mod:`charter.datasources.drivers.kubernetes_tables`). A pack control that flags a
  running pod therefore flags the pod being admitted, and a deny rule may join the pod with
  the live ones (the namespace's labels, the other pods of its node...). For an UPDATE the
  old object's rows are taken out first; for a DELETE they are only taken out.

A pack decides Gatekeeper's way: the controls whose violations *appear* because of the
object (its rows after, less those of the state without it) refuse it, each named with its
control id and title; the violations the cluster already has do not.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from charter.datasources.drivers.kubernetes_tables import CONTAINER_KINDS, RESOURCES, Table
from charter.lang.errors import CharterError
from charter.service.decisions import decide, signed_deltas
from charter.service.errors import ServiceError
from charter.service.simulate import Step, Update, projected, row_key

API_VERSION = "admission.k8s.io/v1"
REVIEW_KIND = "AdmissionReview"
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")
FAIL_MODES = ("closed", "open")
WARNING_LIMIT = 256  # the API server may truncate a longer warning (Warning header limits)
DRIVER = "kubernetes"

#: The object kinds whose objects go into the driver's tables, by (API group, kind).
KIND_TABLES: dict[tuple[str, str], tuple[Table, ...]] = {}
for _resource, (_group, _kind) in zip(RESOURCES, (
        ("", "Namespace"), ("", "Node"), ("", "Pod"), ("apps", "Deployment"), ("", "Service"),
        ("networking.k8s.io", "NetworkPolicy"), ("", "ServiceAccount"),
        ("rbac.authorization.k8s.io", "Role"), ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding")), strict=True):
    KIND_TABLES[(_group, _kind)] = _resource.tables
#: Subresources whose object is the whole parent object (adding an ephemeral container).
WHOLE_OBJECT_SUBRESOURCES = ("", "ephemeralcontainers")


class ReviewError(ServiceError):
    """A body that is not an AdmissionReview the API server sends: 400, naming the field."""

    status = 400


@dataclass(frozen=True)
class AdmissionRequest:
    """What of an AdmissionReview's ``request`` a decision reads."""

    uid: str
    operation: str
    group: str
    version: str
    kind: str
    resource: str
    sub_resource: str
    namespace: str
    name: str
    user: str
    groups: tuple[str, ...]
    object: Mapping | None
    old_object: Mapping | None
    dry_run: bool


@dataclass
class Verdict:
    """The decision: ``allowed``, the ``reasons`` a refusal gives (the status message), the
    ``warnings`` the user sees either way, the rows that made it, and ``error`` when the
    policy could not be evaluated (``allowed`` is then the fail mode's answer)."""

    allowed: bool
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows: dict[str, list[tuple]] = field(default_factory=dict)
    error: str | None = None


# ---------------------------------------------------------------- reading the review


def _field(where: str, fix: str) -> ReviewError:
    return ReviewError(f"{where}: {fix}")


def _text(req: Mapping, key: str, where: str, required: bool = False) -> str:
    value = req.get(key)
    if value is None or value == "":
        if required:
            raise _field(f"request.{key}", f"missing; the API server always sends it, so this "
                         f"is not an AdmissionReview from one ({where})")
        return ""
    if not isinstance(value, str):
        raise _field(f"request.{key}", f"must be a string, not {type(value).__name__}")
    return value


def _gvk(req: Mapping, key: str, last: str) -> tuple[str, str, str]:
    value = req.get(key)
    if not isinstance(value, Mapping) or not isinstance(value.get(last), str) \
            or not value.get(last):
        raise _field(f"request.{key}", f'must be an object with "group", "version" and '
                     f'"{last}" (e.g. {{"group": "", "version": "v1", "{last}": '
                     f'"{"Pod" if last == "kind" else "pods"}"}})')
    parts = [value.get("group") or "", value.get("version") or "", value[last]]
    if not all(isinstance(p, str) for p in parts):
        raise _field(f"request.{key}", "group, version and " + last + " must be strings")
    return parts[0], parts[1], parts[2]


def _object(req: Mapping, key: str) -> Mapping | None:
    value = req.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _field(f"request.{key}", f"must be the object as JSON (or null), not "
                     f"{type(value).__name__}")
    meta = value.get("metadata")
    if meta is not None and not isinstance(meta, Mapping):
        raise _field(f"request.{key}.metadata", f"must be an object (ObjectMeta: name, "
                     f"namespace, labels...) or left out, not {type(meta).__name__}")
    return value


def parse_review(body: object) -> AdmissionRequest:
    """The request of an ``admission.k8s.io/v1`` AdmissionReview, checked.

    Raises:
        ReviewError: what is wrong, naming the field and the fix.
    """
    if not isinstance(body, Mapping):
        raise _field("body", "must be a JSON object: an AdmissionReview "
                     f'({{"apiVersion": "{API_VERSION}", "kind": "{REVIEW_KIND}", '
                     '"request": {...}}), as the API server sends it')
    if body.get("kind") != REVIEW_KIND:
        raise _field("kind", f'must be "{REVIEW_KIND}", not {body.get("kind")!r}: point only '
                     "a ValidatingWebhookConfiguration at this URL")
    if body.get("apiVersion") != API_VERSION:
        raise _field("apiVersion", f'must be "{API_VERSION}", not {body.get("apiVersion")!r}; '
                     f'set admissionReviewVersions: ["v1"] in the webhook configuration '
                     "(deploy/kubernetes/validating-webhook.yaml)")
    req = body.get("request")
    if not isinstance(req, Mapping):
        raise _field("request", "missing or not an object: the API server sends the "
                     "request to review there (a response is what Charter answers)")
    uid = _text(req, "uid", "it is echoed in the response", required=True)
    operation = _text(req, "operation", "CREATE, UPDATE, DELETE or CONNECT", required=True)
    if operation not in OPERATIONS:
        raise _field("request.operation", f"must be one of {', '.join(OPERATIONS)}, not "
                     f"{operation!r}")
    group, version, kind = _gvk(req, "kind", "kind")
    _, _, resource = _gvk(req, "resource", "resource")
    user = req.get("userInfo") or {}
    if not isinstance(user, Mapping):
        raise _field("request.userInfo", 'must be an object ({"username", "groups"})')
    username = user.get("username") or ""
    groups = user.get("groups") or []
    if not isinstance(username, str) or not isinstance(groups, list) \
            or not all(isinstance(g, str) for g in groups):
        raise _field("request.userInfo", "username must be a string and groups a list of "
                     "strings")
    dry_run = req.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise _field("request.dryRun", "must be true or false")
    return AdmissionRequest(
        uid=uid, operation=operation, group=group, version=version, kind=kind,
        resource=resource, sub_resource=_text(req, "subResource", ""),
        namespace=_text(req, "namespace", ""), name=_text(req, "name", ""), user=username,
        groups=tuple(groups), object=_object(req, "object"),
        old_object=_object(req, "oldObject"), dry_run=dry_run)


# ---------------------------------------------------------------- request tables


def _key(key: str) -> str:
    """A map key as a path step: bare, or bracketed and quoted where it has a dot or a
    bracket (``metadata.labels["app.kubernetes.io/name"]``)."""
    return f'["{key}"]' if any(ch in key for ch in '.[]"') else key


def flatten(value: Any, path: str = "") -> Iterator[tuple[str, str | int | float]]:
    """``(path, scalar)`` for every scalar of a JSON value: map keys joined with dots, list
    items by index (``spec.containers[0].securityContext.privileged``); booleans as
    ``"True"``/``"False"`` as the kubernetes driver writes them; null as no row.

    >>> list(flatten({"spec": {"hostNetwork": True, "containers": [{"name": "a"}]}}))
    [('spec.hostNetwork', 'True'), ('spec.containers[0].name', 'a')]
    """
    if isinstance(value, Mapping):
        for k, v in value.items():
            step = _key(str(k))
            yield from flatten(v, f"{path}{step}" if step.startswith("[") or not path
                               else f"{path}.{step}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from flatten(v, f"{path}[{i}]")
    elif isinstance(value, bool):
        yield path, str(value)
    elif isinstance(value, str | int | float):
        yield path, value


def _pairs(mapping: object) -> list[tuple[str, str]]:
    if not isinstance(mapping, Mapping):
        return []
    return sorted((str(k), str(v)) for k, v in mapping.items() if v is not None)


def _meta(obj: Mapping | None, key: str) -> object:
    meta = obj.get("metadata") if obj else None
    return meta.get(key) if isinstance(meta, Mapping) else None


def _containers(obj: Mapping | None) -> list[tuple[str, str, str]]:
    spec = obj.get("spec") if obj else None
    if not isinstance(spec, Mapping):
        return []
    return [(str(c.get("name") or ""), str(c.get("image") or ""), kind)
            for key, kind in CONTAINER_KINDS for c in spec.get(key) or []
            if isinstance(c, Mapping)]


def request_rows(req: AdmissionRequest) -> dict[str, list[tuple]]:
    """The ``k8s:`` request tables of a review (see the module's docstring)."""
    current = req.object if req.object is not None else req.old_object
    return {
        "k8s:request": [(req.uid, req.kind, req.namespace, _name(req), req.operation,
                         req.user)],
        "k8s:resource": [(req.group, req.version, req.resource, req.sub_resource)],
        "k8s:user_group": [(g,) for g in sorted(set(req.groups))],
        "k8s:object": sorted(set(flatten(req.object or {})), key=row_key),
        "k8s:old_object": sorted(set(flatten(req.old_object or {})), key=row_key),
        "k8s:label": _pairs(_meta(current, "labels")),
        "k8s:annotation": _pairs(_meta(current, "annotations")),
        "k8s:container": sorted(set(_containers(current)), key=row_key),
    }


def _name(req: AdmissionRequest) -> str:
    """The object's name; for a CREATE that leaves it to the server (a controller's pod),
    its ``generateName`` prefix, the only name it has yet."""
    if req.name:
        return req.name
    for obj in (req.object, req.old_object):
        for key in ("name", "generateName"):
            value = _meta(obj, key)
            if isinstance(value, str) and value:
                return value
    return ""


# ---------------------------------------------------------------- the driver's tables


def _as_listed(req: AdmissionRequest, obj: Mapping) -> dict:
    """The object as the driver would list it: named, and in the request's namespace."""
    meta = dict(obj.get("metadata") or {})
    if not meta.get("name"):
        meta["name"] = _name(req)
    if req.namespace and not meta.get("namespace"):
        meta["namespace"] = req.namespace
    return {**obj, "metadata": meta}


def driver_tables(req: AdmissionRequest) -> tuple[Table, ...]:
    """The driver's tables the reviewed object fills (none for kinds it does not list, or
    for a subresource that is not the whole object, such as ``pods/exec``)."""
    if req.sub_resource not in WHOLE_OBJECT_SUBRESOURCES:
        return ()
    return KIND_TABLES.get((req.group, req.kind), ())


def object_rows(req: AdmissionRequest, datasource: str = DRIVER
                ) -> tuple[dict[str, list[tuple]], dict[str, list[tuple]]]:
    """``(inserted, deleted)``: the object's rows and the old object's, in the tables the
    kubernetes driver of ``datasource`` fills."""
    tables = driver_tables(req)
    out: list[dict[str, list[tuple]]] = []
    for obj in (req.object if req.operation != "DELETE" else None,
                req.old_object if req.operation in ("UPDATE", "DELETE") else None):
        rows: dict[str, list[tuple]] = {}
        if obj is not None:
            listed = _as_listed(req, obj)
            for table in tables:
                rows[f"{datasource}:{table.name}"] = table.rows(listed)
        out.append(rows)
    return out[0], out[1]


# ---------------------------------------------------------------- deciding


def decide_review(service, target: str, req: AdmissionRequest, *, fail: str = "closed",
                  datasource: str = DRIVER, controls: Sequence[str] = ()) -> Verdict:
    """Decide a review by ``target``: a policy's ``deny``/``allow`` (decisions.decide) or,
    when no policy has that name, an enabled pack's controls (those of ``controls``, ids or
    id prefixes; all when empty). ``fail`` answers when it cannot be evaluated."""
    if fail not in FAIL_MODES:
        raise ServiceError(f"fail must be one of {', '.join(FAIL_MODES)}, not {fail!r}")
    if service.policies.find(target) is not None:
        if controls:
            raise ServiceError(f"controls ({', '.join(controls)}) choose among a pack's "
                               f"controls, but {target} is a policy, which decides by its "
                               "deny and allow rows; name the pack, or leave controls out")
        return _policy_verdict(service, target, req, fail, datasource)
    try:
        return _pack_verdict(service, target, req, datasource, controls)
    except (ServiceError, CharterError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        return _failed(message, fail)


def _failed(message: str, fail: str) -> Verdict:
    if fail == "open":
        return Verdict(True, warnings=[f"Charter could not decide (fail-open): {message}"],
                       error=message)
    return Verdict(False, reasons=[f"Charter could not decide (fail-closed): {message}"],
                   error=message)


def _policy_verdict(service, policy: str, req: AdmissionRequest, fail: str,
                    datasource: str) -> Verdict:
    inserted, deleted = object_rows(req, datasource)
    rows = request_rows(req)
    rows.update(inserted)  # an update's old object out, the new one in (rows of both stay)
    decision = decide(service, policy, rows, fail=fail, removed_rows=deleted)
    if decision.error is not None:
        verdict = _failed(decision.error, fail)
        verdict.rows = decision.rows
        return verdict
    return Verdict(decision.allowed, reasons=list(decision.reasons), rows=decision.rows)


def _chosen(pack, controls: Sequence[str]) -> list:
    if not controls:
        return list(pack.controls)
    chosen = [c for c in pack.controls if any(c.id == s or c.id.startswith(s)
                                             for s in controls)]
    if not chosen:
        ids = ", ".join(c.id for c in pack.controls)
        raise ServiceError(f"controls {', '.join(controls)} match no control of pack "
                           f"{pack.id} (its controls: {ids})")
    return chosen


def _step(engine, tables: Mapping[str, Iterable[tuple]], sign: int, text: str) -> list[Step]:
    """The rows as one step (one batch: the engine propagates them together), without the
    tables no rule reads and no datasource declares; no step when no row is left."""
    deltas = signed_deltas(engine, tables, sign, _schema_error)
    return [Update(text, deltas)] if deltas else []


def _schema_error(table: str, width: int, row: tuple) -> str:
    return (f"{table} has {width} columns in the engine but the kubernetes driver writes "
            f"{len(row)}: the datasource's schema is older than this Charter; update the "
            "datasource (PUT /v1/data-sources/<id>) to refresh it")


def _pack_verdict(service, ref: str, req: AdmissionRequest, datasource: str,
                  controls: Sequence[str]) -> Verdict:
    try:
        pack = service.packs.get(ref)
    except ServiceError as exc:
        raise ServiceError(f"no policy or pack named {ref}: name a decision policy (with "
                           "deny or allow rules) or an enabled pack such as "
                           "kubernetes-pod-security") from exc
    if pack.id not in service.packs.enabled:
        raise ServiceError(f"pack {pack.id} is not enabled: enable it first (charter pack "
                           f"enable {pack.id}) so its controls can decide")
    chosen = _chosen(pack, controls)
    engine = service.engine
    inserted, deleted = object_rows(req, datasource)
    with service.lock:
        watched = [(c, f"{c.policy}:error") for c in chosen
                   if engine.has_table(f"{c.policy}:error")]
        removing = _step(engine, deleted, -1, f"{req.operation}: the old object out")
        adding = _step(engine, {**request_rows(req), **inserted}, 1,
                       f"{req.operation}: the request and the object in")
        anchor = watched[0][0].policy if watched else pack.id.replace("-", "_")
        # The violations the object adds are the rows its step inserts into the controls'
        # tables, against the state without it (the old object already out): read from the
        # step's deltas, not by comparing whole tables before and after.
        deltas: list[dict] = []
        added: dict[str, set[tuple]] = {}
        with projected(engine, anchor, None, removing + adding, deltas=deltas):
            if adding:
                added = {t: set(d.inserted) for t, d in deltas[-1].items()}
    reasons: list[str] = []
    rows: dict[str, list[tuple]] = {}
    for control, table in watched:
        new = sorted(added.get(table, ()), key=row_key)
        if new:
            rows[control.id] = new
            reasons += [f"{control.id} {control.title}: {_detail(control, row)}" for row in new]
    return Verdict(not reasons, reasons=reasons, rows=rows)


def _detail(control, row: tuple) -> str:
    """A violation row in words: its ``detail`` column, with the other columns named."""
    names = [c.name for c in control.columns]
    values = dict(zip(names, row, strict=False))
    detail = values.pop("detail", None)
    where = ", ".join(f"{k} {v}" for k, v in values.items() if v not in ("", None))
    return f"{where}: {detail}" if detail is not None else where


# ---------------------------------------------------------------- the answer


def review_response(uid: str, verdict: Verdict) -> dict:
    """The AdmissionReview the API server expects: the request's ``uid``, ``allowed``, a
    403 ``status`` with the reasons when refused, and ``warnings`` when there are any."""
    response: dict[str, Any] = {"uid": uid, "allowed": verdict.allowed}
    if not verdict.allowed:
        message = "; ".join(verdict.reasons) or "refused by Charter"
        response["status"] = {"code": 403, "message": message}
    warnings = [w if len(w) <= WARNING_LIMIT else w[:WARNING_LIMIT - 3] + "..."
                for w in verdict.warnings]
    if warnings:
        response["warnings"] = warnings
    return {"apiVersion": API_VERSION, "kind": REVIEW_KIND, "response": response}
