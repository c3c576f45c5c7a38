"""The twin as DTDL v3: interfaces for the model, twins and relationships for one site.

:func:`site_to_dtdl` returns one JSON document with three lists, the shape twin platforms
import in bulk (Azure Digital Twins' import job takes the same three sections):

- ``models``: DTDL v3 interfaces (``@context`` ``dtmi:dtdl:context;3``) ``Site``, ``Line``,
  ``Station``, ``Camera`` and ``Sensor`` under ``dtmi:thermoscope:twin``, with their properties,
  the station's telemetry (a part's measured value and verdict) and the relationships
  ``hasLine``, ``hasStation``, ``hasCamera``, ``hasSensor``;
- ``twins``: one per site, line, station, camera and sensor, ``$dtId`` and ``$metadata.$model``
  plus its property values;
- ``relationships``: ``$sourceId``, ``$relationshipName``, ``$targetId``.

:func:`site_from_dtdl` rebuilds the :class:`~thermoscope.twin.model.Site` from such a document.
:data:`DTDL_DOCUMENT_SCHEMA` is a JSON Schema of the document written from the DTDL v3 spec's
rules (DTMI syntax, names, the primitive and complex schemas used here) for checking exports.
"""

from __future__ import annotations

from typing import Any

from thermoscope.twin.model import Site, TwinError, site_from_json

CONTEXT = "dtmi:dtdl:context;3"
PREFIX = "dtmi:thermoscope:twin"
#: DTMI syntax (DTDL v3): path segments of letters, digits and underscores (not ending in one,
#: no leading digit), ``;`` and a version 1-999999999 with an optional minor part.
DTMI_PATTERN = (
    r"^dtmi:(?:_+[A-Za-z0-9]|[A-Za-z])(?:[A-Za-z0-9_]*[A-Za-z0-9])?"
    r"(?::(?:_+[A-Za-z0-9]|[A-Za-z])(?:[A-Za-z0-9_]*[A-Za-z0-9])?)*;[1-9][0-9]{0,8}"
    r"(?:\.[1-9][0-9]{0,5})?$"
)
#: Content names (DTDL v3): start with a letter, letters/digits/underscores, not ending in _.
NAME_PATTERN = r"^[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?$"
PRIMITIVES = (
    "boolean",
    "date",
    "dateTime",
    "double",
    "duration",
    "float",
    "integer",
    "long",
    "string",
    "time",
)


def _dtmi(name: str) -> str:
    return f"{PREFIX}:{name};1"


def _object(fields: dict[str, str]) -> dict[str, Any]:
    return {
        "@type": "Object",
        "fields": [{"name": name, "schema": schema} for name, schema in fields.items()],
    }


_CALIBRATION = _object({"date": "string", "reference": "string", "offset_c": "double"})
_REGION = _object({"name": "string", "emissivity": "double"})
_EXPECTED = _object(
    {"rule": "string", "region": "string", "expected": "double", "min": "double", "max": "double"}
)
#: Per interface: properties (name → schema) and relationships (name → target interface).
_INTERFACES: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "Site": ({"name": "string"}, {"hasLine": "Line"}),
    "Line": ({"name": "string"}, {"hasStation": "Station"}),
    "Station": (
        {
            "name": "string",
            "recipe": "string",
            "recipe_version": "string",
            "model_version": "string",
            "parts_per_hour": "double",
            "ambient_c": "double",
            "regions": {"@type": "Array", "elementSchema": _REGION},
            "expected": {"@type": "Array", "elementSchema": _EXPECTED},
        },
        {"hasCamera": "Camera", "hasSensor": "Sensor"},
    ),
    "Camera": (
        {
            "make": "string",
            "model": "string",
            "serial": "string",
            "emissivity": "double",
            "distance_m": "double",
            "calibration": _CALIBRATION,
        },
        {},
    ),
    "Sensor": ({"kind": "string", "unit": "string", "rate_hz": "double"}, {}),
}
_TELEMETRY = {"Station": {"measured": "double", "verdict": "string"}}


