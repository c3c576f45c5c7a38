"""Accounts a company can run (issue 10): token routes check scopes, users can be disabled,
deleted and reset, people change their own password and end their other sessions, site
administrators revoke other users' tokens, project admins neither list every user nor assign
tasks to non-members."""

from __future__ import annotations

import logging

import pytest
from server_support import ADMIN_PASSWORD, API, PASSWORD, Server, ingest, npy_file


def test_a_read_token_cannot_revoke_or_list_tokens(server: Server) -> None:
    server.user("edge")
    edge = server.login("edge")
    keep = edge.post(f"{API}/tokens", json={"name": "keep", "scopes": ["ingest"]}).json()
    reader = server.token(edge, ["read"])
    revoked = reader.delete(f"{API}/tokens/{keep['id']}")
    assert revoked.status_code == 403, revoked.text
    assert "'admin' scope" in revoked.json()["detail"]
    assert reader.get(f"{API}/tokens").status_code == 403
    assert reader.post(f"{API}/tokens", json={"name": "x", "scopes": ["read"]}).status_code == 403
    ids = [t["id"] for t in edge.get(f"{API}/tokens").json()["items"]]
    assert keep["id"] in ids
    # a token with the admin scope manages its user's tokens; a session always may
    manager = server.token(edge, ["admin"])
    assert manager.get(f"{API}/tokens").status_code == 200
    assert manager.delete(f"{API}/tokens/{keep['id']}").status_code == 204


def test_disabling_a_user_ends_sessions_and_tokens(server: Server) -> None:
    server.user("dave")
    dave = server.login("dave")
    token = server.token(dave, ["read"])
    assert token.get(f"{API}/auth/me").status_code == 200
    disabled = server.admin.patch(f"{API}/users/dave", json={"disabled": True})
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["disabled"] is True
    assert dave.get(f"{API}/auth/me").status_code == 401
    assert token.get(f"{API}/auth/me").status_code == 401
    refused = server.client().post(
        f"{API}/auth/login", json={"username": "dave", "password": PASSWORD}
    )
    assert refused.status_code == 403
    assert "disabled" in refused.json()["detail"]
    wrong = server.client().post(f"{API}/auth/login", json={"username": "dave", "password": "x"})
    assert wrong.status_code == 401  # a wrong password does not learn the account is disabled
    assert server.admin.patch(f"{API}/users/dave", json={"disabled": False}).status_code == 200
    assert server.login("dave").get(f"{API}/auth/me").status_code == 200
    # an administrator cannot lock themself out
    assert server.admin.patch(f"{API}/users/admin", json={"disabled": True}).status_code == 409
    assert server.admin.delete(f"{API}/users/admin").status_code == 409


def test_reset_and_delete_are_for_site_administrators(server: Server) -> None:
    pid = server.project()["id"]
    eve = server.user("eve", pid, "admin")  # a project admin, not a site administrator
    server.user("frank", pid, "annotator")
    assert eve.patch(f"{API}/users/frank", json={"password": "new-password-1"}).status_code == 403
    assert eve.delete(f"{API}/users/frank").status_code == 403
    assert eve.delete(f"{API}/users/frank/tokens").status_code == 403
    frank = server.login("frank")
    for i in range(6):  # someone locks frank's name out
        server.client().post(f"{API}/auth/login", json={"username": "frank", "password": f"x{i}"})
    reset = server.admin.patch(f"{API}/users/frank", json={"password": "new-password-1"})
    assert reset.status_code == 200
    assert frank.get(f"{API}/auth/me").status_code == 401  # the reset ended the session
    assert server.login("frank", "new-password-1").get(f"{API}/auth/me").status_code == 200
    assert server.admin.delete(f"{API}/users/frank").status_code == 204
    members = server.admin.get(f"{API}/projects/{pid}/members").json()["items"]
    assert "frank" not in {m["username"] for m in members}
    assert server.admin.delete(f"{API}/users/frank").status_code == 404


