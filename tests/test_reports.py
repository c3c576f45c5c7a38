"""Reports: overlays (pixels where expected), the batch HTML report, JSON lines round trips."""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from report_samples import (
    COLD_XY,
    HEIGHT,
    HOT_XY,
    WIDTH,
    sample_batch,
    sample_frame,
    sample_inspection,
    sample_regions,
)
from thermoscope.core import Box, Finding, Inspection, MaskRegion, Polygon, Verdict
from thermoscope.render import encode_png, render
from thermoscope.reports import (
    VERDICT_COLORS,
    ControlChart,
    ReportError,
    ReportPart,
    build_html_report,
    inspection_to_jsonl,
    read_jsonl,
    render_overlay,
    write_html_report,
    write_jsonl,
)
from thermoscope.reports.overlay import (
    UNCHECKED_COLOR,
    overlay_scale,
    region_names,
    to_overlay_pixel,
)

NG, WARN, OK = (VERDICT_COLORS[v] for v in (Verdict.NG, Verdict.WARN, Verdict.OK))


def near(image: NDArray[np.uint8], color: tuple[int, int, int], tol: int = 40) -> NDArray[np.bool_]:
    """Pixels within ``tol`` (per channel) of ``color``."""
    diff = np.abs(image.astype(np.int16) - np.array(color, dtype=np.int16))
    return np.asarray((diff <= tol).all(axis=-1))


def marker_mask(image: NDArray[np.uint8], cx: int, cy: int, color: tuple[int, int, int]) -> NDArray:
    """The ``color`` pixels in a 41x41 window centred on (cx, cy)."""
    return near(image[cy - 20 : cy + 21, cx - 20 : cx + 21], color)


def flip_iou(mask: NDArray[np.bool_]) -> float:
    """Overlap of a mask with its upside-down self (1.0: symmetric top to bottom)."""
    flipped = mask[::-1]
    return float((mask & flipped).sum() / max((mask | flipped).sum(), 1))


# --- overlays -------------------------------------------------------------------------------


@pytest.fixture
def overlay() -> NDArray[np.uint8]:
    return render_overlay(sample_frame(), sample_inspection(), sample_regions())


def test_small_frames_scale_like_render_with_its_colour_bar(overlay: NDArray[np.uint8]) -> None:
    frame = sample_frame()
    assert overlay.dtype == np.uint8
    assert overlay.shape == render(frame, colorbar=True).shape
    assert overlay_scale((HEIGHT, WIDTH)) == 3.0  # 120 rows -> 360, readable labels
    assert overlay_scale((512, 640)) == 1.0


def test_region_outlines_take_their_worst_verdicts_colour(overlay: NDArray[np.uint8]) -> None:
    k = 3
    # middle of each box's left edge: hot (NG finding), cold (OK finding), plain (no finding)
    assert near(overlay[(30 + 10) * k, 20 * k], NG)
    assert near(overlay[(60 + 15) * k, 100 * k], OK)
    assert near(overlay[(90 + 10) * k, 60 * k], UNCHECKED_COLOR, tol=10)
    # inside the boxes, away from edges, labels and markers: the thermogram is untouched
    base = render(sample_frame())
    assert (overlay[45 * k, 25 * k] == base[45, 25]).all()


def test_hot_spot_gets_a_crosshair_and_cold_spot_a_triangle(overlay: NDArray[np.uint8]) -> None:
    hx, hy = to_overlay_pixel(*HOT_XY, 3.0)
    cx, cy = to_overlay_pixel(*COLD_XY, 3.0)
    assert (hx, hy) == (HOT_XY[0] * 3 + 1, HOT_XY[1] * 3 + 1)
    hot = marker_mask(overlay, hx, hy, NG)
    cold = marker_mask(overlay, cx, cy, OK)
    assert hot.sum() > 30
    assert cold.sum() > 30
    assert flip_iou(hot) > 0.8  # a crosshair looks the same upside down
    assert flip_iou(cold) < 0.5  # a downward triangle does not
    # the extreme pixel itself stays visible in the middle of the crosshair
    base = render(sample_frame())
    assert (overlay[hy, hx] == base[HOT_XY[1], HOT_XY[0]]).all()


