"""The ``kubernetes`` driver's tables: which columns each has, and how each is read from the
API's JSON (the objects as the list and watch requests return them, not the client's models).

Each column's name, description and the function that reads it sit together, so the schema
the policies compile against and the rows cannot disagree. ``RESOURCES`` says which kind
(and which client call) fills which tables; ``kubernetes.py`` lists and watches them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s

from charter.datasources.driver import Column, Row, TableSpec

# ---------------------------------------------------------------- reading the API's JSON

Getter = Callable[[Mapping, Mapping], Any]  # (object, item of the object) -> value


def dig(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, or None where a step is missing."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def as_text(value: Any) -> str:
    return "" if value is None else str(value)


def _flag(value: Any) -> str:
    return str(value is True)


def _tri(value: Any) -> str:
    """A boolean the API may leave unset: "True", "False", or "" when not set."""
    return "" if value is None else str(value is True)


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def obj_text(*path: str) -> Getter:
    return lambda obj, _item: as_text(dig(obj, *path))


def item_text(*path: str) -> Getter:
    return lambda _obj, item: as_text(dig(item, *path))


def item_int(*path: str) -> Getter:
    return lambda _obj, item: _int(dig(item, *path))


NS: Getter = obj_text("metadata", "namespace")
NAME: Getter = obj_text("metadata", "name")


@dataclass(frozen=True)
class Col:
    name: str
    description: str
    get: Getter
    type: str = "string"


@dataclass(frozen=True)
class Table:
    """A table: its columns, and the items of an object that become its rows."""

    name: str
    columns: tuple[Col, ...]
    items: Callable[[Mapping], Iterable[Mapping]] = lambda obj: (obj,)

    def spec(self) -> TableSpec:
        return TableSpec(self.name, tuple(Column(c.name, c.description, c.type, nullable=False)
                                          for c in self.columns))

    def rows(self, obj: Mapping) -> list[Row]:
        return [tuple(c.get(obj, item) for c in self.columns) for item in self.items(obj)]


def _labels(obj: Mapping) -> list[Mapping]:
    labels = dig(obj, "metadata", "labels") or {}
    return [{"key": k, "value": v} for k, v in sorted(labels.items())]


def _list_of(*path: str) -> Callable[[Mapping], list[Mapping]]:
    return lambda obj: [i for i in (dig(obj, *path) or []) if isinstance(i, Mapping)]


def _ready(node: Mapping, _item: Mapping) -> str:
    for cond in dig(node, "status", "conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            return as_text(cond.get("status")) or "Unknown"
    return "Unknown"


def _containers(pod: Mapping) -> list[Mapping]:
    spec = dig(pod, "spec") or {}
    return [c for key in ("initContainers", "containers") for c in (spec.get(key) or [])
            if isinstance(c, Mapping)]


def _run_as_non_root(pod: Mapping, container: Mapping) -> str:
    own = dig(container, "securityContext", "runAsNonRoot")  # the container's overrides the pod's
    return _flag(own if own is not None else dig(pod, "spec", "securityContext", "runAsNonRoot"))


CONTAINER_KINDS = (("initContainers", "init"), ("containers", "container"),
                   ("ephemeralContainers", "ephemeral"))
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def _every_container(pod: Mapping) -> list[Mapping]:
    """Init, regular and ephemeral containers, each as ``{"kind": ..., "c": container}``."""
    spec = dig(pod, "spec") or {}
    return [{"kind": kind, "c": c} for key, kind in CONTAINER_KINDS
            for c in (spec.get(key) or []) if isinstance(c, Mapping)]


def _container_items(*path: str) -> Callable[[Mapping], list[Mapping]]:
    """The items at ``path`` of every container: ``{"container": name, "item": ...}``."""
    return lambda pod: [{"container": as_text(dig(e, "c", "name")), "item": i}
                        for e in _every_container(pod) for i in (dig(e, "c", *path) or [])
                        if isinstance(i, Mapping)]


def _capabilities(pod: Mapping) -> list[Mapping]:
    return [{"container": as_text(dig(e, "c", "name")), "action": action, "capability": cap}
            for e in _every_container(pod) for action in ("add", "drop")
            for cap in (dig(e, "c", "securityContext", "capabilities", action) or [])
            if isinstance(cap, str)]


def _csc_text(*path: str) -> Getter:  # a container's securityContext field as text
    return lambda _o, e: as_text(dig(e, "c", "securityContext", *path))


def _csc_tri(*path: str) -> Getter:
    return lambda _o, e: _tri(dig(e, "c", "securityContext", *path))


def _psc_text(*path: str) -> Getter:  # the pod's securityContext field as text
    return lambda o, _: as_text(dig(o, "spec", "securityContext", *path))


def _apparmor_annotation(pod: Mapping, entry: Mapping) -> str:
    name = as_text(dig(entry, "c", "name"))
    return as_text((dig(pod, "metadata", "annotations") or {}).get(APPARMOR_ANNOTATION + name))


def _volume_type(_pod: Mapping, volume: Mapping) -> str:
    """The volume's source: the one key besides ``name`` (hostPath, emptyDir, secret...)."""
    kinds = sorted(k for k in volume if k != "name")
    return kinds[0] if kinds else ""


