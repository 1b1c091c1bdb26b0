"""``cinder``: Cinder's volumes (with their attachments), snapshots and services, in
Congress's tables and columns.

Volumes and snapshots of every project are listed, so the user needs admin. ``bootable``
holds Cinder's own text, "true"/"false", as Congress's driver stored it; ``encrypted`` and
``multiattach`` are JSON booleans in the API and hold "True"/"False".
"""

from __future__ import annotations

from typing import Any, ClassVar

from charter.datasources.drivers.openstack import ID, Action, OpenStackDriver, field


def api_bool_text(value: Any) -> Any:
    """openstacksdk parses Cinder's "true"/"false" into a bool; give back Cinder's text."""
    return None if value is None else str(value).lower()


VOLUMES = {
    "translation-type": "HDICT", "table-name": "volumes", "selector-type": "DOT_SELECTOR",
    "field-translators": (
        field("id", desc="volume id"),
        field("size", desc="size in GB"),
        field("user_id", desc="user who created the volume"),
        field("status", desc="available, in-use, error, ..."),
        field("description", desc="volume description"),
        field("name", desc="volume name"),
        field("is_bootable", "bootable", "Cinder's 'true'/'false': has a bootable image",
              **{"extract-fn": api_bool_text}),
        field("created_at", desc="when the volume was created"),
        field("volume_type", desc="volume type name"),
        field("is_encrypted", "encrypted", "True when the volume is encrypted"),
        field("availability_zone", desc="availability zone of the volume"),
        field("replication_status", desc="replication status"),
        field("is_multiattach", "multiattach", "True when it may attach to several servers"),
        field("snapshot_id", desc="snapshot the volume was made from"),
        field("source_volume_id", "source_volid", "volume it was cloned from"),
        field("consistency_group_id", "consistencygroup_id", "consistency group"),
        field("migration_status", desc="migration status"),
        {"fieldname": "attachments", "translator": {
            "translation-type": "HDICT", "table-name": "attachments", "parent-key": "id",
            "parent-col-name": "volume_id", "parent-key-desc": "volume id",
            "selector-type": "DICT_SELECTOR", "in-list": True,
            "field-translators": (
                field("server_id", desc="server the volume is attached to"),
                field("attachment_id", desc="attachment id"),
                field("host_name", desc="host of the attachment"),
                field("device", desc="device name in the server, e.g. /dev/vdb"),
            )}},
    ),
}
SNAPSHOTS = {
    "translation-type": "HDICT", "table-name": "snapshots", "selector-type": "DOT_SELECTOR",
    "field-translators": (
        field("id", desc="snapshot id"),
        field("size", desc="size in GB"),
        field("status", desc="available, creating, error, ..."),
        field("volume_id", desc="volume the snapshot is of"),
        field("name", desc="snapshot name"),
        field("created_at", desc="when the snapshot was taken"),
    ),
}
SERVICES = {
    "translation-type": "HDICT", "table-name": "services", "selector-type": "DOT_SELECTOR",
    "field-translators": (
        field("status", desc="enabled or disabled"),
        field("binary", desc="cinder-volume, cinder-scheduler, ..."),
        field("availability_zone", "zone", "availability zone of the host"),
        field("state", desc="up or down"),
        field("updated_at", desc="last heartbeat"),
        field("host", desc="host the service runs on"),
        field("disabled_reason", desc="why an operator disabled it"),
    ),
}


class CinderDriver(OpenStackDriver):
    driver = "cinder"
    description = "OpenStack Block Storage (Cinder): volumes, attachments, snapshots, services"
    service_type = "block-storage"
    service_label = "Cinder"
    translators = (VOLUMES, SNAPSHOTS, SERVICES)
    action_list: ClassVar[tuple[Action, ...]] = (
        Action("volumes.delete", "Delete a volume (it must not be attached)", (ID("volume"),),
               lambda c, a: c.block_storage.delete_volume(a["id"], ignore_missing=False)),
    )

    def listings(self, conn: Any) -> dict:
        storage = conn.block_storage
        return {
            "volumes": lambda: storage.volumes(details=True, all_projects=True),
            "snapshots": lambda: storage.snapshots(details=True, all_projects=True),
            "services": storage.services,
        }
