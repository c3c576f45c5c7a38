"""The status page: latency percentiles and throughput from a controlled clock; the JSON
document, the HTML page and the Prometheus metrics served over real HTTP with a real outbox's
depth; every JSON field and metric is documented in docs/edge.md."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from thermoscope.edge import EdgeError
from thermoscope.edge.outbox import Kind, Outbox, Record
from thermoscope.edge.status import EdgeMetrics, StatusServer, percentile

DOCS = Path(__file__).resolve().parents[2] / "docs" / "edge.md"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, q) for q in (0, 50, 90, 99, 100)] == [1.0, 50.0, 90.0, 99.0, 100.0]
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0


def test_metrics_give_latency_percentiles_throughput_and_recent_verdicts() -> None:
    clock = Clock()
    metrics = EdgeMetrics("agent-1", clock=clock)
    for i in range(1, 101):
        clock.now += 0.5
        metrics.observe(f"p{i}", "NG" if i % 10 == 0 else "OK", float(i), ts=f"t{i}")
    metrics.set_versions(model="lite0", model_version="1.2.0", recipe="pcb", recipe_checksum=7)
    metrics.set_link("mqtt", True)
    doc = metrics.snapshot()
    assert doc["parts"] == 100
    assert doc["verdicts"] == {"OK": 90, "NG": 10}
    assert doc["latency_ms"] == {"p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0, "window": 100}
    assert doc["throughput_per_s"] == 2.0  # 120 parts a minute: the last 60 s hold 120 / 2
    assert [r["part"] for r in doc["recent"][:3]] == ["p100", "p99", "p98"]
    assert doc["versions"]["recipe_checksum"] == "7"
    assert doc["outbox"] is None
    with pytest.raises(EdgeError, match="latency"):
        metrics.observe("p", "OK", float("nan"))
    with pytest.raises(EdgeError, match="unknown version"):
        metrics.set_versions(colour="red")


def test_the_page_json_and_metrics_are_served(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
        box.record([Record(Kind.RESULT, "k1", {"part": 1}, ("mqtt", "server"))])
        metrics = EdgeMetrics("<line 2>", depth=box.depth)
        metrics.observe("p1", "NG", 4.5)
        metrics.set_link("server", False)
        server = StatusServer(metrics)
        server.start()
        try:
            base = f"http://127.0.0.1:{server.port}"
            doc = httpx.get(f"{base}/status.json").json()
            page = httpx.get(f"{base}/")
            prom = httpx.get(f"{base}/metrics")
            missing = httpx.get(f"{base}/nothing")
        finally:
            server.stop()
    assert doc["outbox"]["pending"] == {"mqtt": 1, "server": 1}
    assert doc["links"] == {"server": False}
    assert page.headers["content-type"].startswith("text/html")
    assert "&lt;line 2&gt;" in page.text
    assert "<line 2>" not in page.text
    assert "DOWN" in page.text
    assert ">NG<" in page.text
    families = {f.name: f for f in text_string_to_metric_families(prom.text)}
    pending = {
        s.labels["sink"]: s.value for s in families["thermoscope_edge_outbox_pending"].samples
    }
    assert pending == {"mqtt": 1.0, "server": 1.0}
    parts = families["thermoscope_edge_parts"].samples
    assert [(s.labels, s.value) for s in parts if s.name.endswith("_total")] == [
        ({"verdict": "NG"}, 1.0)
    ]
    assert families["thermoscope_edge_link_up"].samples[0].value == 0.0
    assert missing.status_code == 404


def test_a_taken_port_is_an_edge_error() -> None:
    first = StatusServer(EdgeMetrics("a"))
    first.start()
    try:
        with pytest.raises(EdgeError, match="status page"):
            StatusServer(EdgeMetrics("b"), port=first.port).start()
    finally:
        first.stop()


def test_every_json_field_and_metric_is_documented(tmp_path: Path) -> None:
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(r"^## Status and metrics\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, "docs/edge.md has no '## Status and metrics' section"
    section = match.group(1)
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
        metrics = EdgeMetrics("a", depth=box.depth)
        metrics.observe("p1", "OK", 1.0)
        metrics.set_link("plc", True)
        doc = metrics.snapshot()
        names = {f.name for f in text_string_to_metric_families(metrics.prometheus().decode())}
    keys = {*doc, *doc["latency_ms"], *doc["recent"][0], *doc["versions"], *doc["outbox"]}
    for key in sorted(keys):
        assert f"`{key}`" in section, f"JSON field {key} is not documented"
    for name in sorted(n for n in names if not n.endswith("_created")):
        assert f"`{name}" in section, f"metric {name} is not documented"
    for path in ("/", "/status.json", "/metrics"):
        assert f"`{path}`" in section