def _role_rules(role: Mapping) -> list[Mapping]:
    """One item per (api group, resource, verb) of each rule, and per (URL, verb)."""
    out: list[Mapping] = []
    for rule in _list_of("rules")(role):
        verbs = [v for v in rule.get("verbs") or [] if isinstance(v, str)]
        names = ",".join(n for n in rule.get("resourceNames") or [] if isinstance(n, str))
        for group in rule.get("apiGroups") or ([""] if rule.get("resources") else []):
            for resource in rule.get("resources") or []:
                out += [{"api_group": group, "resource": resource, "verb": v,
                         "resource_names": names, "url": ""} for v in verbs]
        for url in rule.get("nonResourceURLs") or []:
            out += [{"api_group": "", "resource": "", "verb": v, "resource_names": "",
                     "url": url} for v in verbs]
    return out


def _subjects(binding: Mapping) -> list[Mapping]:
    return _list_of("subjects")(binding) or [{}]  # a binding without subjects still shows


def _pod_selector(policy: Mapping, _item: Mapping) -> str:
    return json.dumps(dig(policy, "spec", "podSelector") or {}, sort_keys=True)


NAMESPACES = Table("namespaces", (
    Col("name", "namespace name", NAME),
    Col("phase", "Active or Terminating", obj_text("status", "phase")),
))
NAMESPACE_LABELS = Table("namespace_labels", (
    Col("namespace", "namespace name", NAME),
    Col("key", "label key, e.g. pod-security.kubernetes.io/enforce", item_text("key")),
    Col("value", "label value", item_text("value")),
), _labels)
NODES = Table("nodes", (
    Col("name", "node name", NAME),
    Col("ready", 'the Ready condition: "True", "False" or "Unknown"', _ready),
    Col("unschedulable", '"True" when cordoned (spec.unschedulable)',
        lambda o, _: _flag(dig(o, "spec", "unschedulable"))),
    Col("kubelet_version", "kubelet version, e.g. v1.30.4",
        obj_text("status", "nodeInfo", "kubeletVersion")),
    Col("os_image", "operating system image, e.g. Ubuntu 22.04.4 LTS",
        obj_text("status", "nodeInfo", "osImage")),
))
NODE_LABELS = Table("node_labels", (
    Col("node", "node name", NAME),
    Col("key", "label key", item_text("key")),
    Col("value", "label value", item_text("value")),
), _labels)
PODS = Table("pods", (
    Col("namespace", "pod namespace", NS),
    Col("name", "pod name", NAME),
    Col("node", 'node the pod is bound to ("" while unscheduled)', obj_text("spec", "nodeName")),
    Col("phase", "Pending, Running, Succeeded, Failed or Unknown", obj_text("status", "phase")),
    Col("service_account", "service account the pod runs as",
        lambda o, _: as_text(dig(o, "spec", "serviceAccountName")) or "default"),
    Col("host_network", '"True" when the pod uses the node\'s network namespace',
        lambda o, _: _flag(dig(o, "spec", "hostNetwork"))),
    Col("uid", "pod UID (metadata.uid)", obj_text("metadata", "uid")),
))
POD_SECURITY = Table("pod_security", (
    Col("namespace", "pod namespace", NS),
    Col("pod", "pod name", NAME),
    Col("host_pid", '"True" when the pod shares the node\'s process namespace (spec.hostPID)',
        lambda o, _: _flag(dig(o, "spec", "hostPID"))),
    Col("host_ipc", '"True" when the pod shares the node\'s IPC namespace (spec.hostIPC)',
        lambda o, _: _flag(dig(o, "spec", "hostIPC"))),
    Col("run_as_non_root", 'spec.securityContext.runAsNonRoot: "True", "False" or "" (unset)',
        lambda o, _: _tri(dig(o, "spec", "securityContext", "runAsNonRoot"))),
    Col("run_as_user", 'spec.securityContext.runAsUser, e.g. "1000" ("" when unset)',
        _psc_text("runAsUser")),
    Col("seccomp_profile", "spec.securityContext.seccompProfile.type: RuntimeDefault, "
        'Localhost or Unconfined ("" when unset)', _psc_text("seccompProfile", "type")),
    Col("apparmor_profile", "spec.securityContext.appArmorProfile.type: RuntimeDefault, "
        'Localhost or Unconfined ("" when unset)', _psc_text("appArmorProfile", "type")),
    Col("selinux_type", 'spec.securityContext.seLinuxOptions.type ("" when unset)',
        _psc_text("seLinuxOptions", "type")),
    Col("selinux_user", 'spec.securityContext.seLinuxOptions.user ("" when unset)',
        _psc_text("seLinuxOptions", "user")),
    Col("selinux_role", 'spec.securityContext.seLinuxOptions.role ("" when unset)',
        _psc_text("seLinuxOptions", "role")),
    Col("host_process", 'spec.securityContext.windowsOptions.hostProcess: "True", "False" or '
        '"" (unset)', lambda o, _: _tri(dig(o, "spec", "securityContext", "windowsOptions",
                                             "hostProcess"))),
    Col("automount_token", 'spec.automountServiceAccountToken: "True", "False" or "" (unset: '
        "the service account decides)",
        lambda o, _: _tri(dig(o, "spec", "automountServiceAccountToken"))),
))
CONTAINER_SECURITY = Table("container_security", (
    Col("namespace", "pod namespace", NS),
    Col("pod", "pod name", NAME),
    Col("container", "container name", lambda _o, e: as_text(dig(e, "c", "name"))),
    Col("kind", "init, container or ephemeral", item_text("kind")),
    Col("privileged", 'securityContext.privileged: "True", "False" or "" (unset)',
        _csc_tri("privileged")),
    Col("allow_privilege_escalation", 'securityContext.allowPrivilegeEscalation: "True", '
        '"False" or "" (unset, which allows it)', _csc_tri("allowPrivilegeEscalation")),
    Col("run_as_non_root", 'the container\'s own securityContext.runAsNonRoot: "True", '
        '"False" or "" (unset: the pod\'s applies)', _csc_tri("runAsNonRoot")),
    Col("run_as_user", 'the container\'s own securityContext.runAsUser ("" when unset)',
        _csc_text("runAsUser")),
    Col("read_only_root_filesystem", 'securityContext.readOnlyRootFilesystem: "True", '
        '"False" or "" (unset)', _csc_tri("readOnlyRootFilesystem")),
    Col("proc_mount", 'securityContext.procMount: Default or Unmasked ("" when unset)',
        _csc_text("procMount")),
    Col("seccomp_profile", "the container's own securityContext.seccompProfile.type "
        '("" when unset: the pod\'s applies)', _csc_text("seccompProfile", "type")),
    Col("apparmor_profile", "the container's own securityContext.appArmorProfile.type "
        '("" when unset: the pod\'s applies)', _csc_text("appArmorProfile", "type")),
    Col("apparmor_annotation", "the pod's annotation container.apparmor.security.beta."
        'kubernetes.io/<container>, e.g. runtime/default ("" when none)', _apparmor_annotation),
    Col("selinux_type", 'securityContext.seLinuxOptions.type ("" when unset)',
        _csc_text("seLinuxOptions", "type")),
    Col("selinux_user", 'securityContext.seLinuxOptions.user ("" when unset)',
        _csc_text("seLinuxOptions", "user")),
    Col("selinux_role", 'securityContext.seLinuxOptions.role ("" when unset)',
        _csc_text("seLinuxOptions", "role")),
    Col("host_process", 'securityContext.windowsOptions.hostProcess: "True", "False" or "" '
        "(unset)", _csc_tri("windowsOptions", "hostProcess")),
), _every_container)
CONTAINER_CAPABILITIES = Table("container_capabilities", (
    Col("namespace", "pod namespace", NS),
    Col("pod", "pod name", NAME),
    Col("container", "container name (init and ephemeral containers included)",
        item_text("container")),
    Col("action", "add or drop (securityContext.capabilities.add / .drop); one row per "
        "capability", item_text("action")),
    Col("capability", "capability as written, e.g. NET_ADMIN or ALL", item_text("capability")),
), _capabilities)
CONTAINER_PORTS = Table("container_ports", (
    Col("namespace", "pod namespace", NS),
    Col("pod", "pod name", NAME),
    Col("container", "container name (init and ephemeral containers included)",
        item_text("container")),
    Col("container_port", "port the container listens on",
        lambda _o, p: _int(dig(p, "item", "containerPort")), "integer"),
    Col("host_port", "port opened on the node for it (0 when none)",
        lambda _o, p: _int(dig(p, "item", "hostPort")), "integer"),
    Col("protocol", "TCP, UDP or SCTP",
        lambda _o, p: as_text(dig(p, "item", "protocol")) or "TCP"),
), _container_items("ports"))
POD_VOLUMES = Table("pod_volumes", (
    Col("namespace", "pod namespace", NS),
    Col("pod", "pod name", NAME),
    Col("name", "volume name", item_text("name")),
    Col("type", "the volume's source, as the API names it: hostPath, emptyDir, configMap, "
        "secret, persistentVolumeClaim, projected, downwardAPI, csi, ephemeral, nfs...",
        _volume_type),
    Col("host_path", 'hostPath.path for a hostPath volume ("" otherwise)',
        item_text("hostPath", "path")),
), _list_of("spec", "volumes"))
POD_SYSCTLS = Table("pod_sysctls", (
    Col("namespace", "pod namespace", NS),
    Col("pod", "pod name", NAME),
    Col("name", "sysctl set for the pod (spec.securityContext.sysctls), e.g. "
        "net.ipv4.ip_unprivileged_port_start", item_text("name")),
    Col("value", "its value", item_text("value")),
), _list_of("spec", "securityContext", "sysctls"))
POD_LABELS = Table("pod_labels", (
    Col("namespace", "pod namespace", NS),
    Col("pod", "pod name", NAME),
    Col("key", "label key", item_text("key")),
    Col("value", "label value", item_text("value")),
), _labels)
CONTAINERS = Table("containers", (
    Col("namespace", "pod namespace", NS),
    Col("pod", "pod name", NAME),
    Col("name", "container name (init containers included)", item_text("name")),
    Col("image", "image reference as written in the pod spec", item_text("image")),
    Col("privileged", '"True" when securityContext.privileged is true',
        lambda _o, c: _flag(dig(c, "securityContext", "privileged"))),
    Col("run_as_non_root", '"True" when runAsNonRoot is true for the container (its own '
        "securityContext, else the pod's)", _run_as_non_root),
    Col("cpu_limit", 'resources.limits.cpu, e.g. 500m ("" when no limit)',
        item_text("resources", "limits", "cpu")),
    Col("memory_limit", 'resources.limits.memory, e.g. 256Mi ("" when no limit)',
        item_text("resources", "limits", "memory")),
), _containers)
DEPLOYMENTS = Table("deployments", (
    Col("namespace", "deployment namespace", NS),
    Col("name", "deployment name", NAME),
    Col("replicas", "desired replicas (spec.replicas)",
        lambda o, _: _int(dig(o, "spec", "replicas"), 1), "integer"),
    Col("ready_replicas", "replicas whose pods are ready",
        lambda o, _: _int(dig(o, "status", "readyReplicas")), "integer"),
    Col("available_replicas", "replicas available for at least minReadySeconds",
        lambda o, _: _int(dig(o, "status", "availableReplicas")), "integer"),
))
SERVICES = Table("services", (
    Col("namespace", "service namespace", NS),
    Col("name", "service name", NAME),
    Col("type", "ClusterIP, NodePort, LoadBalancer or ExternalName",
        lambda o, _: as_text(dig(o, "spec", "type")) or "ClusterIP"),
    Col("cluster_ip", 'cluster IP ("None" for a headless service, "" for ExternalName)',
        obj_text("spec", "clusterIP")),
))
SERVICE_PORTS = Table("service_ports", (
    Col("namespace", "service namespace", NS),
    Col("service", "service name", NAME),
    Col("port", "port the service listens on", item_int("port"), "integer"),
    Col("protocol", "TCP, UDP or SCTP", lambda _o, p: as_text(dig(p, "protocol")) or "TCP"),
    Col("node_port", "port opened on every node (0 when none)", item_int("nodePort"), "integer"),
), _list_of("spec", "ports"))
SERVICE_ACCOUNTS = Table("service_accounts", (
    Col("namespace", "service account namespace", NS),
    Col("name", "service account name", NAME),
    Col("automount_token", 'automountServiceAccountToken: "True", "False" or "" (unset: '
        "mounted)", lambda o, _: _tri(dig(o, "automountServiceAccountToken"))),
))
NETWORK_POLICIES = Table("network_policies", (
    Col("namespace", "policy namespace", NS),
    Col("name", "policy name", NAME),
    Col("pod_selector", 'spec.podSelector as JSON ("{}" selects every pod of the namespace)',
        _pod_selector),
))
ROLE_BINDINGS = Table("role_bindings", (
    Col("namespace", 'binding namespace ("" for a ClusterRoleBinding)', NS),
    Col("name", "binding name", NAME),
    Col("role_kind", "Role or ClusterRole (roleRef.kind)", obj_text("roleRef", "kind")),
    Col("role_name", "role bound (roleRef.name)", obj_text("roleRef", "name")),
    Col("subject_kind", 'User, Group or ServiceAccount ("" for a binding without subjects); '
        "one row per subject", item_text("kind")),
    Col("subject_name", "subject name", item_text("name")),
    Col("subject_namespace", 'a service account\'s namespace ("" for users and groups)',
        item_text("namespace")),
), _subjects)