def test_markers_carry_a_value_label(overlay: NDArray[np.uint8]) -> None:
    # the label is a dark box with white text beside the marker ("5.0 °C"); the only white
    # near the cold spot, which the palette paints black
    cx, cy = to_overlay_pixel(*COLD_XY, 3.0)
    window = overlay[cy - 45 : cy + 45, cx - 110 : cx + 110]
    # OpenCV 4.x draws thinner glyphs than 5.x: a few white pixels prove the label is there
    assert near(window, (255, 255, 255), tol=30).sum() > 8
    plain = render_overlay(sample_frame(), None, sample_regions())
    assert near(plain[cy - 45 : cy + 45, cx - 110 : cx + 110], (255, 255, 255), tol=30).sum() == 0


def test_width_maps_every_coordinate_through_the_same_scale() -> None:
    out = render_overlay(
        sample_frame(), sample_inspection(), sample_regions(), width=240, colorbar=False
    )
    assert out.shape == (180, 240, 3)
    hx, hy = to_overlay_pixel(*HOT_XY, 1.5)
    assert marker_mask(out, hx, hy, NG).sum() > 10
    assert near(out[60 : 60 + 15, 30], NG).any()  # left edge of "hot", x = 20 * 1.5


def test_large_frames_are_drawn_at_their_own_size() -> None:
    celsius = np.full((512, 640), 30.0, dtype=np.float32)
    celsius[200, 300] = 95.0
    finding = Finding("max", "board", 95.0, 90.0, Verdict.WARN, "max 95 °C", x=300, y=200)
    inspection = Inspection.of("big", None, [finding])
    out = render_overlay(celsius, inspection, {"board": Box(100, 100, 400, 300)}, colorbar=False)
    assert out.shape == (512, 640, 3)
    assert near(out[300, 100], WARN)
    assert marker_mask(out, 300, 200, WARN).sum() > 30


def test_polygon_mask_and_pair_regions() -> None:
    regions = {
        "left-pad": Polygon(((10, 10), (40, 10), (25, 40))),
        "right": MaskRegion(np.pad(np.ones((20, 20), bool), ((10, 90), (100, 40)))),
    }
    finding = Finding("asym", "left-pad-right", 9.0, 5.0, Verdict.NG, "asymmetry 9 °C")
    out = render_overlay(sample_frame(), Inspection.of("p", 0, [finding]), regions)
    assert region_names("left-pad-right", regions) == ("left-pad", "right")
    assert region_names("left-pad", regions) == ("left-pad",)
    assert region_names("", regions) == ()
    assert near(out[10 * 3 + 1 : 10 * 3 + 3, 25 * 3], NG).any()  # top edge of the triangle
    assert near(out[20 * 3, 100 * 3], NG)  # left edge of the mask


def test_regions_only_and_findings_off_the_frame() -> None:
    stray = Finding("max", "hot", 1.0, 0.0, Verdict.NG, "off", x=WIDTH + 5, y=3)
    plain = render_overlay(sample_frame(), None, sample_regions(), colorbar=False)
    off = render_overlay(
        sample_frame(), Inspection.of("p", 0, [stray]), sample_regions(), colorbar=False
    )
    assert near(plain[40 * 3, 20 * 3], UNCHECKED_COLOR, tol=10)
    assert near(off[40 * 3, 20 * 3], NG)  # outlined, not marked


def test_overlay_leaves_its_input_alone() -> None:
    frame = sample_frame()
    before = frame.celsius.copy()
    render_overlay(frame.celsius, sample_inspection(), sample_regions())
    assert np.array_equal(frame.celsius, before)


# --- HTML report ----------------------------------------------------------------------------


def row_verdicts(document: str) -> list[str]:
    return re.findall(r'<tr class="part [a-z]+" data-verdict="(OK|WARN|NG)"', document)


