"""The Enforcement page: each policy's mode and pending actions, the switch with the API's
rules (enforce: admin, after a confirmation; back to dry-run: editor), the audit log paged
and filtered by policy, and the outbox's actions due and failed."""

from __future__ import annotations

from datetime import timedelta

from charter.service.service import utcnow
from charter.store.records import ActionRecord
from tests.ui.pds_support import Elements, csrf, text

pytest_plugins = ["tests.ui.pds_support"]  # pds_app, pds_service, pds_login


def row_of(html: str, policy: str) -> dict[str, str]:
    rows = [r for r in Elements(html).testid("enforcement-row") if r["data-policy"] == policy]
    assert len(rows) == 1, f"no row for {policy}"
    return rows[0]


def switch_buttons(html: str) -> list[str]:
    return [a["value"] for t, a in Elements(html).tags
            if t == "button" and a.get("name") == "mode"]


def test_admin_switches_to_enforce_after_confirming(pds_login, pds_service):
    pds_service.policies.create("p1")
    admin = pds_login("admin")
    page = admin.get("/ui/enforcement")
    assert page.status_code == 200 and Elements(page.text).testid("enforcement-table")
    assert row_of(page.text, "p1")["data-mode"] == "dry-run"
    assert Elements(page.text).testid("mode-switch")
    token = csrf(admin, "/ui/enforcement")
    r = admin.post("/ui/enforcement/p1", data={"csrf_token": token, "mode": "enforce"})
    assert r.status_code == 200 and Elements(r.text).testid("mode-confirm")
    assert "Switch p1 to enforce?" in text(r.text)
    assert pds_service.policies.get("p1").record.enforcement == "dry-run"
    r = admin.post("/ui/enforcement/p1", data={"csrf_token": token, "mode": "enforce",
                                               "confirm": "yes"}, follow_redirects=False)
    assert r.status_code == 303
    assert pds_service.policies.get("p1").record.enforcement == "enforce"
    page = admin.get("/ui/enforcement")
    assert row_of(page.text, "p1")["data-mode"] == "enforce"
    audit = Elements(page.text).testid("audit-row")
    assert [a["data-policy"] for a in audit] == ["p1"]
    assert "admin-user" in text(page.text) and "dry-run -> enforce" in text(page.text)


def test_editor_may_not_enforce_but_may_go_back_to_dry_run(pds_login, pds_service):
    pds_service.policies.create("p1")
    pds_service.policies.create("p2")
    pds_service.policies.set_enforcement("p2", "enforce", "someone")
    editor = pds_login("editor")
    page = editor.get("/ui/enforcement")
    assert switch_buttons(page.text) == ["dry-run"]  # p2's way back; no enforce offered
    token = csrf(editor, "/ui/enforcement")
    for confirm in ("", "yes"):
        r = editor.post("/ui/enforcement/p1", data={"csrf_token": token, "mode": "enforce",
                                                    "confirm": confirm})
        assert r.status_code == 403
        assert "switching a policy to enforce needs admin" in text(r.text)
    assert pds_service.policies.get("p1").record.enforcement == "dry-run"
    r = editor.post("/ui/enforcement/p2", data={"csrf_token": token, "mode": "dry-run"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert pds_service.policies.get("p2").record.enforcement == "dry-run"
    r = editor.post("/ui/enforcement/p2", data={"csrf_token": token, "mode": "off"})
    assert r.status_code == 400 and "enforcement mode must be one of" in text(r.text)
    r = editor.post("/ui/enforcement/nope", data={"csrf_token": token, "mode": "dry-run"})
    assert r.status_code == 404 and "nope" in text(r.text)


def test_viewer_sees_no_switch_and_is_refused(pds_login, pds_service):
    pds_service.policies.create("p1")
    pds_service.policies.set_enforcement("p1", "enforce", "someone")
    viewer = pds_login("viewer")
    page = viewer.get("/ui/enforcement")
    assert row_of(page.text, "p1")["data-mode"] == "enforce"
    assert not Elements(page.text).testid("mode-switch") and switch_buttons(page.text) == []
    r = viewer.post("/ui/enforcement/p1", data={"csrf_token": csrf(viewer, "/ui/enforcement"),
                                                "mode": "dry-run"})
    assert r.status_code == 403
    assert pds_service.policies.get("p1").record.enforcement == "enforce"
    admin = pds_login("admin")
    r = admin.post("/ui/enforcement/p1", data={"mode": "dry-run"})  # no CSRF token
    assert r.status_code == 403
    assert pds_service.policies.get("p1").record.enforcement == "enforce"


def test_audit_log_is_paged_and_filtered_by_policy(pds_login, pds_service):
    pds_service.policies.create("p1")
    pds_service.policies.create("p2")
    for i in range(30):  # 60 mode changes of p1, 1 of p2
        pds_service.policies.set_enforcement("p1", "enforce", f"admin{i}")
        pds_service.policies.set_enforcement("p1", "dry-run", f"admin{i}")
    pds_service.policies.set_enforcement("p2", "enforce", "root")
    viewer = pds_login("viewer")
    first = viewer.get("/ui/enforcement")
    rows = Elements(first.text).testid("audit-row")
    assert len(rows) == 50 and rows[0]["data-policy"] == "p2"
    older = Elements(first.text).testid("audit-older")
    assert older
    second = viewer.get(older[0]["href"].replace("&amp;", "&").split("#")[0])
    rest = Elements(second.text).testid("audit-row")
    assert len(rest) == 11 and not Elements(second.text).testid("audit-older")
    ids = [int(r["data-id"]) for r in rows + rest]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 61
    only = viewer.get("/ui/enforcement?policy=p2")
    assert [r["data-policy"] for r in Elements(only.text).testid("audit-row")] == ["p2"]
    none = viewer.get("/ui/enforcement?policy=gone")
    assert "The audit log is empty for gone" in text(none.text)


def test_actions_due_and_failed(pds_login, pds_service):
    pds_service.policies.create("p1")
    now = utcnow()
    later = now + timedelta(days=1)  # a retry that waits: the worker leaves it alone

    def action(row: tuple) -> ActionRecord:
        return ActionRecord(id=0, policy="p1", table_name="execute[nova:servers.pause]",
                            datasource="nova", action="servers.pause", row=row,
                            rule="execute[nova:servers.pause(x)] :- bad(x)", mode="enforce",
                            status="pending", attempts=1, derived_at=now,
                            next_attempt_at=later, detail="retry after: 503 unavailable")

    written = pds_service.store.record_actions([(action(("vm1",)), None),
                                            (action(("vm2",)), None)], [], now)
    pds_service.store.finish_action(written[1].id, status="failed", attempts=3, at=now,
                                detail="gave up after 3 attempts: 503 unavailable")
    viewer = pds_login("viewer")
    page = viewer.get("/ui/enforcement")
    found = Elements(page.text)
    assert found.testid("actions-due") and found.testid("actions-failed")
    due = [r for r in found.testid("action-row") if r["data-status"] == "pending"]
    failed = [r for r in found.testid("action-row") if r["data-status"] == "failed"]
    assert len(due) == 1 and len(failed) == 1
    words = text(page.text)
    assert "nova:servers.pause(\"vm1\")" in words and "retry waits" in words
    assert "gave up after 3 attempts: 503 unavailable" in words
    assert row_of(page.text, "p1") and "Actions due (1)" in words
    cells = page.text.split('data-policy="p1"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num">1</td>' in cells  # p1's pending count
    other = viewer.get("/ui/enforcement?policy=p2")
    assert "No action is due" in text(other.text) and "No failed action" in text(other.text)