ROLE_RULES = Table("role_rules", (
    Col("namespace", 'role namespace ("" for a ClusterRole)', NS),
    Col("role_kind", "Role or ClusterRole",
        lambda o, _: "Role" if dig(o, "metadata", "namespace") else "ClusterRole"),
    Col("role_name", "role name", NAME),
    Col("api_group", 'API group of the resource ("" for the core group, "*" for all)',
        item_text("api_group")),
    Col("resource", 'resource, e.g. secrets, pods/exec or "*" ("" for a non-resource URL)',
        item_text("resource")),
    Col("verb", 'verb granted, e.g. get, list or "*"; one row per group, resource and verb '
        "of each rule", item_text("verb")),
    Col("resource_names", 'the rule\'s resourceNames, comma-separated ("" when it covers '
        "every object)", item_text("resource_names")),
    Col("non_resource_url", 'non-resource URL, e.g. /metrics ("" for a resource rule)',
        item_text("url")),
), _role_rules)

TABLES: tuple[Table, ...] = (NAMESPACES, NAMESPACE_LABELS, NODES, NODE_LABELS, PODS,
                             POD_LABELS, POD_SECURITY, CONTAINERS, CONTAINER_SECURITY,
                             CONTAINER_CAPABILITIES, CONTAINER_PORTS, POD_VOLUMES, POD_SYSCTLS,
                             DEPLOYMENTS, SERVICES, SERVICE_PORTS, SERVICE_ACCOUNTS,
                             NETWORK_POLICIES, ROLE_BINDINGS, ROLE_RULES)


