"""The OpenAPI-wide authorization matrix: every operation of the API's OpenAPI document, called
by no one, a viewer, an annotator, a reviewer, another project's admin, an API token of each
scope (held by the project's admin) and the site administrator, answers allow or deny as the
roles and scopes say (docs/security.md has the same table in words).

"Deny" is 401 (no credentials), 403 (role or scope) or 404 (not a member: the project's
existence does not leak); "allow" is any other answer (a 409 or 422 of a valid but pointless
call passed the access checks). Each call gets a valid body, so that a refusal cannot hide
behind a validation error. A new route fails ``test_every_operation_has_a_rule`` until it is
given a rule here.

One in-process app on SQLite (no job workers), built once for the module.
"""

from __future__ import annotations

import hashlib
import io
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from server_support import ADMIN_PASSWORD, API, PASSWORD, make_settings, npy_file
from sqlalchemy import select

from thermoscope.models.contract import InputContract
from thermoscope.models.golden import fit_golden
from thermoscope.models.release import generate_keys
from thermoscope.models.release_zip import pack_release
from thermoscope.pipeline.demo import example_recipe
from thermoscope.server import create_app
from thermoscope.server.auth import ROLE_ACTIONS, Action, Role, digest
from thermoscope.server.db.models import ApiToken, DatasetVersion, Export, Job, Upload, User, now

SCHEMA = {"labels": [{"name": "hot_spot"}]}
SCOPES = ("read", "ingest", "annotate", "review", "admin")
_serial = itertools.count()


@dataclass
class Who:
    """A principal of the matrix.

    Attributes:
        name: shown in failures.
        username: its user (``None``: no credentials).
        role: its role in the project under test (``None``: not a member).
        scopes: a token's scopes (``None``: a browser session).
        site_admin: whether the user is a site administrator.
    """

    name: str
    username: str | None
    role: Role | None
    scopes: frozenset[str] | None = None
    site_admin: bool = False
    client: TestClient | None = field(default=None, repr=False)

    def can(self, action: Action) -> bool:
        """Whether its role in the project and its scopes allow ``action``."""
        return (
            self.role is not None
            and action in ROLE_ACTIONS[self.role]
            and (self.scopes is None or action.value in self.scopes)
        )

    @property
    def session(self) -> bool:
        return self.username is not None and self.scopes is None


Rule = Callable[[Who], bool]


def public(who: Who) -> bool:
    return True


def anyone_logged_in(who: Who) -> bool:
    return who.username is not None


def session_only(who: Who) -> bool:
    return who.session


def own_tokens(who: Who) -> bool:
    return who.session or (who.scopes is not None and "admin" in who.scopes)


def site_admin(who: Who) -> bool:
    return who.site_admin and (who.scopes is None or "admin" in who.scopes)


def any_reader(who: Who) -> bool:
    return who.username is not None and (who.scopes is None or "read" in who.scopes)


def project(action: Action) -> Rule:
    def rule(who: Who) -> bool:
        return who.can(action)

    rule.__name__ = f"project {action.value}"
    return rule


@dataclass
class World:
    """The app and the ids every path needs."""

    app: Any
    admin: TestClient
    pid: int
    fid: str
    vid: str
    export_id: str
    job_id: str
    users: dict[str, int]
    model_zip: bytes = b""


