"""JSON lines for machines: one inspected part per line, exactly ``Inspection.to_json()``.

Each line is core's lossless inspection contract (``thermoscope.core.findings``): ``{"source",
"frame", "verdict": "OK"|"WARN"|"NG", "findings": [{"rule", "region", "value", "limit",
"verdict", "x", "y", "explanation", "margin", "unit", "score", "extra"}]}``, UTF-8, no ASCII
escaping ("°C" stays readable). A value that is not a finite number (NaN, ±inf: JSON has none)
is ``null`` and is read back as NaN; lines written before the contract had ``margin``,
``unit``, ``score`` and ``extra`` are read with their defaults.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from thermoscope.core import ContractError, Inspection
from thermoscope.reports.errors import ReportError


def inspection_to_jsonl(inspection: Inspection) -> str:
    """The part's JSON-lines record: one line of JSON, without the trailing newline."""
    record = inspection.to_json()
    return json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def inspection_from_json(record: Any) -> Inspection:
    """An ``Inspection`` from a decoded JSON-lines record (``Inspection.from_json``).

    Raises:
        ReportError: a key is missing or unknown, or a value has the wrong type.
    """
    try:
        return Inspection.from_json(record, what="record")
    except ContractError as exc:
        raise ReportError(str(exc)) from None


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
