"""``keystonev3``: Keystone's users, projects, roles and domains, as Congress's driver had them,
and what Congress's driver left out: the role assignments, and the service catalog.

Keystone is one service for the whole cloud, so this driver reads one identity endpoint
(``region_name``'s, else the catalog's first) rather than every region. ``enabled`` holds
"True"/"False" as Congress stored it. ``role_assignments`` is Keystone's ``GET
/v3/role_assignments`` as listed (not ``effective``): a group's assignment is one row naming
the group, and an inherited one names the domain or project it is inherited from.

Charter adds the catalog (``services``, ``endpoints``) and ``endpoint_versions``: the API
versions each enabled endpoint of the configured ``interface`` offers, read from its version
document (:mod:`charter.datasources.drivers.discovery`), so policies can check what the
cloud serves (the ``interop`` pack checks it against the OpenStack interop guideline).
A service that cannot be read gives an ``ERROR`` row there, never a failed poll.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from charter.datasources.driver import ConfigOption
from charter.datasources.drivers import discovery
from charter.datasources.drivers.openstack import (
    ID,
    OPENSTACK_OPTIONS,
    Action,
    OpenStackDriver,
    extended,
    field,
    flag,
)

USERS = {
    "translation-type": "HDICT", "table-name": "users", "selector-type": "DOT_SELECTOR",
    "field-translators": (
        field("id", desc="user id"),
        field("name", desc="user name, unique within its domain"),
        field("is_enabled", "enabled", "True when the user may log in"),
        field("default_project_id", desc="project the user logs in to by default"),
        field("domain_id", desc="domain the user belongs to"),
    ),
}
PROJECTS = {
    "translation-type": "HDICT", "table-name": "projects", "selector-type": "DOT_SELECTOR",
    "field-translators": (
        field("is_enabled", "enabled", "True when the project may be used"),
        field("description", desc="project description"),
        field("name", desc="project name"),
        field("domain_id", desc="domain the project belongs to"),
        field("id", desc="project id"),
    ),
}
ROLES = {
    "translation-type": "HDICT", "table-name": "roles", "selector-type": "DOT_SELECTOR",
    "field-translators": (field("id", desc="role id"), field("name", desc="role name")),
}
DOMAINS = {
    "translation-type": "HDICT", "table-name": "domains", "selector-type": "DOT_SELECTOR",
    "field-translators": (
        field("is_enabled", "enabled", "True when the domain may be used"),
        field("description", desc="domain description"),
        field("name", desc="domain name"),
        field("id", desc="domain id"),
    ),
}
SERVICES = {
    "translation-type": "HDICT", "table-name": "services", "selector-type": "DOT_SELECTOR",
    "field-translators": (
        field("id", desc="service id"),
        field("type", desc="service type, e.g. identity, compute, image, block-storage"),
        field("name", desc="service name, e.g. keystone, nova"),
        field("is_enabled", "enabled", "True when the service is enabled"),
        field("description", desc="service description"),
    ),
}
ENDPOINTS = {
    "translation-type": "HDICT", "table-name": "endpoints", "selector-type": "DOT_SELECTOR",
    "field-translators": (
        field("id", desc="endpoint id"),
        field("service_id", desc="the service the endpoint serves"),
        field("interface", desc="public, internal or admin"),
        field("region_id", desc="region of the endpoint"),
        field("url", desc="endpoint URL, as the catalog holds it (templates unexpanded)"),
        field("is_enabled", "enabled", "True when the endpoint is enabled"),
    ),
}
ENDPOINT_VERSIONS = {
    "translation-type": "HDICT", "table-name": "endpoint_versions",
    "selector-type": "DICT_SELECTOR",
    "field-translators": (
        field("endpoint_id", desc="the endpoint whose version document was read"),
        field("version_id", desc="a version it offers, e.g. v3.14, v2.1 (null on ERROR)"),
        field("major", desc="the version's major number as text, e.g. 3 for v3.14"),
        field("status", desc="CURRENT, SUPPORTED, DEPRECATED, EXPERIMENTAL or UNKNOWN "
                             "(keystoneauth's normalisation; stable is CURRENT); ERROR when "
                             "the document could not be read"),
        field("min_version", desc="lowest microversion, when the version has microversions"),
        field("max_version", desc="highest microversion, when the version has microversions"),
        field("error", desc="why the document could not be read (ERROR rows only)"),
    ),
}
VERSIONS_OPTION = ConfigOption(
    "endpoint_versions", "read the version document at the root of every enabled endpoint "
    "of interface (unauthenticated) into endpoint_versions (true/false); one that cannot be "
    "read is an ERROR row, not a failed poll", default=True)



def _ref_id(ref: Any) -> Any:
    """The ``id`` of one of an assignment's references (``{"id": ...}``), or None."""
    return ref.get("id") if isinstance(ref, dict) else None


