"""``keystonev3``: Keystone's users, projects, roles and domains, as Congress's driver had them.

Keystone is one service for the whole cloud, so this driver reads one identity endpoint
(``region_name``'s, else the catalog's first) rather than every region. ``enabled`` holds
"True"/"False" as Congress stored it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from charter.datasources.drivers.openstack import ID, Action, OpenStackDriver, field

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


class KeystoneDriver(OpenStackDriver):
    driver = "keystonev3"
    description = "OpenStack Identity (Keystone v3): users, projects, roles, domains"
    service_type = "identity"
    service_label = "Keystone"
    all_regions = False
    translators = (USERS, ROLES, PROJECTS, DOMAINS)
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
                "projects": identity.projects, "domains": identity.domains}