def test_report_lists_ng_first_then_warn_then_ok_in_run_order() -> None:
    parts = sample_batch(12)
    document = build_html_report(parts, title="Batch")
    verdicts = row_verdicts(document)
    assert len(verdicts) == 12
    severity = [("OK", "WARN", "NG").index(v) for v in verdicts]
    assert severity == sorted(severity, reverse=True)
    assert verdicts[0] == "NG"
    sources = re.findall(r'data-source="([^"]+)"', document)
    ng = [p.source for p in parts if p.inspection.verdict is Verdict.NG]
    assert sources[: len(ng)] == ng


def test_report_summary_counts_and_yield() -> None:
    parts = sample_batch(12)
    document = build_html_report(parts, title="Batch")
    counts = {v: sum(p.inspection.verdict is v for p in parts) for v in Verdict}
    for verdict, count in counts.items():
        pattern = rf'class="card stat {verdict.value.lower()}">.*?<div class="value">(\d+)</div>'
        assert int(re.search(pattern, document).group(1)) == count
    not_ng = (counts[Verdict.OK] + counts[Verdict.WARN]) / len(parts)
    assert f"{100 * not_ng:.1f} %" in document


def test_report_escapes_every_text_it_shows() -> None:
    evil = '<script>alert("x")</script>'
    finding = Finding(evil, evil, 90.0, 80.0, Verdict.NG, f"explained {evil}", x=1, y=1)
    part = ReportPart(Inspection.of(evil, 0, [finding]), celsius=sample_frame(), regions={})
    chart = ControlChart(evil, values=[1.0, 2.0, 3.0], unit=evil)
    document = build_html_report(
        [part], title=evil, meta={evil: evil}, control_charts=[chart], rule_series={}
    )
    assert "<script>alert" not in document
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in document
    assert document.count("<script>") == 1  # the report's own filter and sort code


def test_report_is_self_contained_with_embedded_pngs() -> None:
    document = build_html_report(sample_batch(12), title="Batch")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', document)
    assert images
    assert all(base64.b64decode(i).startswith(b"\x89PNG\r\n\x1a\n") for i in images)
    assert not re.search(r'(src|href)="(https?:)?//', document)
    assert "<link" not in document
    assert "@import" not in document


def test_thumbnails_go_to_flagged_parts_and_a_sample_of_ok_parts() -> None:
    parts = sample_batch(40)
    flagged = sum(p.inspection.verdict is not Verdict.OK for p in parts)
    document = build_html_report(parts, title="Batch", ok_thumbnails=3)
    assert document.count('<img class="overlay"') == flagged + 3
    capped = build_html_report(parts, title="Batch", ok_thumbnails=0, max_thumbnails=2)
    rows = re.findall(r'<tr class="part (\w+)".*?</tr>', capped, re.S)
    with_image = [r for r in re.findall(r'<tr class="part (\w+)"(.*?)</tr>', capped, re.S)]
    assert len(rows) == 40
    assert [v for v, body in with_image if "<img" in body] == ["ng", "ng"]


def test_thumbnails_are_chosen_among_parts_that_bring_an_image() -> None:
    # a caller that kept the frames of the first two OK parts only (to save memory)
    parts = sample_batch(20)
    kept = [p.inspection.verdict is not Verdict.OK for p in parts]
    for i in [i for i, p in enumerate(parts) if p.inspection.verdict is Verdict.OK][:2]:
        kept[i] = True
    lean = [p if keep else replace(p, celsius=None) for p, keep in zip(parts, kept, strict=True)]
    document = build_html_report(lean, title="Batch", ok_thumbnails=5)
    assert document.count('<img class="overlay"') == sum(kept)


def test_rendered_thumbnails_are_at_most_the_thumbnail_width() -> None:
    document = build_html_report(sample_batch(5), title="Batch", thumbnail_width=200)
    widths = [int(w) for w in re.findall(r'<img class="overlay"[^>]* width="(\d+)"', document)]
    assert widths
    assert all(w == 200 for w in widths)


def test_given_overlay_pngs_are_used_as_they_are() -> None:
    png = encode_png(np.zeros((30, 500, 3), dtype=np.uint8))
    part = ReportPart(sample_inspection(), overlay_png=png)
    document = build_html_report([part], title="Batch")
    assert base64.b64encode(png).decode() in document
    assert 'width="240" height="14"' in document  # shown at most 240 px wide
    with pytest.raises(ReportError, match="not a PNG"):
        build_html_report([ReportPart(sample_inspection(), overlay_png=b"GIF89a")], title="x")