def _login(app: Any, username: str, password: str = PASSWORD) -> TestClient:
    client = TestClient(app)
    answer = client.post(f"{API}/auth/login", json={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, list[Who]]]:
    tmp = tmp_path_factory.mktemp("authz")
    generate_keys(tmp / "release.pem", tmp / "release.pub")
    settings = make_settings(
        tmp,
        f"sqlite:///{tmp / 'authz.db'}",
        worker_threads=0,
        login_failures_per_address=10**5,
        model_public_keys=[tmp / "release.pub"],
    )
    app = create_app(settings)
    with TestClient(app) as admin_client:
        admin = _login(app, "admin", ADMIN_PASSWORD)
        pid = admin.post(f"{API}/projects", json={"name": "p", "label_schema": SCHEMA}).json()["id"]
        other = admin.post(f"{API}/projects", json={"name": "q"}).json()["id"]
        model_zip = _release(tmp, tmp / "release.pem")
        zipped = {"content": model_zip, "headers": {"Content-Type": "application/zip"}}
        assert admin.post(f"{API}/projects/{pid}/models", **zipped).status_code == 201
        assert admin.post(f"{API}/projects/{pid}/models/1/activate").status_code == 200
        files = {"file": ("f.npy", npy_file(1), "application/octet-stream")}
        fid = admin.post(f"{API}/projects/{pid}/frames", files=files).json()["frame_id"]
        for name, project_id, role in (
            ("viewer", pid, "viewer"),
            ("annotator", pid, "annotator"),
            ("reviewer", pid, "reviewer"),
            ("padmin", pid, "admin"),
            ("qadmin", other, "admin"),
            ("target", pid, "annotator"),
        ):
            made = admin.post(f"{API}/users", json={"username": name, "password": PASSWORD})
            assert made.status_code == 201, made.text
            admin.put(f"{API}/projects/{project_id}/members/{name}", json={"role": role})
        ctx = app.state.ctx
        with ctx.db.write() as session:
            users = {u.username: u.id for u in session.scalars(select(User))}
            job = Job(
                id="a" * 32,
                kind="export",
                project_id=pid,
                state="queued",
                params={},
                created_by="admin",
            )
            version = DatasetVersion(
                id="b" * 32,
                project_id=pid,
                content_hash="0" * 64,
                message="",
                item_count=0,
                stats={},
                manifest_key="versions/none.json",
                created_by="admin",
            )
            session.add_all([job, version])
            session.flush()
            session.add(
                Export(
                    id="c" * 32,
                    version_id=version.id,
                    format="coco",
                    state="queued",
                    job_id=job.id,
                    created_by="admin",
                )
            )
        padmin = _login(app, "padmin")
        whos = [
            Who("no credentials", None, None),
            Who("viewer", "viewer", Role.VIEWER),
            Who("annotator", "annotator", Role.ANNOTATOR),
            Who("reviewer", "reviewer", Role.REVIEWER),
            Who("other project's admin", "qadmin", None),
            *(Who(f"{scope} token", "padmin", Role.ADMIN, frozenset({scope})) for scope in SCOPES),
            Who("project admin", "padmin", Role.ADMIN),
            Who("site administrator", "admin", Role.ADMIN, site_admin=True),
        ]
        for who in whos:
            if who.username is None:
                who.client = TestClient(app)
            elif who.scopes is None:
                who.client = admin if who.site_admin else _login(app, who.username)
            else:
                body = {"name": "t", "scopes": sorted(who.scopes)}
                text = padmin.post(f"{API}/tokens", json=body).json()["token"]
                who.client = TestClient(app, headers={"Authorization": f"Bearer {text}"})
        world = World(app, admin, pid, fid, "b" * 32, "c" * 32, "a" * 32, users, model_zip)
        yield world, whos
        del admin_client


def _release(tmp: Path, key: Path) -> bytes:
    """A signed golden-statistics release (version 1) for the 24x32 test frames, zipped."""
    frames = [np.load(io.BytesIO(npy_file(i))) for i in range(4)]
    stats = fit_golden(frames, InputContract(window_c=(10.0, 40.0), height=24, width=32))
    folder = stats.write_release(tmp / "release", name="authz", version=1, private_key=key)
    return pack_release(folder)


# ------------------------------------------------------------------ per-call set-up of targets


def _token_of(world: World, username: str) -> int:
    """A fresh API token row of ``username`` (its id)."""
    with world.app.state.ctx.db.write() as session:
        token = ApiToken(
            user_id=world.users[username],
            name="victim",
            token_hash=digest(f"victim-{next(_serial)}"),
            scopes=["read"],
            created_at=now(),
            expires_at=now() + timedelta(hours=1),
        )
        session.add(token)
        session.flush()
        return token.id


def _target(world: World) -> str:
    """The user ``target`` (made again when a call deleted it), a member of the project."""
    with world.app.state.ctx.db.read() as session:
        exists = session.scalars(select(User.id).where(User.username == "target")).first()
    if exists is None:
        body = {"username": "target", "password": PASSWORD}
        world.users["target"] = world.admin.post(f"{API}/users", json=body).json()["id"]
    world.admin.patch(f"{API}/users/target", json={"disabled": False})
    world.admin.put(f"{API}/projects/{world.pid}/members/target", json={"role": "annotator"})
    return "target"


