"""Seed a demo project from the synthetic production line (``thermoscope serve --demo``).

The project gets the shipped PCB recipe and labels for the line's defects; its frames are the
line's boards, written as FLIR SEQ files and ingested through the same path an edge agent's
uploads take, so every board arrives with the recipe's pre-annotations as drafts. A few boards
are whole heating recordings (20 frames) for the sequence player and track curves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

import thermoscope.io as tio
from thermoscope.annotations import AttributeSpec, AttributeType, LabelSchema, LabelSpec
from thermoscope.datasets.synthetic import simulate_run
from thermoscope.pipeline.demo import DEMO_DRIFT, example_recipe
from thermoscope.server.auth import Principal
from thermoscope.server.context import ServerContext
from thermoscope.server.db.models import Membership, Project, User
from thermoscope.server.ingest import ingest_bytes
from thermoscope.server.routers.projects import check_recipe, with_recipe_labels

DEMO_PROJECT = "Demo PCB line"

#: Labels of the synthetic line's defects (the recipe's rule kinds are added to them).
DEFECT_LABELS = LabelSchema(
    (
        LabelSpec(
            "hot_spot",
            (AttributeSpec("severity", AttributeType.ENUM, values=("minor", "major")),),
            "a component or joint running too hot",
        ),
        LabelSpec(
            "cold_joint",
            (AttributeSpec("severity", AttributeType.ENUM, values=("minor", "major")),),
            "a component that barely warms: a cold solder joint",
        ),
        LabelSpec("component", description="a board component (for tracks)"),
    )
)


@dataclass(frozen=True, slots=True)
class DemoSeed:
    """What ``seed_demo`` made."""

    project_id: int
    frames: int
    created: bool


def seed_demo(
    ctx: ServerContext, admin: str, *, parts: int = 48, sequences: int = 6, seed: int = 0
) -> DemoSeed:
    """Create the demo project (once) with ``parts`` boards and ``sequences`` recordings."""
    text = example_recipe("pcb").read_text(encoding="utf-8")
    recipe = check_recipe(text)
    with ctx.db.write() as session:
        user = session.scalars(select(User).where(User.username == admin)).one()
        project = session.scalars(select(Project).where(Project.name == DEMO_PROJECT)).first()
        if project is not None:
            return DemoSeed(project.id, 0, False)
        project = Project(
            name=DEMO_PROJECT,
            label_schema=with_recipe_labels(DEFECT_LABELS.to_dict(), recipe),
            recipe_text=text,
        )
        session.add(project)
        session.flush()
        session.add(Membership(project_id=project.id, user_id=user.id, role="admin"))
        project_id, principal = project.id, Principal(user.id, user.username, user.is_admin)
    writer = next(w for w in tio.writers() if w.name == "flir-seq")
    rng = np.random.default_rng(seed)
    made = 0
    for part in simulate_run("pcb", parts=parts, defect_rate=0.1, rng=rng, drift=DEMO_DRIFT):
        meta = {"serial": part.serial, "product": "pcb"}
        ingest_bytes(
            ctx, project_id, principal, writer.emit([part.frame]), f"{part.serial}.seq", meta=meta
        )
        made += 1
    runs = simulate_run(
        "pcb", parts=sequences, defect_rate=0.3, rng=np.random.default_rng(seed + 1), sequence=True
    )
    for part in runs:
        meta = {"serial": f"{part.serial}-rec", "product": "pcb"}
        data = writer.emit(list(part.frames))
        ingest_bytes(ctx, project_id, principal, data, f"{part.serial}-heating.seq", meta=meta)
        made += 1
    return DemoSeed(project_id, made, True)
