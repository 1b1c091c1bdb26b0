"""``keystonev3``: Keystone's users, projects, roles and domains, as Congress's driver had them,
and the role assignments (a table Congress's driver did not have).

Keystone is one service for the whole cloud, so this driver reads one identity endpoint
(``region_name``'s, else the catalog's first) rather than every region. ``enabled`` holds
"True"/"False" as Congress stored it. ``role_assignments`` is Keystone's ``GET
/v3/role_assignments`` as listed (not ``effective``): a group's assignment is one row naming
the group, and an inherited one names the domain or project it is inherited from.
"""

from __future__ import annotations

from typing import Any, ClassVar

from charter.datasources.drivers.openstack import ID, Action, OpenStackDriver, extended, field

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
                   "assignments")
    service_type = "identity"
    service_label = "Keystone"
    all_regions = False
    translators = (USERS, ROLES, PROJECTS, DOMAINS, ROLE_ASSIGNMENTS)
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

    def listings(self, conn: Any) -> dict:
        identity = conn.identity
        return {"users": identity.users, "roles": identity.roles,
                "projects": identity.projects, "domains": identity.domains,
                "role_assignments": identity.role_assignments}
