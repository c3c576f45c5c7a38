"""The server's edge-inspection schema is core's inspection contract, field for field."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from thermoscope.core import Finding, Inspection, Verdict
from thermoscope.core.findings import FINDING_KEYS, INSPECTION_KEYS
from thermoscope.server.schemas.frames import (
    EDGE_ONLY,
    MAX_EXTRA_BYTES,
    EdgeFinding,
    EdgeInspection,
)


def test_the_schemas_have_the_contracts_fields_in_order() -> None:
    assert tuple(EdgeFinding.model_fields) == FINDING_KEYS
    assert tuple(EdgeInspection.model_fields) == (*INSPECTION_KEYS, *EDGE_ONLY)


def test_a_contract_inspection_passes_the_schema_unchanged() -> None:
    inspection = Inspection.of(
        "cam-3/part-17",
        2,
        [
            Finding("U1 max", "U1", 81.5, 70.0, Verdict.NG, "81.5 °C above 70 °C", 5, 6,
                    margin=-11.5),
            Finding("model:net", "cold_joint", 0.75, 0.5, Verdict.NG, "cold joint", 9, 9,
                    margin=-0.25, unit="score", extra={"kind": "cold_joint", "box": [1, 2, 3, 4]},
                    score=0.75),
        ],
    )  # fmt: skip
    record = json.loads(json.dumps(inspection.to_json()))
    edge = EdgeInspection.model_validate({**record, "model": "net", "model_version": "3"})
    assert edge.contract_json() == record
    assert Inspection.from_json(edge.contract_json()) == inspection


def test_the_schema_bounds_what_the_contract_leaves_open() -> None:
    base = Finding("r", "a", 1.0, None, Verdict.OK, "").to_json()
    with pytest.raises(ValidationError, match="more than"):
        EdgeFinding.model_validate({**base, "extra": {"blob": "x" * MAX_EXTRA_BYTES}})
    with pytest.raises(ValidationError, match="score"):
        EdgeFinding.model_validate({**base, "score": 1.5})
    with pytest.raises(ValidationError, match="colour"):
        EdgeFinding.model_validate({**base, "colour": "red"})


@pytest.mark.parametrize("verdict", list(Verdict))
def test_every_core_verdict_passes_the_schema(verdict: Verdict) -> None:
    finding = Finding("protocol", "top focus", 0.1, 2.0, verdict, "why")
    record = json.loads(json.dumps(Inspection.of("part-1", 0, [finding]).to_json()))
    edge = EdgeInspection.model_validate(record)
    assert edge.contract_json() == record
    assert Inspection.from_json(edge.contract_json()).verdict is verdict
    with pytest.raises(ValidationError, match="verdict"):
        EdgeInspection.model_validate({**record, "verdict": verdict.value.lower() + "?"})