@dataclass(frozen=True)
class Resource:
    """A kind the driver lists and watches, the client calls for it, and its tables."""

    name: str
    api: type
    list_all: str
    list_namespaced: str | None  # None: cluster-scoped
    tables: tuple[Table, ...]


RESOURCES: tuple[Resource, ...] = (
    Resource("namespaces", k8s.CoreV1Api, "list_namespace", None,
             (NAMESPACES, NAMESPACE_LABELS)),
    Resource("nodes", k8s.CoreV1Api, "list_node", None, (NODES, NODE_LABELS)),
    Resource("pods", k8s.CoreV1Api, "list_pod_for_all_namespaces", "list_namespaced_pod",
             (PODS, POD_LABELS, POD_SECURITY, CONTAINERS, CONTAINER_SECURITY,
              CONTAINER_CAPABILITIES, CONTAINER_PORTS, POD_VOLUMES, POD_SYSCTLS)),
    Resource("deployments", k8s.AppsV1Api, "list_deployment_for_all_namespaces",
             "list_namespaced_deployment", (DEPLOYMENTS,)),
    Resource("services", k8s.CoreV1Api, "list_service_for_all_namespaces",
             "list_namespaced_service", (SERVICES, SERVICE_PORTS)),
    Resource("network policies", k8s.NetworkingV1Api, "list_network_policy_for_all_namespaces",
             "list_namespaced_network_policy", (NETWORK_POLICIES,)),
    Resource("service accounts", k8s.CoreV1Api, "list_service_account_for_all_namespaces",
             "list_namespaced_service_account", (SERVICE_ACCOUNTS,)),
    Resource("roles", k8s.RbacAuthorizationV1Api, "list_role_for_all_namespaces",
             "list_namespaced_role", (ROLE_RULES,)),
    Resource("cluster roles", k8s.RbacAuthorizationV1Api, "list_cluster_role", None,
             (ROLE_RULES,)),
    Resource("role bindings", k8s.RbacAuthorizationV1Api, "list_role_binding_for_all_namespaces",
             "list_namespaced_role_binding", (ROLE_BINDINGS,)),
    Resource("cluster role bindings", k8s.RbacAuthorizationV1Api, "list_cluster_role_binding",
             None, (ROLE_BINDINGS,)),
)
