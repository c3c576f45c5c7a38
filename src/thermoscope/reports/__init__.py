"""Reports of inspections: overlays on thermograms, batch HTML reports and JSON lines.

- ``render_overlay``: a part's thermogram with its regions, findings and hot/cold spots.
- ``write_html_report`` / ``build_html_report``: one self-contained HTML file for a batch.
- ``write_jsonl`` / ``read_jsonl``: one JSON object per part for machines.
"""

from thermoscope.reports.charts import ControlChart
from thermoscope.reports.errors import ReportError
from thermoscope.reports.html import ReportPart, build_html_report, write_html_report
from thermoscope.reports.jsonl import (
    inspection_from_json,
    inspection_to_jsonl,
    iter_jsonl,
    read_jsonl,
    write_jsonl,
)
from thermoscope.reports.overlay import VERDICT_COLORS, render_overlay

__all__ = [
    "VERDICT_COLORS",
    "ControlChart",
    "ReportError",
    "ReportPart",
    "build_html_report",
    "inspection_from_json",
    "inspection_to_jsonl",
    "iter_jsonl",
    "read_jsonl",
    "render_overlay",
    "write_html_report",
    "write_jsonl",
]
