"""Property-based API fuzzing: schemathesis over the OpenAPI document finds no server error.

Requests are generated from the schema (valid and invalid bodies, queries, headers, files);
every other case that names a resource are pointed at real ones (a project with a recipe, a
frame, a dataset version) so the fuzzing reaches past the 404s. Every answer must be below 500.
"""

from __future__ import annotations

import itertools
import os
import secrets
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from server_support import make_settings

import thermoscope.io as tio
from thermoscope.datasets.synthetic import simulate_run
from thermoscope.pipeline.demo import example_recipe
from thermoscope.server import create_app
from thermoscope.server.auth import SCOPES, Principal, digest
from thermoscope.server.datasets import HANDLERS
from thermoscope.server.db.models import ApiToken, Job, Membership, Project, User, now
from thermoscope.server.ingest import ingest_bytes
from thermoscope.server.jobs import JobRunner, add_job

#: Examples per operation: modest so the suite stays fast; raise THERMOSCOPE_FUZZ_EXAMPLES for a
#: deeper run (and THERMOSCOPE_FUZZ_DATABASE_URL to fuzz another database than SQLite).
EXAMPLES = int(os.environ.get("THERMOSCOPE_FUZZ_EXAMPLES", "8"))


@pytest.fixture(scope="module")
def api_schema(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Any, dict[str, Any], dict[str, str]]:
    """The app's schema, ids of a seeded project, frame and version, and the header of a
    token with every scope."""
    database = os.environ.get("THERMOSCOPE_FUZZ_DATABASE_URL")
    app = create_app(make_settings(tmp_path_factory.mktemp("fuzz"), database, worker_threads=0))
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    ctx = app.state.ctx
    token = "tsk_" + secrets.token_urlsafe(24)
    with ctx.db.write() as session:
        admin = session.query(User).filter_by(username="admin").one()
        session.add(
            ApiToken(
                user_id=admin.id,
                name="fuzz",
                token_hash=digest(token),
                scopes=list(SCOPES),
                expires_at=now() + timedelta(hours=1),
            )
        )
        project = Project(
            name="fuzz",
            label_schema={"labels": []},
            recipe_text=example_recipe("pcb").read_text(encoding="utf-8"),
        )
        session.add(project)
        session.flush()
        session.add(Membership(project_id=project.id, user_id=admin.id, role="admin"))
        principal = Principal(admin.id, "admin", True)
        pid = project.id
    writer = next(w for w in tio.writers() if w.name == "flir-seq")
    part = next(iter(simulate_run("pcb", parts=1, defect_rate=1, rng=np.random.default_rng(0))))
    frame = ingest_bytes(ctx, pid, principal, writer.emit([part.frame]), "board.seq")
    with ctx.db.write() as session:
        job_id = add_job(session, "dataset_version", pid, {"project_id": pid}, "admin").id
    assert JobRunner(ctx, HANDLERS).run_pending() == 1
    with ctx.db.read() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert job.state == "done", job.error
        version = dict(job.result or {})
    known = {"pid": pid, "fid": frame.frame_id, "vid": version["version_id"]}
    auth = {"Authorization": f"Bearer {token}"}
    return schema.exclude(method="DELETE", path_regex="^/api/v1/tokens/"), known, auth


def test_no_server_error(api_schema: tuple[Any, dict[str, Any], dict[str, str]]) -> None:
    """Every operation, ``EXAMPLES`` generated requests each: no answer is a 5xx."""
    schema, known, auth = api_schema
    operations = [result.ok() for result in schema.get_all_operations()]
    turn = itertools.count()
    assert len(operations) > 25

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            if case.path_parameters and next(turn) % 2 == 0:
                for name, value in known.items():
                    if name in case.path_parameters:
                        case.path_parameters[name] = value
            case.call_and_validate(headers=auth, checks=[not_a_server_error])

        run()
