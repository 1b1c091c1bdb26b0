"""The interop pack's guideline: vendored whole, and its facts what the generator makes of it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from charter.packs import interop_guideline as gen
from charter.packs import load_pack
from charter.packs.registry import builtin_folder

PACK = builtin_folder() / "interop"
GUIDELINE = PACK / "guideline" / "2020.06.json"
FACTS = PACK / "policies" / "guideline.dl"
COMMAND = (
    f"python -m charter.packs.interop_guideline {GUIDELINE.relative_to(PACK.parents[4])} "
    f"{FACTS.relative_to(PACK.parents[4])}"
)


def test_the_committed_facts_are_what_the_generator_makes_of_the_vendored_guideline():
    if FACTS.read_text() != gen.generate(GUIDELINE):
        pytest.fail(
            f"{FACTS} is out of date; regenerate it with `{COMMAND}` (from the "
            "repository root) and commit it"
        )


def test_the_vendored_guideline_is_2020_06_approved_and_ships_with_its_licence_and_notice():
    data = json.loads(GUIDELINE.read_text())
    assert data["metadata"]["id"] == "2020.06"
    assert data["metadata"]["os_trademark_approval"]["status"] == "approved"
    assert (PACK / "guideline" / "LICENSE").read_text().lstrip().startswith("Apache License")
    notice = (PACK / "guideline" / "README.md").read_text()
    assert "5f7a8cf9c43015a27c2ed56cad8501d470807461" in notice and "Apache" in notice
    assert "2020.11" in notice  # says plainly that 2020.11 is not the one shipped


def test_the_facts_hold_every_required_capability_of_each_component():
    text = FACTS.read_text()
    data = json.loads(GUIDELINE.read_text())
    for component, spec in data["components"].items():
        for name in spec["capabilities"]["required"]:
            assert f'capability("{name}", "{component}", ' in text, name
    assert (
        'capability("images-v2-list", "os_powered_compute", "glance", "required", "image")' in text
    )
    assert 'capability_api("images-v2-list", "2")' in text
    assert 'capability_api("compute-servers-create", "2.1")' in text
    assert 'capability_api("networks-l2-CRUD", "2.0")' in text
    assert 'capability_api("volumes-v3-list", "3")' in text
    assert 'capability_api("identity-v3-tokens-create", "3")' in text
    assert 'capability_api("objectstore-' not in text  # Swift: no version to check
    assert 'platform("OpenStack Powered Platform", "os_powered_storage")' in text


def guideline(**changes) -> dict:
    data = {
        "metadata": {"id": "2099.01", "os_trademark_approval": {"status": "approved"}},
        "platforms": {"P": {"components": [{"name": "c"}]}},
        "components": {
            "c": {
                "capabilities": {
                    "required": ["images-v3-list"],
                    "advisory": ["volumes-v4-list"],
                    "deprecated": ["images-v2-list"],
                    "removed": ["images-v1-list"],
                }
            }
        },
        "capabilities": {
            n: {"project": p}
            for n, p in [
                ("images-v3-list", "glance"),
                ("volumes-v4-list", "cinder"),
                ("images-v2-list", "glance"),
                ("images-v1-list", "glance"),
            ]
        },
    }
    data.update(changes)
    return data


def test_statuses_and_versions_of_another_guideline():
    text = gen.facts(guideline(), "2099.01.json")
    assert 'guideline("2099.01")' in text
    assert 'capability("images-v3-list", "c", "glance", "required", "image")' in text
    assert 'capability("volumes-v4-list", "c", "cinder", "advisory", "block-storage")' in text
    assert 'capability("images-v2-list", "c", "glance", "deprecated", "image")' in text
    assert 'capability_api("volumes-v4-list", "4")' in text
    assert "images-v1-list" not in text  # removed capabilities bind no cloud


def test_another_guideline_makes_a_pack_that_loads(tmp_path):
    import shutil

    copy = tmp_path / "interop"
    shutil.copytree(PACK, copy)
    (copy / "guideline.json").write_text(json.dumps(guideline()))
    assert gen.main([str(copy / "guideline.json"), str(copy / "policies" / "guideline.dl")]) == 0
    pack = load_pack(copy)
    assert pack.id == "interop"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            guideline(capabilities={}),
            "lists required capability images-v3-list, which the guideline does not describe",
        ),
        (
            {
                **guideline(),
                "capabilities": {
                    **guideline()["capabilities"],
                    "images-v3-list": {"project": "zun"},
                },
            },
            "project 'zun' has no service type",
        ),
        ({"metadata": {}}, "the guideline has no metadata.id"),
    ],
)
def test_a_guideline_that_does_not_fit_is_refused_with_the_reason(tmp_path, data, message):
    path = tmp_path / "g.json"
    path.write_text(json.dumps(data))
    with pytest.raises(gen.GuidelineError, match="g.json: ") as caught:
        gen.generate(path)
    assert message in str(caught.value)


def test_the_command_writes_the_facts_or_says_what_is_wrong(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "charter.packs.interop_guideline", str(GUIDELINE)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == FACTS.read_text()
    bad = tmp_path / "bad.json"
    bad.write_text("[")
    failed = subprocess.run(
        [sys.executable, "-m", "charter.packs.interop_guideline", str(bad)],
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1
    assert failed.stderr.startswith(f"error: {bad}: cannot read the guideline")


def test_the_regeneration_command_in_the_module_docstring_names_real_paths():
    assert str(GUIDELINE.relative_to(PACK.parents[4])) in (gen.__doc__ or "")
    assert Path(PACK.parents[4], GUIDELINE.relative_to(PACK.parents[4])).is_file()