def _upload_of(world: World, who: Who) -> str:
    """A fresh 10-byte resumable upload of the caller's user (the project admin's for none)."""
    upload_id = hashlib.sha256(f"upload-{next(_serial)}".encode()).hexdigest()[:32]
    with world.app.state.ctx.db.write() as session:
        session.add(
            Upload(
                id=upload_id,
                project_id=world.pid,
                user_id=world.users[who.username or "padmin"],
                filename="f.npy",
                size=10,
                sha256="0" * 64,
                offset=0,
                chunks=[],
                state="open",
            )
        )
    return upload_id


def _annotation(world: World) -> dict[str, Any]:
    current = world.admin.get(f"{API}/frames/{world.fid}/annotations").json()
    return {"item": current["item"], "revision": current["revision"]}


def _password(who: Who) -> str:
    return ADMIN_PASSWORD if who.site_admin else PASSWORD


def _unique(prefix: str) -> str:
    return f"{prefix}{next(_serial)}"


@dataclass(frozen=True)
class Case:
    """How to call one operation and who may."""

    rule: Rule
    call: Callable[[World, Who], dict[str, Any]] = lambda w, who: {}
    fresh_session: bool = False  # the call ends sessions: log the principal in again after


RECIPE = example_recipe("pcb").read_text(encoding="utf-8")
UPLOAD_SHA = hashlib.sha256(b"0123456789").hexdigest()

