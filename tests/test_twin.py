"""The line model (twin): built from a site file and its recipes, exported as AAS and DTDL and
read back (the BaSyx SDK for AAS, a JSON-schema check for DTDL), parts against expected values."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import jsonschema
import pytest
from basyx.aas import model
from basyx.aas.adapter.json import read_aas_json_file
from typer.testing import CliRunner

from thermoscope.cli.main import app
from thermoscope.core import Finding, Inspection, Verdict
from thermoscope.twin import Site, TwinError, compare, load_site, parse_site
from thermoscope.twin.aas import site_from_aas_json, site_to_aas_json
from thermoscope.twin.dtdl import DTDL_DOCUMENT_SCHEMA, site_from_dtdl, site_to_dtdl

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(EXAMPLES / "site.yaml")


def test_site_is_built_from_its_recipes(site: Site) -> None:
    assert [s.id for s in site.stations()] == ["st1", "st2", "st3"]
    board = site.station("st1")
    assert (board.recipe, board.recipe_version) == ("synthetic-pcb", "1.0")
    assert board.camera.emissivity == pytest.approx(0.95)
    assert board.sensors[0].kind == "ambient"
    u1 = next(e for e in board.expected if e.rule == "U1 rise")
    # the middle of U1's WARN band [30, 42], NG outside [25, 45]
    assert (u1.region, u1.expected, u1.min, u1.max) == ("U1", 36.0, 25.0, 45.0)
    assert site.station("st3").model_version == "anomaly-3"
    with pytest.raises(TwinError, match="no station 'st9'"):
        site.station("st9")


def test_aas_export_is_read_back_by_the_basyx_sdk(site: Site) -> None:
    text = site_to_aas_json(site)
    store = read_aas_json_file(io.StringIO(text), failsafe=False)
    shells = [o for o in store if isinstance(o, model.AssetAdministrationShell)]
    submodels = [o for o in store if isinstance(o, model.Submodel)]
    assert [s.id for s in shells] == ["urn:thermoscope:site:plant-1"]
    assert [s.id_short for s in submodels] == ["LineModel"]
    lines = submodels[0].get_referable("lines")
    assert isinstance(lines, model.SubmodelElementList)
    assert site_from_aas_json(text) == site


def test_dtdl_export_passes_the_schema_and_round_trips(site: Site) -> None:
    document = site_to_dtdl(site)
    validator = jsonschema.Draft202012Validator(DTDL_DOCUMENT_SCHEMA)
    validator.validate(json.loads(json.dumps(document)))
    assert {m["@id"] for m in document["models"]} >= {"dtmi:thermoscope:twin:Station;1"}
    station = next(t for t in document["twins"] if t["$dtId"] == "plant-1.L1.st1")
    assert station["recipe"] == "synthetic-pcb"
    assert site_from_dtdl(document) == site
    broken = copy.deepcopy(document)
    broken["models"][0]["@id"] = "dtmi:thermoscope:1bad;1"
    broken["models"][1]["contents"][0]["name"] = "has space"
    errors = list(validator.iter_errors(broken))
    assert len(errors) == 2


def test_bad_site_files_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(TwinError, match=r"lines\[0\].stations\[0\]: needs recipe_file"):
        parse_site("id: p\nlines: [{id: L, stations: [{id: s}]}]", base=EXAMPLES)
    with pytest.raises(TwinError, match=r"recipe_file: .*nope.yaml"):
        parse_site(
            "id: p\nlines: [{id: L, stations: [{id: s, recipe_file: nope.yaml, camera: {id: c}}]}]",
            base=tmp_path,
        )
    with pytest.raises(TwinError, match="id"):
        parse_site(
            "id: p\nlines: [{id: L, stations: [{id: '3 x', recipe_file: pcb.yaml, "
            "camera: {id: c}}]}]",
            base=EXAMPLES,
        )
    with pytest.raises(TwinError, match="one Site twin"):
        site_from_dtdl({"twins": [], "relationships": []})
    with pytest.raises(TwinError, match="AAS JSON"):
        site_from_aas_json('{"assetAdministrationShells": [{"id": 3}]}')


def test_a_part_is_held_against_its_expected_values(site: Site) -> None:
    inspection = Inspection.of(
        "PCB-000001",
        None,
        [
            Finding("U1 rise", "U1", 38.5, 45.0, Verdict.OK, "U1 rise 38.5 °C"),
            Finding("U1 hot spot", "U1", 0.0, 1.0, Verdict.OK, "no spot", unit="px"),
        ],
    )
    values = compare(site.station("st1"), inspection)
    assert [(v.rule, v.expected, v.deviation, v.verdict) for v in values] == [
        ("U1 rise", 36.0, 2.5, "OK"),
        ("U1 hot spot", None, None, "OK"),
    ]


def test_cli_exports_both_formats(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "site.aas.json"
    result = runner.invoke(app, ["twin", "export", str(EXAMPLES / "site.yaml"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 stations" in result.output
    assert site_from_aas_json(out.read_text(encoding="utf-8")).id == "plant-1"
    result = runner.invoke(app, ["twin", "export", str(EXAMPLES / "site.yaml"), "--format", "dtdl"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    jsonschema.Draft202012Validator(DTDL_DOCUMENT_SCHEMA).validate(document)