def test_findings_are_listed_with_value_limit_verdict_and_explanation() -> None:
    document = build_html_report([ReportPart(sample_inspection())], title="Batch")
    assert "hot max 90.0 °C is 10.0 °C over its 80 °C limit" in document
    assert '<td class="num">90.0 °C</td><td class="num">80.0 °C</td>' in document
    assert "1 rule OK" in document  # the OK finding, folded away
    assert '<span class="no-image">' in document  # no frame, no PNG: no thumbnail


def test_rule_histograms_draw_their_limits() -> None:
    document = build_html_report(sample_batch(12), title="Batch")
    histograms = re.findall(r'<svg class="histogram".*?</svg>', document, re.S)
    assert len(histograms) == 2  # "hot max" and "cold min"
    hot = next(h for h in histograms if 'class="bar ng"' in h)
    assert re.search(r'<line class="limit ng"[^>]*><title>limit 80 °C</title>', hot)
    assert 'class="bar warn"' in hot
    assert 'class="bar ok"' in hot


def test_limit_lines_tell_ng_limits_from_warning_limits() -> None:
    # margin is the distance to the NG limit (38): a limit that far away is the NG limit
    findings = [
        Finding("rise", "Q1", 36.0, 35.0, Verdict.WARN, "over 35 warning", margin=2.0),
        Finding("rise", "Q1", 39.0, 38.0, Verdict.NG, "over 38", margin=-1.0),
        Finding("rise", "Q1", 30.0, 38.0, Verdict.OK, "inside", margin=8.0),
    ]
    parts = [ReportPart(Inspection.of(f"p{i}", None, [f])) for i, f in enumerate(findings)]
    document = build_html_report(parts, title="Batch")
    assert re.search(r'<line class="limit warn"[^>]*><title>limit 35 °C</title>', document)
    assert re.search(r'<line class="limit ng"[^>]*><title>limit 38 °C</title>', document)
    assert 'data-sort="frame"' not in document  # no part has a frame index


def test_rule_series_replace_the_parts_values() -> None:
    series = {"hot max": np.linspace(60.0, 85.0, 500), "cycle time": [1.0, 2.0, 2.0]}
    document = build_html_report(sample_batch(4), title="Batch", rule_series=series)
    assert "n 500 · " in document
    assert ">cycle time<" in document
    assert document.count('<svg class="histogram"') == 3


def test_control_charts_show_values_statistic_limits_and_alarms() -> None:
    values = np.r_[np.zeros(20), np.linspace(0.0, 3.0, 20)]
    chart = ControlChart(
        "Q1 max drift",
        values=values,
        statistic=values * 0.8,
        lower=-1.0,
        upper=np.full(40, 1.0),
        alarms=[30, 35],
        center=0.0,
    )
    document = build_html_report(sample_batch(4), title="Batch", control_charts=[chart])
    svg = re.search(r'<svg class="control-chart".*?</svg>', document, re.S).group(0)
    assert svg.count('<polyline class="limit-line"') == 2
    assert '<polyline class="statistic"' in svg
    assert '<polyline class="values"' in svg
    assert svg.count('<circle class="alarm" cx=') == 3  # two alarms and the legend's
    assert "2 alarms, first at part 30" in svg
    assert 'href="#charts"' in document


def test_control_chart_of_a_history_with_part_numbers() -> None:
    # a drift watch's history: the last parts of a run, one skipped (an NG part), and an alarm
    # older than what is shown
    parts = np.r_[100:110, 111:121]
    values = np.linspace(0.0, 2.0, parts.size)
    chart = ControlChart(
        "Q1 rise", values=values, statistic=values, upper=1.0, alarms=[42, 115], parts=parts
    )
    document = build_html_report([], title="Run", control_charts=[chart])
    svg = re.search(r'<svg class="control-chart".*?</svg>', document, re.S).group(0)
    assert "1 alarm, first at part 115" in svg
    assert ">alarm at part 115: " in svg
    assert ">100<" in svg  # the x axis counts parts from the first one shown


