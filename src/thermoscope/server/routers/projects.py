"""Projects: label schemas, recipes and members."""

from __future__ import annotations

import json
from typing import Any

import yaml
from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from thermoscope.annotations import AnnotationError, LabelSchema, inspection_label
from thermoscope.core import ThermoscopeError
from thermoscope.recipes import Recipe, compile_recipe, parse_recipe
from thermoscope.server.auth import Action, Principal, Role, require, role_in
from thermoscope.server.context import ServerContext
from thermoscope.server.db.models import Frame, Membership, Project, User, utc
from thermoscope.server.errors import ApiError, not_found
from thermoscope.server.routers.deps import Caller, Ctx, Limit, Offset, ProjectId, Username
from thermoscope.server.schemas.common import Items, Page
from thermoscope.server.schemas.projects import (
    MemberIn,
    MemberOut,
    ProjectIn,
    ProjectOut,
    RecipeOut,
)

router = APIRouter(tags=["projects"])

#: Largest recipe text accepted.
MAX_RECIPE_BYTES = 1 << 20
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/plain")


def parse_schema(data: dict[str, Any]) -> LabelSchema:
    """A label schema from its dict; 422 with the schema's message when invalid."""
    try:
        return LabelSchema.from_dict(data)
    except (AnnotationError, ValueError, TypeError) as exc:
        raise ApiError(422, f"label schema: {exc}") from None


def _names_files(raw: Any) -> bool:
    """Whether a parsed recipe names files: region masks, an alignment reference, golden
    curve files."""
    if not isinstance(raw, dict):
        return False

    def entries(key: str) -> list[Any]:
        value = raw.get(key)
        return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []

    alignment = raw.get("alignment")
    return (
        any("mask" in r for r in entries("regions"))
        or (isinstance(alignment, dict) and "reference" in alignment)
        or any("golden_file" in r for r in entries("rules"))
    )


def check_recipe(text: str) -> Recipe:
    """The recipe of ``text`` when it is valid and usable on the server; 422 otherwise."""
    if len(text.encode("utf-8")) > MAX_RECIPE_BYTES:
        raise ApiError(413, f"recipe larger than {MAX_RECIPE_BYTES} bytes")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError:
        raw = None  # parse_recipe below names the problem
    if _names_files(raw):
        raise ApiError(
            422,
            "recipe: a recipe kept on the server cannot name files (mask, reference, "
            "golden_file); use boxes and polygons, or golden curves inline",
        )
    try:
        recipe = parse_recipe(text)
        compile_recipe(recipe)
    except (ThermoscopeError, ValueError) as exc:
        raise ApiError(422, f"recipe: {exc}") from None
    return recipe


def recipe_text(value: str | dict[str, Any]) -> str:
    """The stored text of a recipe given as YAML/JSON text or a JSON object."""
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)


def with_recipe_labels(schema: dict[str, Any], recipe: Recipe | None) -> dict[str, Any]:
    """``schema`` plus an inspection label for each rule kind of ``recipe`` it lacks."""
    parsed = parse_schema(schema)
    if recipe is None:
        return parsed.to_dict()
    kinds = sorted({rule.type for rule in recipe.rules})
    extra = [inspection_label(kind) for kind in kinds if parsed.label(kind) is None]
    return LabelSchema((*parsed.labels, *extra)).to_dict()


def project_out(ctx: ServerContext, session: Session, project: Project, role: str) -> ProjectOut:
    """The API form of a project for a member with ``role``."""
    recipe = None
    text = project.recipe_text
    parsed = None if text is None else ctx.compiled_recipe(text).recipe
    if text is not None and parsed is not None:
        recipe = RecipeOut(
            name=parsed.name,
            version=parsed.version,
            product=parsed.product,
            text=text,
        )
    count = session.scalar(
        select(func.count()).select_from(Frame).where(Frame.project_id == project.id)
    )
    return ProjectOut(
        id=project.id,
        name=project.name,
        label_schema=project.label_schema,
        recipe=recipe,
        role=role,
        frame_count=count or 0,
        created_at=utc(project.created_at),
    )


def _get(
    ctx: ServerContext, caller: Principal, pid: int, action: Action = Action.READ
) -> ProjectOut:
    """The project as ``action`` (the one the route checked) lets the caller see it."""
    with ctx.db.read() as session:
        project = require(session, caller, pid, action)
        role = role_in(session, caller, pid)
        assert role is not None
        return project_out(ctx, session, project, role.value)


@router.get("/projects", response_model=Page[ProjectOut])
def list_projects(
    caller: Caller, ctx: Ctx, offset: Offset = 0, limit: Limit = 50
) -> Page[ProjectOut]:
    """The projects the caller is a member of (every project for site administrators)."""
    caller.check_scope(Action.READ)
    with ctx.db.read() as session:
        query = select(Project, Membership.role).outerjoin(
            Membership,
            (Membership.project_id == Project.id) & (Membership.user_id == caller.user_id),
        )
        if not caller.is_admin:
            query = query.where(Membership.user_id == caller.user_id)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.execute(query.order_by(Project.id).offset(offset).limit(limit)).all()
        items = [
            project_out(ctx, session, p, Role.ADMIN.value if caller.is_admin else str(r))
            for p, r in rows
        ]
    return Page(items=items, total=total, offset=offset, limit=limit)