CASES: dict[tuple[str, str], Case] = {
    ("GET", "/health"): Case(public),
    ("GET", "/palettes"): Case(public),
    ("POST", "/auth/login"): Case(
        public,
        lambda w, who: {"json": {"username": "viewer", "password": PASSWORD}},
        fresh_session=True,  # the answer's cookie replaces the caller's session
    ),
    ("POST", "/auth/logout"): Case(anyone_logged_in, fresh_session=True),
    ("GET", "/auth/me"): Case(anyone_logged_in),
    ("POST", "/tokens"): Case(
        session_only, lambda w, who: {"json": {"name": "n", "scopes": ["read"]}}
    ),
    ("GET", "/tokens"): Case(own_tokens),
    ("DELETE", "/tokens/{token_id}"): Case(
        own_tokens, lambda w, who: {"token_id": _token_of(w, who.username or "padmin")}
    ),
    ("POST", "/auth/password"): Case(
        session_only,
        lambda w, who: {"json": {"old_password": _password(who), "new_password": _password(who)}},
        fresh_session=True,
    ),
    ("DELETE", "/auth/sessions"): Case(session_only, fresh_session=True),
    ("GET", "/users"): Case(site_admin),
    ("POST", "/users"): Case(
        site_admin, lambda w, who: {"json": {"username": _unique("u"), "password": PASSWORD}}
    ),
    ("PATCH", "/users/{username}"): Case(
        site_admin, lambda w, who: {"username": _target(w), "json": {"disabled": False}}
    ),
    ("DELETE", "/users/{username}"): Case(site_admin, lambda w, who: {"username": _target(w)}),
    ("GET", "/users/{username}/tokens"): Case(site_admin, lambda w, who: {"username": _target(w)}),
    ("DELETE", "/users/{username}/tokens"): Case(
        site_admin, lambda w, who: {"username": _target(w)}
    ),
    ("DELETE", "/users/{username}/tokens/{token_id}"): Case(
        site_admin, lambda w, who: {"username": _target(w), "token_id": _token_of(w, "target")}
    ),
    ("GET", "/projects"): Case(any_reader),
    ("POST", "/projects"): Case(site_admin, lambda w, who: {"json": {"name": _unique("p")}}),
    ("GET", "/projects/{pid}"): Case(project(Action.READ)),
    ("PUT", "/projects/{pid}/label-schema"): Case(
        project(Action.MANAGE), lambda w, who: {"json": SCHEMA}
    ),
    ("PUT", "/projects/{pid}/recipe"): Case(
        project(Action.MANAGE),
        lambda w, who: {"content": RECIPE, "headers": {"Content-Type": "application/yaml"}},
    ),
    ("DELETE", "/projects/{pid}/recipe"): Case(project(Action.MANAGE)),
    ("GET", "/projects/{pid}/members"): Case(project(Action.READ)),
    ("PUT", "/projects/{pid}/members/{username}"): Case(
        project(Action.MANAGE), lambda w, who: {"username": _target(w), "json": {"role": "viewer"}}
    ),
    ("DELETE", "/projects/{pid}/members/{username}"): Case(
        project(Action.MANAGE), lambda w, who: {"username": _target(w)}
    ),
    ("POST", "/projects/{pid}/frames"): Case(
        project(Action.INGEST),
        lambda w, who: {"files": {"file": ("f.npy", npy_file(1), "application/octet-stream")}},
    ),
    ("GET", "/projects/{pid}/frames"): Case(project(Action.READ)),
    ("POST", "/uploads"): Case(
        project(Action.INGEST),
        lambda w, who: {
            "json": {"project_id": w.pid, "filename": "u.npy", "size": 10, "sha256": UPLOAD_SHA}
        },
    ),
    ("GET", "/uploads/{upload_id}"): Case(
        project(Action.INGEST), lambda w, who: {"upload_id": _upload_of(w, who)}
    ),
    ("PUT", "/uploads/{upload_id}"): Case(
        project(Action.INGEST),
        lambda w, who: {
            "upload_id": _upload_of(w, who),
            "content": b"0123456789",
            "headers": {"Content-Range": "bytes 0-9/10"},
        },
    ),
    ("POST", "/uploads/{upload_id}/complete"): Case(
        project(Action.INGEST), lambda w, who: {"upload_id": _upload_of(w, who)}
    ),
    ("GET", "/frames/{fid}"): Case(project(Action.READ)),
    ("GET", "/frames/{fid}/celsius"): Case(project(Action.READ)),
    ("GET", "/frames/{fid}/render.png"): Case(project(Action.READ)),
    ("GET", "/frames/{fid}/original"): Case(project(Action.READ)),
    ("GET", "/frames/{fid}/fused.png"): Case(project(Action.READ)),
    ("GET", "/frames/{fid}/visual"): Case(project(Action.READ)),
    ("POST", "/frames/{fid}/celsius/recompute"): Case(
        project(Action.READ), lambda w, who: {"json": {"emissivity": 0.9}}
    ),
    ("GET", "/frames/{fid}/annotations"): Case(project(Action.READ)),
    ("PUT", "/frames/{fid}/annotations"): Case(
        project(Action.ANNOTATE), lambda w, who: {"json": _annotation(w)}
    ),
    ("POST", "/frames/{fid}/review"): Case(
        project(Action.REVIEW), lambda w, who: {"json": {"action": "accept"}}
    ),
    ("GET", "/projects/{pid}/tasks"): Case(project(Action.READ)),
    ("POST", "/projects/{pid}/tasks"): Case(
        project(Action.REVIEW),
        lambda w, who: {"json": {"frame_ids": [w.fid], "assignee": "annotator"}},
    ),
    ("GET", "/projects/{pid}/review-queue"): Case(project(Action.READ)),
    ("POST", "/projects/{pid}/dataset-versions"): Case(
        project(Action.REVIEW), lambda w, who: {"json": {"message": "v"}}
    ),
    ("GET", "/projects/{pid}/dataset-versions"): Case(project(Action.READ)),
    ("GET", "/dataset-versions/{vid}"): Case(project(Action.READ)),
    ("GET", "/export-formats"): Case(any_reader),
    ("POST", "/dataset-versions/{vid}/exports"): Case(
        project(Action.REVIEW), lambda w, who: {"json": {"format": "coco"}}
    ),
    ("GET", "/exports/{export_id}"): Case(project(Action.READ)),
    ("GET", "/exports/{export_id}/download"): Case(project(Action.READ)),
    ("GET", "/jobs/{job_id}"): Case(project(Action.READ)),
    ("POST", "/projects/{pid}/models"): Case(
        project(Action.MANAGE),
        lambda w, who: {"content": w.model_zip, "headers": {"Content-Type": "application/zip"}},
    ),
    ("GET", "/projects/{pid}/models"): Case(project(Action.READ)),
    ("GET", "/projects/{pid}/models/active"): Case(project(Action.READ)),
    ("POST", "/projects/{pid}/models/{version}/activate"): Case(project(Action.MANAGE)),
    ("GET", "/projects/{pid}/models/{version}/release.zip"): Case(project(Action.READ)),
    ("POST", "/projects/{pid}/models/train"): Case(
        project(Action.MANAGE), lambda w, who: {"json": {"version_id": w.vid}}
    ),
    ("GET", "/frames/{fid}/heatmap"): Case(project(Action.READ)),
    ("POST", "/projects/{pid}/models/active/score"): Case(
        project(Action.REVIEW), lambda w, who: {"json": {}}
    ),
    ("GET", "/ml/{pid}/health"): Case(project(Action.READ)),
    ("GET", "/projects/{pid}/twin"): Case(project(Action.READ)),
    ("GET", "/projects/{pid}/twin/stations/{station}/parts"): Case(project(Action.READ)),
    ("POST", "/projects/{pid}/stations/{station}/status"): Case(
        project(Action.INGEST), lambda w, who: {"json": {"model_version": 1, "healthy": True}}
    ),
    ("GET", "/projects/{pid}/stations"): Case(project(Action.READ)),
    ("POST", "/projects/{pid}/rollouts"): Case(
        project(Action.MANAGE), lambda w, who: {"json": {"version": 1, "first": "st-1"}}
    ),
    ("GET", "/projects/{pid}/rollouts/current"): Case(project(Action.READ)),
    ("POST", "/ml/{pid}/setup"): Case(project(Action.READ), lambda w, who: {"json": {}}),
    ("POST", "/ml/{pid}/predict"): Case(
        project(Action.READ),
        lambda w, who: {"json": {"tasks": [{"id": 1, "data": {"frame_id": w.fid}}]}},
    ),
    ("POST", "/ml/{pid}/webhook"): Case(
        project(Action.MANAGE), lambda w, who: {"json": {"action": "ANNOTATION_CREATED"}}
    ),
}