def test_an_admin_revokes_another_users_tokens(server: Server) -> None:
    server.user("gina")
    gina = server.login("gina")
    first = server.token(gina, ["read"])
    second = gina.post(f"{API}/tokens", json={"name": "two", "scopes": ["read"]}).json()
    listed = server.admin.get(f"{API}/users/gina/tokens").json()
    assert listed["total"] == 2
    assert all(t["token"] is None for t in listed["items"])
    one = server.admin.delete(f"{API}/users/gina/tokens/{second['id']}")
    assert one.status_code == 204
    assert server.admin.delete(f"{API}/users/admin/tokens/{second['id']}").status_code == 404
    everything = server.admin.delete(f"{API}/users/gina/tokens")
    assert everything.json() == {"ended": 1}
    assert first.get(f"{API}/auth/me").status_code == 401
    assert gina.get(f"{API}/auth/me").status_code == 200  # sessions stay


def test_change_own_password_and_end_other_sessions(server: Server) -> None:
    laptop = server.user("hank")
    phone = server.login("hank")
    tablet = server.login("hank")
    wrong = laptop.post(
        f"{API}/auth/password", json={"old_password": "nope", "new_password": "another-pass-2"}
    )
    assert wrong.status_code == 403
    changed = laptop.post(
        f"{API}/auth/password",
        json={"old_password": PASSWORD, "new_password": "another-pass-2"},
    )
    assert changed.json() == {"ended": 2}
    assert laptop.get(f"{API}/auth/me").status_code == 200
    assert phone.get(f"{API}/auth/me").status_code == 401
    assert tablet.get(f"{API}/auth/me").status_code == 401
    phone = server.login("hank", "another-pass-2")
    assert laptop.delete(f"{API}/auth/sessions").json() == {"ended": 1}
    assert phone.get(f"{API}/auth/me").status_code == 401
    assert laptop.get(f"{API}/auth/me").status_code == 200
    # a token can neither change the password nor end sessions
    token = server.token(laptop, ["admin"])
    body = {"old_password": "another-pass-2", "new_password": "third-pass-3"}
    assert token.post(f"{API}/auth/password", json=body).status_code == 403
    assert token.delete(f"{API}/auth/sessions").status_code == 403


def test_project_admins_see_members_only_and_assign_to_members_only(server: Server) -> None:
    pid = server.project()["id"]
    other = server.project("line-2")["id"]
    ivy = server.user("ivy", pid, "admin")
    server.user("outsider", other, "annotator")
    fid = ingest(server.admin, pid, npy_file(3)).json()["frame_id"]
    assert ivy.get(f"{API}/users").status_code == 403
    members = ivy.get(f"{API}/projects/{pid}/members").json()["items"]
    assert {m["username"] for m in members} == {"admin", "ivy"}
    to_outsider = ivy.post(
        f"{API}/projects/{pid}/tasks", json={"frame_ids": [fid], "assignee": "outsider"}
    )
    assert to_outsider.status_code == 404
    to_nobody = ivy.post(
        f"{API}/projects/{pid}/tasks", json={"frame_ids": [fid], "assignee": "ghost"}
    )
    assert to_nobody.status_code == 404
    # the answers do not tell an existing non-member from a missing user
    assert to_outsider.json()["detail"].replace("outsider", "X") == to_nobody.json()[
        "detail"
    ].replace("ghost", "X")
    # adding by exact name works; then tasks may go to them
    assert ivy.put(f"{API}/projects/{pid}/members/outsider", json={"role": "annotator"}).is_success
    ok = ivy.post(f"{API}/projects/{pid}/tasks", json={"frame_ids": [fid], "assignee": "outsider"})
    assert ok.status_code == 201
    assert server.login("admin", ADMIN_PASSWORD).get(f"{API}/users").status_code == 200


def test_failures_denials_and_account_changes_are_logged(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    pid = server.project()["id"]
    viewer = server.user("jo", pid, "viewer")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="thermoscope.server"):
        server.client().post(
            f"{API}/auth/login", json={"username": "jo", "password": "wrong-secret-77"}
        )
        viewer.put(f"{API}/projects/{pid}/members/jo", json={"role": "admin"})
        server.admin.patch(f"{API}/users/jo", json={"disabled": True})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "login failed: user 'jo' from testclient" in text
    assert "permission denied: user 'jo'" in text
    assert "account: 'admin' changed user 'jo': disabled" in text
    assert PASSWORD not in text
    assert "wrong-secret-77" not in text  # passwords are never logged