def _assignment(a: Any) -> Any:
    """A role assignment with its references' ids and scope as plain attributes."""
    scope = a.scope if isinstance(a.scope, dict) else {}
    return extended(
        a, role_id=_ref_id(a.role), user_id=_ref_id(a.user), group_id=_ref_id(a.group),
        project_id=_ref_id(scope.get("project")), domain_id=_ref_id(scope.get("domain")),
        inherited=str("OS-INHERIT:inherited_to" in scope))


ROLE_ASSIGNMENTS = {
    "translation-type": "HDICT", "table-name": "role_assignments",
    "selector-type": "DOT_SELECTOR",
    "objects-extract-fn": lambda assignments: [_assignment(a) for a in assignments],
    "field-translators": (
        field("role_id", desc="role assigned"),
        field("user_id", desc="user it is assigned to (None: a group's)"),
        field("group_id", desc="group it is assigned to (None: a user's)"),
        field("project_id", desc="project it is assigned on (None: a domain or the system)"),
        field("domain_id", desc="domain it is assigned on (None: a project or the system)"),
        field("inherited", desc="True when inherited by the scope's projects"),
    ),
}


class KeystoneDriver(OpenStackDriver):
    driver = "keystonev3"
    description = ("OpenStack Identity (Keystone v3): users, projects, roles, domains, role "
                   "assignments, and the service catalog with each endpoint's API versions")
    config_options: ClassVar[tuple[ConfigOption, ...]] = (*OPENSTACK_OPTIONS, VERSIONS_OPTION)
    service_type = "identity"
    service_label = "Keystone"
    all_regions = False
    translators = (USERS, ROLES, PROJECTS, DOMAINS, ROLE_ASSIGNMENTS, SERVICES, ENDPOINTS,
                   ENDPOINT_VERSIONS)
    action_list: ClassVar[tuple[Action, ...]] = (
        Action("users.disable", "Disable a user: it can no longer log in", (ID("user"),),
               lambda c, a: c.identity.update_user(a["id"], is_enabled=False)),
        Action("users.enable", "Enable a user again", (ID("user"),),
               lambda c, a: c.identity.update_user(a["id"], is_enabled=True)),
        Action("projects.disable", "Disable a project: no token can be scoped to it",
               (ID("project"),),
               lambda c, a: c.identity.update_project(a["id"], is_enabled=False)),
        Action("projects.enable", "Enable a project again", (ID("project"),),
               lambda c, a: c.identity.update_project(a["id"], is_enabled=True)),
    )

    def check_config(self) -> None:
        super().check_config()
        self.read_versions = flag(self.config.get("endpoint_versions", True),
                                  "endpoint_versions", self.name)

    def listings(self, conn: Any) -> dict:
        identity = conn.identity
        endpoints = functools.cache(lambda: list(identity.endpoints()))
        return {"users": identity.users, "roles": identity.roles,
                "projects": identity.projects, "domains": identity.domains,
                "role_assignments": identity.role_assignments,
                "services": identity.services, "endpoints": endpoints,
                "endpoint_versions": lambda: self.versions(endpoints())}

    def versions(self, endpoints: list[Any]) -> list[dict[str, Any]]:
        """endpoint_versions' rows: each enabled endpoint of ``interface``, read unauthenticated
        through the datasource's session (its TLS settings and timeout)."""
        if not self.read_versions:
            return []
        chosen = [(e.id, e.url) for e in endpoints
                  if e.interface == self.interface and e.is_enabled is not False and e.url]
        return discovery.endpoint_versions(self._get_session(), chosen)