def operations(app: Any) -> list[tuple[str, str]]:
    """Every (method, path under the API prefix) of the app's OpenAPI document."""
    found = []
    for path, ops in app.openapi()["paths"].items():
        for method in ops:
            found.append((method.upper(), path.removeprefix(API)))
    return found


def test_every_operation_has_a_rule(world: tuple[World, list[Who]]) -> None:
    missing = sorted(set(operations(world[0].app)) - set(CASES))
    assert not missing, f"give these operations a rule in test_authz_matrix.CASES: {missing}"
    stale = sorted(set(CASES) - set(operations(world[0].app)))
    assert not stale, f"these rules name operations the API no longer has: {stale}"


def _call(world: World, who: Who, method: str, path: str, case: Case) -> Any:
    options = case.call(world, who)
    params = {
        "pid": world.pid,
        "fid": world.fid,
        "vid": world.vid,
        "export_id": world.export_id,
        "job_id": world.job_id,
        "token_id": 999_999,
        "username": "target",
        "upload_id": "d" * 32,
        "version": 1,
        "station": "st1",
    }
    params.update({k: options.pop(k) for k in list(options) if k in params})
    url = API + path.format(**params)
    assert who.client is not None
    answer = who.client.request(method, url, **options)
    if who.username is None:
        who.client.cookies.clear()  # no credentials stays so (after POST /auth/login)
    if case.fresh_session and who.session and who.username is not None:
        fresh = _login(world.app, who.username, _password(who))
        who.client.cookies = fresh.cookies
        who.client.headers["X-CSRF-Token"] = fresh.headers["X-CSRF-Token"]
    return answer


@pytest.mark.parametrize(("method", "path"), sorted(CASES))
def test_authorization_matrix(world: tuple[World, list[Who]], method: str, path: str) -> None:
    state, whos = world
    case = CASES[(method, path)]
    wrong = []
    for who in whos:
        answer = _call(state, who, method, path, case)
        allowed = case.rule(who)
        code = answer.status_code
        if allowed and code in (401, 403, 404):
            wrong.append(f"{who.name}: denied ({code} {answer.text[:120]}), should be allowed")
        elif not allowed and code not in (401, 403, 404):
            wrong.append(f"{who.name}: allowed ({code}), should be denied")
        elif not allowed and who.username is None and code != 401:
            wrong.append(f"{who.name}: {code}, should be 401")
        elif code >= 500:
            wrong.append(f"{who.name}: {code}")
    assert not wrong, f"{method} {path}:\n" + "\n".join(wrong)


def test_the_matrix_is_in_the_docs() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text("utf-8")
    for method, path in CASES:
        assert f"`{method} {path}`" in doc, f"docs/security.md: {method} {path} undocumented"