def test_control_chart_input_is_checked() -> None:
    with pytest.raises(ReportError, match="statistic"):
        ControlChart("c", values=[1.0, 2.0], statistic=[1.0])
    with pytest.raises(ReportError, match="parts must increase"):
        ControlChart("c", values=[1.0, 2.0], parts=[5, 5])
    chart = ControlChart("c", values=[1.0, math.nan, 3.0], upper=2.5)
    assert np.array_equal(np.asarray(chart.upper), [2.5, 2.5, 2.5])


def test_a_thousand_parts_make_a_report_of_a_few_megabytes(tmp_path: Path) -> None:
    parts = sample_batch(1000)
    out = write_html_report(tmp_path / "run.html", parts, title="Run", ok_thumbnails=10)
    document = out.read_text(encoding="utf-8")
    flagged = sum(p.inspection.verdict is not Verdict.OK for p in parts)
    assert document.count('<img class="overlay"') == min(flagged, 100) + 10
    assert len(row_verdicts(document)) == 1000
    assert out.stat().st_size < 12_000_000


def test_report_options_are_checked() -> None:
    with pytest.raises(ReportError, match="thumbnail"):
        build_html_report([], title="x", ok_thumbnails=-1)
    document = build_html_report([], title="Empty")
    assert "No findings." in document


# --- JSON lines -----------------------------------------------------------------------------

FINDING_KEYS = [
    "rule", "region", "value", "limit", "verdict", "x", "y", "explanation",
    "margin", "unit", "score", "extra",
]  # fmt: skip


def test_jsonl_line_is_exactly_the_inspections_json() -> None:
    inspection = sample_inspection()
    line = inspection_to_jsonl(inspection)
    assert "\n" not in line
    record = json.loads(line)
    assert record == inspection.to_json()
    assert list(record) == ["source", "frame", "verdict", "findings"]
    assert [list(f) for f in record["findings"]] == [FINDING_KEYS, FINDING_KEYS]
    assert "°C" in line  # UTF-8, not \u00b0 escapes


def test_jsonl_round_trip_and_append(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    first = [sample_inspection(f"p{i}", i) for i in range(3)]
    second = [sample_inspection("whole-file", None, hot_verdict=Verdict.WARN)]
    assert write_jsonl(path, first) == 3
    assert write_jsonl(path, iter(second)) == 1
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert text.count("\n") == 4
    back = read_jsonl(path)
    assert [b.to_json() for b in back] == [i.to_json() for i in first + second]
    assert back[3].verdict is Verdict.WARN
    assert back[3].frame is None


def test_jsonl_append_after_a_torn_line_starts_a_new_one(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text(inspection_to_jsonl(sample_inspection("a", 0)), encoding="utf-8")
    write_jsonl(path, [sample_inspection("b", 1)])
    assert [i.source for i in read_jsonl(path)] == ["a", "b"]


def test_jsonl_non_finite_values_become_null(tmp_path: Path) -> None:
    finding = Finding("mean", "r", math.nan, None, Verdict.NG, "no valid pixel")
    path = tmp_path / "nan.jsonl"
    write_jsonl(path, [Inspection.of("p", 0, [finding])])
    assert json.loads(path.read_text(encoding="utf-8"))["findings"][0]["value"] is None
    assert math.isnan(read_jsonl(path)[0].findings[0].value)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"run\.jsonl:2:"),
        ('{"source": "p", "frame": 0, "verdict": "OK"}', "missing keys \\['findings'\\]"),
        ('{"source": "p", "frame": 0, "verdict": "BAD", "findings": []}', "OK, WARN or NG"),
        ('{"source": 1, "frame": 0, "verdict": "OK", "findings": []}', "source must be"),
        ('{"source": "p", "frame": 0, "verdict": "OK", "findings": [{}], "x": 1}', "unknown"),
    ],
)
def test_jsonl_bad_lines_are_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text(inspection_to_jsonl(sample_inspection()) + "\n" + line + "\n", "utf-8")
    with pytest.raises(ReportError, match=message):
        read_jsonl(path)
