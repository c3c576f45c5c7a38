"""JSON lines for machines: one inspected part per line, exactly ``Inspection.to_json()``.

Each line is ``{"source", "frame", "verdict": "OK"|"WARN"|"NG", "findings": [{"rule", "region",
"value", "limit", "verdict", "x", "y", "explanation"}]}`` with values in °C (rates in °C/s),
UTF-8, no ASCII escaping ("°C" stays readable). A value that is not a finite number (NaN, ±inf:
JSON has none) is ``null`` in ``Inspection.to_json()`` and is read back as NaN.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from thermoscope.core import Finding, Inspection, Verdict
from thermoscope.reports.errors import ReportError

_FINDING_KEYS = ("rule", "region", "value", "limit", "verdict", "x", "y", "explanation")
_INSPECTION_KEYS = ("source", "frame", "verdict", "findings")


def inspection_to_jsonl(inspection: Inspection) -> str:
    """The part's JSON-lines record: one line of JSON, without the trailing newline."""
    record = inspection.to_json()
    return json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def inspection_from_json(record: Any) -> Inspection:
    """An ``Inspection`` from a decoded JSON-lines record (the inverse of ``to_json``).

    Only what the record holds comes back: each finding's ``margin`` is ``None``, its
    ``unit`` "°C" and its ``extra`` empty. A ``null`` value becomes NaN, a ``null`` limit
    ``None``.

    Raises:
        ReportError: a key is missing or unknown, or a value has the wrong type.
    """
    obj = _object(record, _INSPECTION_KEYS, "record")
    findings = obj["findings"]
    if not isinstance(findings, list):
        raise ReportError("record: findings must be a list")
    return Inspection(
        source=_string(obj["source"], "source"),
        frame=_optional_int(obj["frame"], "frame"),
        verdict=_verdict(obj["verdict"], "verdict"),
        findings=tuple(_finding(f, i) for i, f in enumerate(findings)),
    )


def write_jsonl(path: str | Path, inspections: Iterable[Inspection]) -> int:
    """Append one line per inspection to ``path`` (created if missing); returns the count.

    Append-safe: each line goes to the end of the file in a single ``O_APPEND`` write, so
    several writers (processes) appending to one file never interleave within a line, and a
    file whose last line lacks its newline (a writer killed mid-line) gets one first.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    count = 0
    try:
        size = os.fstat(fd).st_size
        if size and _last_byte(path, size) != b"\n":
            _write_all(fd, b"\n")
        for inspection in inspections:
            _write_all(fd, (inspection_to_jsonl(inspection) + "\n").encode("utf-8"))
            count += 1
    finally:
        os.close(fd)
    return count


def iter_jsonl(path: str | Path) -> Iterator[Inspection]:
    """The inspections of a JSON-lines file, one per non-blank line, in file order.

    Raises:
        ReportError: a line is not JSON or not an inspection record (its line number is said).
    """
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield inspection_from_json(json.loads(line))
            except (json.JSONDecodeError, ReportError) as exc:
                raise ReportError(f"{path}:{number}: {exc}") from exc


def read_jsonl(path: str | Path) -> list[Inspection]:
    """Every inspection of a JSON-lines file (see ``iter_jsonl``)."""
    return list(iter_jsonl(path))


def _last_byte(path: str | Path, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(size - 1)
        return f.read(1)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _object(value: Any, keys: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ReportError(f"{what} must be a JSON object, got {type(value).__name__}")
    missing = [k for k in keys if k not in value]
    unknown = [k for k in value if k not in keys]
    if missing or unknown:
        raise ReportError(f"{what}: missing keys {missing}, unknown keys {unknown}")
    return value


def _finding(value: Any, index: int) -> Finding:
    what = f"findings[{index}]"
    obj = _object(value, _FINDING_KEYS, what)
    limit = obj["limit"]
    return Finding(
        rule=_string(obj["rule"], f"{what}.rule"),
        region=_string(obj["region"], f"{what}.region"),
        value=_number(obj["value"], f"{what}.value"),
        limit=None if limit is None else _number(limit, f"{what}.limit"),
        verdict=_verdict(obj["verdict"], f"{what}.verdict"),
        explanation=_string(obj["explanation"], f"{what}.explanation"),
        x=_optional_int(obj["x"], f"{what}.x"),
        y=_optional_int(obj["y"], f"{what}.y"),
    )


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ReportError(f"{what} must be a string, got {value!r}")
    return value


def _number(value: Any, what: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReportError(f"{what} must be a number, got {value!r}")
    return float(value)


def _optional_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReportError(f"{what} must be an integer or null, got {value!r}")
    return value


def _verdict(value: Any, what: str) -> Verdict:
    try:
        return Verdict(value)
    except ValueError:
        raise ReportError(f"{what} must be OK, WARN or NG, got {value!r}") from None
