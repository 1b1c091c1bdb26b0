"""``glancev2``: Glance's images and their tags, in Congress's tables and columns.

``protected`` holds "True"/"False" as in Congress; ``owner`` is the owning project's id.
"""

from __future__ import annotations

from typing import Any, ClassVar

from charter.datasources.drivers.openstack import ID, Action, OpenStackDriver, field, value

IMAGES = {
    "translation-type": "HDICT", "table-name": "images", "selector-type": "DOT_SELECTOR",
    "field-translators": (
        field("id", desc="image id"),
        field("status", desc="queued, active, deactivated, ..."),
        field("name", desc="image name"),
        field("container_format", desc="bare, ovf, ..."),
        field("created_at", desc="when the image was created"),
        field("updated_at", desc="when the image last changed"),
        field("disk_format", desc="raw, qcow2, ..."),
        field("owner_id", "owner", "project that owns the image"),
        field("is_protected", "protected", "True when the image cannot be deleted"),
        field("min_ram", desc="memory in MB a server needs to boot it"),
        field("min_disk", desc="disk in GB a server needs to boot it"),
        field("checksum", desc="MD5 of the image data"),
        field("size", desc="size in bytes"),
        field("file", desc="URL path of the image data"),
        field("kernel_id", desc="kernel image id"),
        field("ramdisk_id", desc="ramdisk image id"),
        field("schema", desc="URL path of the image schema"),
        field("visibility", desc="public, private, shared or community"),
        {"fieldname": "tags", "translator": {
            "translation-type": "LIST", "table-name": "tags", "parent-key": "id",
            "parent-col-name": "image_id", "parent-key-desc": "image id",
            "val-col": "tag", "val-col-desc": "a tag of the image", "translator": value()}},
    ),
}


class GlanceDriver(OpenStackDriver):
    driver = "glancev2"
    description = "OpenStack Image service (Glance v2): images and their tags"
    service_type = "image"
    service_label = "Glance"
    translators = (IMAGES,)
    action_list: ClassVar[tuple[Action, ...]] = (
        Action("images.deactivate", "Deactivate an image: its data can no longer be "
               "downloaded or booted", (ID("image"),),
               lambda c, a: c.image.deactivate_image(a["id"])),
        Action("images.reactivate", "Reactivate a deactivated image", (ID("image"),),
               lambda c, a: c.image.reactivate_image(a["id"])),
        Action("images.delete", "Delete an image", (ID("image"),),
               lambda c, a: c.image.delete_image(a["id"], ignore_missing=False)),
    )

    def listings(self, conn: Any) -> dict:
        return {"images": conn.image.images}