def interfaces() -> list[dict[str, Any]]:
    """The DTDL v3 interfaces of the line model."""
    out = []
    for name, (properties, relationships) in _INTERFACES.items():
        contents: list[dict[str, Any]] = [
            {"@type": "Property", "name": key, "schema": schema, "writable": True}
            for key, schema in properties.items()
        ]
        contents += [
            {"@type": "Telemetry", "name": key, "schema": schema}
            for key, schema in _TELEMETRY.get(name, {}).items()
        ]
        contents += [
            {"@type": "Relationship", "name": key, "target": _dtmi(target)}
            for key, target in relationships.items()
        ]
        out.append(
            {
                "@context": CONTEXT,
                "@id": _dtmi(name),
                "@type": "Interface",
                "displayName": name,
                "contents": contents,
            }
        )
    return out


def _twin(dt_id: str, kind: str, values: dict[str, Any]) -> dict[str, Any]:
    properties = _INTERFACES[kind][0]
    twin: dict[str, Any] = {"$dtId": dt_id, "$metadata": {"$model": _dtmi(kind)}}
    for key in properties:
        value = values.get(key)
        if isinstance(value, list):
            value = [{k: v for k, v in item.items() if v is not None} for item in value]
        elif isinstance(value, dict):
            value = {k: v for k, v in value.items() if v is not None}
        if value is not None:
            twin[key] = value
    return twin


def site_to_dtdl(site: Site) -> dict[str, Any]:
    """The DTDL document of a site: ``models``, ``twins`` and ``relationships``."""
    data = site.model_dump(mode="json")
    twins = [_twin(site.id, "Site", data)]
    links: list[dict[str, str]] = []

    def link(source: str, name: str, target: str) -> None:
        links.append(
            {
                "$relationshipId": f"{source}-{name}-{target}",
                "$sourceId": source,
                "$relationshipName": name,
                "$targetId": target,
            }
        )

    for line in data["lines"]:
        line_id = f"{site.id}.{line['id']}"
        twins.append(_twin(line_id, "Line", line))
        link(site.id, "hasLine", line_id)
        for station in line["stations"]:
            station_id = f"{line_id}.{station['id']}"
            twins.append(_twin(station_id, "Station", station))
            link(line_id, "hasStation", station_id)
            camera_id = f"{station_id}.{station['camera']['id']}"
            twins.append(_twin(camera_id, "Camera", station["camera"]))
            link(station_id, "hasCamera", camera_id)
            for sensor in station["sensors"]:
                sensor_id = f"{station_id}.{sensor['id']}"
                twins.append(_twin(sensor_id, "Sensor", sensor))
                link(station_id, "hasSensor", sensor_id)
    return {"models": interfaces(), "twins": twins, "relationships": links}


def site_from_dtdl(document: Any) -> Site:
    """The site of a DTDL document written by :func:`site_to_dtdl` (or built the same way)."""
    if not isinstance(document, dict) or not all(
        isinstance(document.get(k), list) for k in ("twins", "relationships")
    ):
        raise TwinError("DTDL: expected an object with twins and relationships lists")
    twins: dict[str, dict[str, Any]] = {}
    for k, twin in enumerate(document["twins"]):
        if not isinstance(twin, dict) or not isinstance(twin.get("$dtId"), str):
            raise TwinError(f"DTDL: twins[{k}] has no $dtId")
        twins[twin["$dtId"]] = twin
    children: dict[tuple[str, str], list[str]] = {}
    for k, rel in enumerate(document["relationships"]):
        try:
            source, name, target = rel["$sourceId"], rel["$relationshipName"], rel["$targetId"]
        except (KeyError, TypeError) as exc:
            raise TwinError(f"DTDL: relationships[{k}] lacks {exc}") from exc
        if target not in twins:
            raise TwinError(f"DTDL: relationships[{k}] targets unknown twin {target!r}")
        children.setdefault((source, name), []).append(target)

    def fields(dt_id: str) -> dict[str, Any]:
        twin = twins[dt_id]
        out = {k: v for k, v in twin.items() if not k.startswith("$")}
        out["id"] = dt_id.rsplit(".", 1)[-1]
        return out

    def related(dt_id: str, name: str) -> list[str]:
        return children.get((dt_id, name), [])

    sites = [i for i, t in twins.items() if t.get("$metadata", {}).get("$model") == _dtmi("Site")]
    if len(sites) != 1:
        raise TwinError(f"DTDL: expected one Site twin, found {len(sites)}")
    site = fields(sites[0])
    site["lines"] = []
    for line_id in related(sites[0], "hasLine"):
        line = fields(line_id)
        line["stations"] = []
        for station_id in related(line_id, "hasStation"):
            station = fields(station_id)
            cameras = related(station_id, "hasCamera")
            if len(cameras) != 1:
                raise TwinError(f"DTDL: station {station_id!r} has {len(cameras)} cameras")
            station["camera"] = fields(cameras[0])
            station["sensors"] = [fields(s) for s in related(station_id, "hasSensor")]
            line["stations"].append(station)
        site["lines"].append(line)
    return site_from_json(site, source="DTDL document")


