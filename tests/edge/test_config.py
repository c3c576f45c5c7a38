"""The agent's configuration: the example loads, wrong files are refused naming the file and each
field, the PLC and secret rules hold, and docs/edge.md documents every field."""

from __future__ import annotations

import asyncio
import re
import typing
from pathlib import Path

import pydantic
import pytest

from thermoscope.edge import config as cfg
from thermoscope.edge.config import ConfigError, load_config, parse_config, read_secret
from thermoscope.edge.sources import GenICamSource, SourceError

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "edge.md").read_text(encoding="utf-8")

MINIMAL = {
    "identity": {"site": "s", "line": "l", "station": "t"},
    "source": {"kind": "synthetic"},
    "recipe": "pcb.yaml",
}


def test_the_example_loads_with_paths_next_to_it() -> None:
    config = load_config(ROOT / "examples" / "edge.yaml")
    assert config.recipe == ROOT / "examples" / "pcb.yaml"
    assert config.source.kind == "synthetic"
    assert config.server is not None
    assert config.server.token_env == "THERMOSCOPE_EDGE_TOKEN"
    assert config.outbox.path == ROOT / "examples" / "edge-data" / "outbox.db"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_errors_name_the_file_and_every_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "identity: {site: s, line: l, station: 'a/b'}\n"
        "source: {kind: synthetic, rate_hz: -1, colour: red}\n"
        "recipe: pcb.yaml\n"
        "outbox: {ok_sample_share: 2}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert text.startswith(str(path))
    fields = {where for where, _ in caught.value.problems}
    assert fields == {
        "identity.station",
        "source.rate_hz",
        "source.colour",
        "outbox.ok_sample_share",
    }
    assert "unknown key 'colour'" in text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "must be a mapping"),
        ("identity: [", "not valid YAML/JSON at line"),
        ("- 1\n", "must be a mapping"),
    ],
)
def test_a_file_that_is_not_a_configuration_is_refused(
    tmp_path: Path, text: str, reason: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(reason)):
        load_config(write(tmp_path, text))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def problems(data: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return str(caught.value)


def test_plc_kinds_take_their_own_settings() -> None:
    plc = parse_config({**MINIMAL, "trigger": {"kind": "plc"}, "plc": {"kind": "modbus"}}).plc
    assert plc.modbus is not None
    assert plc.modbus.port == 502
    assert "needs opcua settings" in problems(
        {**MINIMAL, "trigger": {"kind": "plc"}, "plc": {"kind": "opcua-client"}}
    )
    assert "modbus settings given but kind is opcua-machine-vision" in problems(
        {
            **MINIMAL,
            "trigger": {"kind": "plc"},
            "plc": {"kind": "opcua-machine-vision", "modbus": {"port": 1502}},
        }
    )
    assert "needs a plc link" in problems({**MINIMAL, "trigger": {"kind": "plc"}})
    assert "trigger kind plc" in problems({**MINIMAL, "plc": {"kind": "modbus"}})
    assert "needs mqtt settings" in problems({**MINIMAL, "trigger": {"kind": "mqtt"}})
    bad_tag = {"kind": "opcua-client", "opcua": {"endpoint": "opc.tcp://x:4840"}}
    bad_tag["opcua"]["inputs"] = {"trigger": "not a node"}  # type: ignore[index]
    assert "plc.opcua.inputs.trigger" in problems(
        {**MINIMAL, "trigger": {"kind": "plc"}, "plc": bad_tag}
    )


def test_recipe_or_model_and_known_products_are_required() -> None:
    data = {k: v for k, v in MINIMAL.items() if k != "recipe"}
    assert "give a recipe, a model release, or both" in problems(data)
    assert "product 'toaster'" in problems(
        {**MINIMAL, "source": {"kind": "synthetic", "product": "toaster"}}
    )


def test_secrets_are_given_one_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = {"url": "http://h:8000", "project_id": 1}
    assert "give token, token_file or token_env" in problems({**MINIMAL, "server": server})
    both = {**server, "token": "tsk_12345678", "token_env": "X"}
    assert "one way only" in problems({**MINIMAL, "server": both})
    token = tmp_path / "token"
    token.write_text("tsk_from_a_file\n", encoding="utf-8")
    assert read_secret(None, token, None, "server.token") == "tsk_from_a_file"
    monkeypatch.setenv("EDGE_TOKEN_TEST", "tsk_from_env")
    assert read_secret(None, None, "EDGE_TOKEN_TEST", "server.token") == "tsk_from_env"
    monkeypatch.delenv("EDGE_TOKEN_TEST")
    with pytest.raises(ConfigError, match="EDGE_TOKEN_TEST is not set"):
        read_secret(None, None, "EDGE_TOKEN_TEST", "server.token")
    short = {"url": "http://h/hook", "secret": "short"}
    assert "webhook.secret" in problems({**MINIMAL, "webhook": short})


def test_a_genicam_source_without_harvesters_says_what_is_missing(tmp_path: Path) -> None:
    config = parse_config(
        {**MINIMAL, "source": {"kind": "genicam", "producer": str(tmp_path / "x.cti")}}
    )
    source = GenICamSource(config.source)  # type: ignore[arg-type]
    try:
        import harvesters  # noqa: F401
    except ImportError:
        expected = "harvesters package is not installed"
    else:
        expected = "no GenTL producer"
    with pytest.raises(SourceError, match=expected):
        asyncio.run(source.open())


def _models(annotation: object) -> list[type[pydantic.BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _every_model() -> dict[str, type[pydantic.BaseModel]]:
    found: dict[str, type[pydantic.BaseModel]] = {}

    def walk(model: type[pydantic.BaseModel]) -> None:
        if model.__name__ in found:
            return
        found[model.__name__] = model
        for info in model.model_fields.values():
            for inner in _models(info.annotation):
                walk(inner)

    walk(cfg.AgentConfig)
    return found


@pytest.mark.parametrize("name", sorted(_every_model()))
def test_every_field_is_described_bounded_and_documented(name: str) -> None:
    model = _every_model()[name]
    if model.__module__ == "thermoscope.recipes.watch":
        doc = (ROOT / "docs" / "drift-watch.md").read_text(encoding="utf-8")
    elif model.__module__ == cfg.__name__:
        doc = DOC[DOC.index("\n## Configuration") :]
    else:  # the PLC links' settings, documented with their links
        doc = DOC
    for field, info in model.model_fields.items():
        assert info.description, f"{name}.{field} has no description"
        assert f"`{field}`" in doc, f"{name}.{field} undocumented"
