"""Third parties ship packs through the ``charter.packs`` entry point: found from an
installed distribution (a dist-info on sys.path), loaded, listed with their errors when
broken, and enabled in a service like Charter's own."""

from __future__ import annotations

import importlib
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from charter.packs.registry import ENTRY_POINT_GROUP, installed_packs
from tests.packs.conftest import PACK_YAML, ok, stand_in, write_pack


def distribution(site: Path, name: str, entry_points: dict[str, str], module: str) -> None:
    """An installed distribution in ``site``: a module and a dist-info naming its packs."""
    dist = site / f"{name.replace('-', '_')}-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")
    (site / f"{module}.py").write_text(
        textwrap.dedent("""\
        from pathlib import Path

        HERE = Path(__file__).parent
        FOLDER = HERE / "acme" / "tiny"


        def several():
            return [HERE / "acme" / "one", str(HERE / "acme" / "two")]


        def broken():
            raise RuntimeError("the vendor's code failed")
        """)
    )


@pytest.fixture
def site(tmp_path, monkeypatch):
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name in [m for m in sys.modules if m.startswith("acme_packs")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def renamed(pack_id: str) -> str:
    return PACK_YAML.replace("id: tiny", f"id: {pack_id}").replace("TINY-001", "ACME-001")


def test_a_distributions_entry_point_is_found_as_installed(site):
    write_pack(site / "acme" / "tiny", renamed("acme-tiny"))
    distribution(site, "acme-packs", {"acme-tiny": "acme_packs:FOLDER"}, "acme_packs")
    importlib.invalidate_caches()
    assert "acme-tiny" in {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    installed = installed_packs()
    assert installed.broken == []
    pack = installed.packs["acme-tiny"]
    assert pack.origin == "entry point acme-tiny (acme_packs:FOLDER) from acme-packs 1.0"
    assert "openstack-security" in installed.packs  # Charter's own still there


def test_callables_broken_packs_failing_code_and_taken_ids(site):
    write_pack(site / "acme" / "one", renamed("acme-one"))
    write_pack(
        site / "acme" / "two", renamed("acme-two").replace("severity: low", "severity: dire")
    )
    write_pack(site / "acme" / "tiny", renamed("openstack-security"))
    distribution(
        site,
        "acme-packs",
        {
            "several": "acme_packs:several",
            "failing": "acme_packs:broken",
            "missing": "acme_nonesuch:X",
            "taken": "acme_packs:FOLDER",
        },
        "acme_packs",
    )
    importlib.invalidate_caches()
    installed = installed_packs()
    assert "acme-one" in installed.packs and "acme-two" not in installed.packs
    broken = {b.name: b for b in installed.broken}
    assert set(broken) == {"several", "failing", "missing", "taken"}
    assert (
        "two/pack.yaml:16:15: error[pack_invalid]: controls[0].severity: 'dire'"
        in broken["several"].error
    )
    assert broken["failing"].error == (
        "entry point failing (acme_packs:broken) did not load: "
        "RuntimeError: the vendor's code failed"
    )
    assert "ModuleNotFoundError" in broken["missing"].error
    assert broken["taken"].error.startswith(
        "pack id openstack-security is also the id of the pack from charter"
    )
    assert installed.packs["openstack-security"].origin == "charter"


def test_entry_points_given_directly(tmp_path):
    folder = write_pack(tmp_path / "direct", renamed("direct"))
    ep = metadata.EntryPoint("direct", "tests.packs.test_registry:FOLDERS", ENTRY_POINT_GROUP)
    FOLDERS.append(folder)
    try:
        installed = installed_packs(entry_points=lambda: [ep])
    finally:
        FOLDERS.clear()
    assert installed.packs["direct"].folder == folder


FOLDERS: list[Path] = []


def test_a_third_party_pack_enables_and_reports_posture(client, service, tmp_path):
    folder = write_pack(tmp_path / "tiny", renamed("acme-tiny"))
    FOLDERS.append(folder)
    try:
        ep = metadata.EntryPoint("acme", "tests.packs.test_registry:FOLDERS", ENTRY_POINT_GROUP)
        service.packs.installed = installed_packs(entry_points=lambda: [ep])
    finally:
        FOLDERS.clear()
    ok(
        client.post(
            "/v1/packs/acme-tiny?action=enable",
            json={"parameters": {"allowed_flavors": ["m1.small", "m1.medium"]}},
        )
    )
    stand_in(
        client,
        "nova",
        {
            "servers": [{"id": "vm1", "tenant_id": "p", "flavor_id": "f"}],
            "flavors": [{"id": "f", "name": "m1.large"}],
        },
    )
    (control,) = ok(client.get("/v1/packs/acme-tiny/posture?rows=true"))["controls"]
    assert (control["id"], control["status"], control["violations"]) == ("ACME-001", "failing", 1)
    assert control["rows"][0]["columns"] == {
        "server": "vm1",
        "project": "p",
        "flavor": "m1.large",
        "detail": "flavor not allowed",
    }
