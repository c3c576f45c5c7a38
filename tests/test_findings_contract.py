"""Core's lossless inspection JSON contract: every field, key order, exact round trips."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermoscope.core import ContractError, Finding, Inspection, Verdict
from thermoscope.core.findings import FINDING_KEYS, INSPECTION_KEYS

finite = st.floats(allow_nan=False, allow_infinity=False)
text = st.text(max_size=20)
json_leaf = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite | text
json_data = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
pixels = st.none() | st.integers(0, 1 << 20)
findings = st.builds(
    Finding,
    rule=text,
    region=text,
    value=finite,
    limit=st.none() | finite,
    verdict=st.sampled_from(Verdict),
    explanation=text,
    x=pixels,
    y=pixels,
    margin=st.none() | finite,
    unit=text,
    extra=st.dictionaries(text, json_data, max_size=4),
    score=st.none() | st.floats(0.0, 1.0),
)
inspections = st.builds(
    Inspection,
    source=text,
    frame=st.none() | st.integers(0, 1 << 20),
    verdict=st.sampled_from(Verdict),
    findings=st.lists(findings, max_size=4).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(inspections)
def test_inspections_round_trip_exactly_through_json_text(inspection: Inspection) -> None:
    record = inspection.to_json()
    line = json.dumps(record, ensure_ascii=False, allow_nan=False)
    back = Inspection.from_json(json.loads(line))
    assert back == inspection
    assert back.to_json() == record
    assert list(record) == list(INSPECTION_KEYS)
    assert all(list(f) == list(FINDING_KEYS) for f in record["findings"])


def test_the_original_keys_come_first_in_their_order() -> None:
    assert FINDING_KEYS[:8] == (
        "rule", "region", "value", "limit", "verdict", "x", "y", "explanation",
    )  # fmt: skip
    assert INSPECTION_KEYS == ("source", "frame", "verdict", "findings")


def test_a_finding_carries_every_field() -> None:
    finding = Finding(
        "model:net", "cold joint", 0.8125, 0.5, Verdict.NG, "looks like a cold joint", 3, 4,
        margin=-0.3125, unit="score", extra={"kind": "cold_joint", "box": [1, 2, 5, 6]},
        score=0.8125,
    )  # fmt: skip
    record = finding.to_json()
    assert record == {
        "rule": "model:net",
        "region": "cold joint",
        "value": 0.8125,
        "limit": 0.5,
        "verdict": "NG",
        "x": 3,
        "y": 4,
        "explanation": "looks like a cold joint",
        "margin": -0.3125,
        "unit": "score",
        "score": 0.8125,
        "extra": {"kind": "cold_joint", "box": [1, 2, 5, 6]},
    }
    assert Finding.from_json(record) == finding


def test_numpy_and_tuples_in_extra_become_json_and_non_finite_numbers_null() -> None:
    finding = Finding(
        "hot spot", "U1", math.nan, math.inf, Verdict.NG, "no valid pixel",
        margin=-math.inf,
        extra={"area": np.float32(2.5), "spots": np.array([[1, 2]]), "box": (1, 2), "t": math.nan},
    )  # fmt: skip
    record = finding.to_json()
    assert (record["value"], record["limit"], record["margin"]) == (None, None, None)
    assert record["extra"] == {"area": 2.5, "spots": [[1, 2]], "box": [1, 2], "t": None}
    json.dumps(record, allow_nan=False)
    back = Finding.from_json(record)
    assert math.isnan(back.value)
    assert (back.limit, back.margin) == (None, None)
    assert back.to_json() == record


def test_original_eight_key_findings_are_read_with_defaults() -> None:
    old = {
        "rule": "U1 max", "region": "U1", "value": 81.5, "limit": 70.0, "verdict": "NG",
        "x": 5, "y": 6, "explanation": "81.5 °C above 70 °C",
    }  # fmt: skip
    finding = Finding.from_json(old)
    assert (finding.margin, finding.unit, finding.score, finding.extra) == (None, "°C", None, {})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"verdict": "MAYBE"}, r"f\.verdict must be OK, WARN or NG"),
        ({"value": "hot"}, r"f\.value must be a number"),
        ({"x": -1}, r"f\.x must be a pixel index"),
        ({"x": True}, r"f\.x must be a pixel index"),
        ({"score": 1.5}, r"f\.score must be in \[0, 1\]"),
        ({"extra": []}, r"f\.extra must be an object"),
        ({"colour": "red"}, r"unknown keys \['colour'\]"),
        ({"rule": None}, r"f\.rule must be a string"),
    ],
)
def test_bad_findings_are_refused_naming_the_field(change: dict[str, Any], message: str) -> None:
    record = Finding("r", "a", 1.0, None, Verdict.OK, "").to_json() | change
    with pytest.raises(ContractError, match=message):
        Finding.from_json(record, what="f")


def test_bad_inspections_are_refused_naming_the_field() -> None:
    with pytest.raises(ContractError, match=r"missing keys \['findings'\]"):
        Inspection.from_json({"source": "p", "frame": 0, "verdict": "OK"})
    with pytest.raises(ContractError, match=r"inspection\.findings\[0\] must be a JSON object"):
        Inspection.from_json({"source": "p", "frame": 0, "verdict": "OK", "findings": [1]})
    with pytest.raises(ContractError, match="frame must be an integer"):
        Inspection.from_json({"source": "p", "frame": 0.5, "verdict": "OK", "findings": []})
    with pytest.raises(ContractError, match="extra: key 1 is not a string"):
        Finding("r", "a", 1.0, None, Verdict.OK, "", extra={1: "x"}).to_json()  # type: ignore[dict-item]
