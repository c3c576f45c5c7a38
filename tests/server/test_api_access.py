"""Accounts and access: log-in, CSRF, API tokens (scopes, expiry), roles per project."""

from __future__ import annotations

from datetime import timedelta

from server_support import ADMIN_PASSWORD, API, PASSWORD, Server, ingest, npy_file
from sqlalchemy import update

from thermoscope.server.db.models import ApiToken, now


def test_login_me_and_logout(server: Server) -> None:
    client = server.client()
    wrong = client.post(f"{API}/auth/login", json={"username": "admin", "password": "nope"})
    assert wrong.status_code == 401
    assert wrong.json() == {"detail": "wrong username or password"}
    assert client.get(f"{API}/auth/me").status_code == 401
    response = client.post(
        f"{API}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert "thermoscope_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    me = client.get(f"{API}/auth/me").json()
    assert me["user"]["username"] == "admin"
    assert me["user"]["is_admin"]
    assert me["csrf_token"] == response.json()["csrf_token"]
    assert me["scopes"] is None
    out = client.post(f"{API}/auth/logout", headers={"X-CSRF-Token": me["csrf_token"]})
    assert out.status_code == 204
    assert client.get(f"{API}/auth/me").status_code == 401


def test_browser_writes_need_the_csrf_token(server: Server) -> None:
    client = server.login("admin", ADMIN_PASSWORD)
    token = client.headers.pop("X-CSRF-Token")
    refused = client.post(f"{API}/projects", json={"name": "p"})
    assert refused.status_code == 403
    assert "X-CSRF-Token" in refused.json()["detail"]
    wrong = client.post(f"{API}/projects", json={"name": "p"}, headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    assert client.get(f"{API}/projects").status_code == 200  # reads need no token
    ok = client.post(f"{API}/projects", json={"name": "p"}, headers={"X-CSRF-Token": token})
    assert ok.status_code == 201


def test_api_tokens_scopes_and_expiry(server: Server) -> None:
    project = server.project()
    server.user("edge", project["id"], "annotator")
    edge = server.login("edge")
    ingest_only = server.token(edge, ["ingest"])
    assert ingest(ingest_only, project["id"], npy_file(1)).status_code == 201  # no CSRF needed
    refused = ingest_only.get(f"{API}/projects/{project['id']}/frames")
    assert refused.status_code == 403
    assert "'read' scope" in refused.json()["detail"]
    me = server.token(edge, ["read"]).get(f"{API}/auth/me").json()
    assert me["scopes"] == ["read"]
    assert me["csrf_token"] is None
    # a token cannot make tokens
    made = ingest_only.post(f"{API}/tokens", json={"name": "x", "scopes": ["read"]})
    assert made.status_code == 403
    # expiry
    reader = server.token(edge, ["read"], expires_in_s=60)
    assert reader.get(f"{API}/projects").status_code == 200
    ctx = server.app.state.ctx
    with ctx.db.write() as session:
        session.execute(update(ApiToken).values(expires_at=now() - timedelta(seconds=1)))
    expired = reader.get(f"{API}/projects")
    assert expired.status_code == 401
    assert expired.json() == {"detail": "API token expired"}
    unknown = server.client().get(f"{API}/projects", headers={"Authorization": "Bearer tsk_nope"})
    assert unknown.status_code == 401
    malformed = server.client().get(f"{API}/projects", headers={"Authorization": "Basic abc"})
    assert malformed.status_code == 401


def test_token_list_and_revoke(server: Server) -> None:
    made = server.admin.post(f"{API}/tokens", json={"name": "script", "scopes": ["read"]})
    listed = server.admin.get(f"{API}/tokens").json()
    assert listed["total"] == 1
    assert listed["items"][0]["token"] is None
    token_id = made.json()["id"]
    assert server.admin.delete(f"{API}/tokens/{token_id}").status_code == 204
    bearer = {"Authorization": f"Bearer {made.json()['token']}"}
    assert server.client().get(f"{API}/projects", headers=bearer).status_code == 401
    bad_scope = server.admin.post(f"{API}/tokens", json={"name": "x", "scopes": ["root"]})
    assert bad_scope.status_code == 422


def test_a_viewer_cannot_write(server: Server) -> None:
    project = server.project()
    pid = project["id"]
    fid = ingest(server.admin, pid, npy_file(2)).json()["frame_id"]
    viewer = server.user("vera", pid, "viewer")
    assert viewer.get(f"{API}/projects/{pid}/frames").status_code == 200
    annotation = viewer.get(f"{API}/frames/{fid}/annotations").json()
    attempts = [
        viewer.put(f"{API}/frames/{fid}/annotations", json=annotation),
        ingest(viewer, pid, npy_file(3)),
        viewer.post(f"{API}/frames/{fid}/review", json={"action": "submit"}),
        viewer.post(f"{API}/projects/{pid}/tasks", json={"frame_ids": [fid], "assignee": "vera"}),
        viewer.post(f"{API}/projects/{pid}/dataset-versions", json={}),
        viewer.put(f"{API}/projects/{pid}/label-schema", json={"labels": []}),
        viewer.put(f"{API}/projects/{pid}/members/vera", json={"role": "admin"}),
        viewer.post(f"{API}/projects", json={"name": "mine"}),
        viewer.post(f"{API}/users", json={"username": "x", "password": PASSWORD}),
    ]
    for response in attempts:
        assert response.status_code == 403, response.text
        assert response.json()["detail"]
    assert server.admin.get(f"{API}/frames/{fid}/annotations").json()["revision"] == 1


def test_annotators_cannot_review_and_reviewers_can(server: Server) -> None:
    pid = server.project()["id"]
    fid = ingest(server.admin, pid, npy_file(4)).json()["frame_id"]
    annotator = server.user("ann", pid, "annotator")
    reviewer = server.user("rev", pid, "reviewer")
    item = annotator.get(f"{API}/frames/{fid}/annotations").json()
    verdict = {
        "id": "v1",
        "frame": None,
        "verdict": "OK",
        "provenance": {"author": "ann", "created": "2025-01-01T00:00:00+00:00"},
    }
    item["item"]["verdicts"] = [verdict]
    assert annotator.put(f"{API}/frames/{fid}/annotations", json=item).status_code == 200
    assert (
        annotator.post(f"{API}/frames/{fid}/review", json={"action": "submit"}).status_code == 200
    )
    refused = annotator.post(f"{API}/frames/{fid}/review", json={"action": "accept"})
    assert refused.status_code == 403
    accepted = reviewer.post(f"{API}/frames/{fid}/review", json={"action": "accept"})
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "accepted"


def test_a_user_cannot_read_another_projects_frames(server: Server) -> None:
    mine = server.project("mine")["id"]
    theirs = server.project("theirs")["id"]
    fid = ingest(server.admin, theirs, npy_file(5)).json()["frame_id"]
    outsider = server.user("olga", mine, "admin")
    for path in (
        f"/projects/{theirs}",
        f"/projects/{theirs}/frames",
        f"/projects/{theirs}/review-queue",
        f"/projects/{theirs}/tasks",
        f"/frames/{fid}",
        f"/frames/{fid}/celsius",
        f"/frames/{fid}/render.png",
        f"/frames/{fid}/original",
        f"/frames/{fid}/annotations",
    ):
        response = outsider.get(API + path)
        assert response.status_code == 404, path
        assert "not found" in response.json()["detail"]
    assert ingest(outsider, theirs, npy_file(6)).status_code == 404
    listed = outsider.get(f"{API}/projects").json()
    assert [p["name"] for p in listed["items"]] == ["mine"]
    me = outsider.get(f"{API}/auth/me").json()
    assert me["projects"] == [{"id": mine, "name": "mine", "role": "admin"}]


def test_members_and_users(server: Server) -> None:
    pid = server.project()["id"]
    server.user("ann", pid, "annotator")
    members = server.admin.get(f"{API}/projects/{pid}/members").json()["items"]
    assert members == [
        {"username": "admin", "role": "admin"},
        {"username": "ann", "role": "annotator"},
    ]
    assert (
        server.admin.put(f"{API}/projects/{pid}/members/ghost", json={"role": "viewer"}).status_code
        == 404
    )
    assert (
        server.admin.put(f"{API}/projects/{pid}/members/ann", json={"role": "owner"}).status_code
        == 422
    )
    assert server.admin.delete(f"{API}/projects/{pid}/members/ann").status_code == 204
    dup = server.admin.post(f"{API}/users", json={"username": "ann", "password": PASSWORD})
    assert dup.status_code == 409
    short = server.admin.post(f"{API}/users", json={"username": "bob", "password": "short"})
    assert short.status_code == 422
    assert server.admin.get(f"{API}/users").json()["total"] == 2