def _schema_ref() -> dict[str, Any]:
    return {
        "oneOf": [
            {"enum": list(PRIMITIVES)},
            {"$ref": "#/$defs/object"},
            {"$ref": "#/$defs/array"},
        ]
    }


#: JSON Schema (draft 2020-12) of a document :func:`site_to_dtdl` writes.
DTDL_DOCUMENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["models", "twins", "relationships"],
    "additionalProperties": False,
    "$defs": {
        "dtmi": {"type": "string", "pattern": DTMI_PATTERN, "maxLength": 2048},
        "name": {"type": "string", "pattern": NAME_PATTERN, "maxLength": 512},
        "schema": _schema_ref(),
        "object": {
            "type": "object",
            "required": ["@type", "fields"],
            "properties": {
                "@type": {"const": "Object"},
                "fields": {
                    "type": "array",
                    "maxItems": 30,
                    "items": {
                        "type": "object",
                        "required": ["name", "schema"],
                        "properties": {
                            "name": {"$ref": "#/$defs/name"},
                            "schema": {"$ref": "#/$defs/schema"},
                        },
                    },
                },
            },
        },
        "array": {
            "type": "object",
            "required": ["@type", "elementSchema"],
            "properties": {
                "@type": {"const": "Array"},
                "elementSchema": {"$ref": "#/$defs/schema"},
            },
        },
        "content": {
            "type": "object",
            "required": ["@type", "name"],
            "properties": {
                "@type": {
                    "enum": ["Property", "Telemetry", "Relationship", "Component", "Command"]
                },
                "name": {"$ref": "#/$defs/name"},
                "schema": {"$ref": "#/$defs/schema"},
                "target": {"$ref": "#/$defs/dtmi"},
                "writable": {"type": "boolean"},
            },
            "allOf": [
                {
                    "if": {"properties": {"@type": {"enum": ["Property", "Telemetry"]}}},
                    "then": {"required": ["schema"], "not": {"required": ["target"]}},
                },
                {
                    "if": {"properties": {"@type": {"const": "Relationship"}}},
                    "then": {"not": {"required": ["schema"]}},
                },
            ],
        },
        "interface": {
            "type": "object",
            "required": ["@context", "@id", "@type"],
            "properties": {
                "@context": {"const": CONTEXT},
                "@id": {"$ref": "#/$defs/dtmi"},
                "@type": {"const": "Interface"},
                "displayName": {"type": "string", "maxLength": 512},
                "contents": {
                    "type": "array",
                    "maxItems": 100000,
                    "items": {"$ref": "#/$defs/content"},
                },
            },
        },
    },
    "properties": {
        "models": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/interface"}},
        "twins": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["$dtId", "$metadata"],
                "properties": {
                    "$dtId": {"type": "string", "minLength": 1, "maxLength": 128},
                    "$metadata": {
                        "type": "object",
                        "required": ["$model"],
                        "properties": {"$model": {"$ref": "#/$defs/dtmi"}},
                    },
                },
            },
        },
        "relationships": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["$sourceId", "$relationshipName", "$targetId"],
                "properties": {
                    "$relationshipId": {"type": "string", "minLength": 1},
                    "$sourceId": {"type": "string", "minLength": 1},
                    "$relationshipName": {"$ref": "#/$defs/name"},
                    "$targetId": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}