@router.post("/projects", response_model=ProjectOut, status_code=status.HTTP_201_CREATED)
def create_project(body: ProjectIn, caller: Caller, ctx: Ctx) -> ProjectOut:
    """A new project (site administrators); its creator becomes its admin."""
    caller.require_site_admin()
    text = None if body.recipe is None else recipe_text(body.recipe)
    recipe = None if text is None else check_recipe(text)
    schema = with_recipe_labels(body.label_schema or {"labels": []}, recipe)
    try:
        with ctx.db.write() as session:
            if session.scalars(select(Project.id).where(Project.name == body.name)).first():
                raise ApiError(409, f"a project named {body.name!r} exists")
            project = Project(name=body.name, label_schema=schema, recipe_text=text)
            session.add(project)
            session.flush()
            session.add(Membership(project_id=project.id, user_id=caller.user_id, role="admin"))
            session.flush()
            return project_out(ctx, session, project, Role.ADMIN.value)
    except IntegrityError:
        raise ApiError(409, f"a project named {body.name!r} exists") from None


@router.get("/projects/{pid}", response_model=ProjectOut)
def get_project(pid: ProjectId, caller: Caller, ctx: Ctx) -> ProjectOut:
    """One project."""
    return _get(ctx, caller, pid)


@router.put("/projects/{pid}/label-schema", response_model=ProjectOut)
def put_label_schema(pid: ProjectId, body: dict[str, Any], caller: Caller, ctx: Ctx) -> ProjectOut:
    """Replace the label schema (the recipe's rule kinds stay labels)."""
    with ctx.db.write() as session:
        project = require(session, caller, pid, Action.MANAGE)
        recipe = None if project.recipe_text is None else parse_recipe(project.recipe_text)
        project.label_schema = with_recipe_labels(body, recipe)
    return _get(ctx, caller, pid, Action.MANAGE)


def _set_recipe(ctx: ServerContext, caller: Principal, pid: int, text: str | None) -> ProjectOut:
    with ctx.db.read() as session:  # who may, before the recipe is compiled
        require(session, caller, pid, Action.MANAGE)
    recipe = None if text is None else check_recipe(text)
    with ctx.db.write() as session:
        project = require(session, caller, pid, Action.MANAGE)
        project.recipe_text = text
        project.label_schema = with_recipe_labels(project.label_schema, recipe)
    return _get(ctx, caller, pid, Action.MANAGE)


@router.put(
    "/projects/{pid}/recipe",
    response_model=ProjectOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def put_recipe(pid: ProjectId, request: Request, caller: Caller, ctx: Ctx) -> ProjectOut:
    """Set the recipe: YAML text (``application/yaml``, ``text/plain``) or a JSON object."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if len(body) > MAX_RECIPE_BYTES:
        raise ApiError(413, f"recipe larger than {MAX_RECIPE_BYTES} bytes")
    if kind == "application/json":
        try:
            value = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, f"recipe: not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ApiError(422, "recipe: a JSON recipe must be an object")
        text = recipe_text(value)
    elif kind in YAML_TYPES:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "recipe: the text is not UTF-8") from None
    else:
        raise ApiError(
            415,
            f"send the recipe as application/yaml, text/plain or application/json, not {kind!r}",
        )
    return await run_in_threadpool(_set_recipe, ctx, caller, pid, text)


@router.delete("/projects/{pid}/recipe", response_model=ProjectOut)
def delete_recipe(pid: ProjectId, caller: Caller, ctx: Ctx) -> ProjectOut:
    """Remove the recipe (ingest stops pre-annotating by recipe)."""
    return _set_recipe(ctx, caller, pid, None)


@router.get("/projects/{pid}/members", response_model=Items[MemberOut])
def list_members(pid: ProjectId, caller: Caller, ctx: Ctx) -> Items[MemberOut]:
    """The members of a project and their roles."""
    with ctx.db.read() as session:
        require(session, caller, pid, Action.READ)
        rows = session.execute(
            select(User.username, Membership.role)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.project_id == pid)
            .order_by(User.username)
        ).all()
    return Items(items=[MemberOut(username=u, role=r) for u, r in rows])


def _user(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise not_found(f"user {username!r}")
    return user


@router.put("/projects/{pid}/members/{username}", response_model=MemberOut)
def put_member(
    pid: ProjectId, username: Username, body: MemberIn, caller: Caller, ctx: Ctx
) -> MemberOut:
    """Give a user a role in the project (project admins)."""
    try:
        with ctx.db.write() as session:
            require(session, caller, pid, Action.MANAGE)
            user = _user(session, username)
            member = session.get(Membership, (pid, user.id))
            if member is None:
                session.add(Membership(project_id=pid, user_id=user.id, role=body.role))
            else:
                member.role = body.role
    except IntegrityError:  # the same member added by a concurrent request
        raise ApiError(409, f"{username} was just added to the project; try again") from None
    return MemberOut(username=username, role=body.role)


@router.delete("/projects/{pid}/members/{username}", status_code=status.HTTP_204_NO_CONTENT)
def delete_member(pid: ProjectId, username: Username, caller: Caller, ctx: Ctx) -> None:
    """Remove a user from the project (project admins)."""
    with ctx.db.write() as session:
        require(session, caller, pid, Action.MANAGE)
        user = _user(session, username)
        session.execute(
            delete(Membership).where(Membership.project_id == pid, Membership.user_id == user.id)
        )
