"""The agent's status: metrics kept as parts go by, served locally as a JSON document, a small
HTML page and Prometheus metrics.

``EdgeMetrics`` is fed by the agent loop (``observe`` per part, ``set_versions`` when the model
or recipe changes, ``set_link`` when the PLC, broker or server comes or goes) and reads the
outbox's depth when asked. ``StatusServer`` serves it with the standard library's HTTP server on
a thread (loopback by default):

- ``GET /`` the HTML page (refreshes itself every 2 s; no script);
- ``GET /status.json`` the JSON document (``EdgeMetrics.snapshot``);
- ``GET /metrics`` Prometheus text format, from the metrics' own ``CollectorRegistry`` (nothing
  global, so several agents or tests in one process do not collide).

docs/edge.md ("Status and metrics") lists every JSON field and metric.
"""

from __future__ import annotations

import html
import json
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from thermoscope.edge import EdgeError
from thermoscope.edge.outbox import Depth

#: Latencies kept for the percentiles (the most recent parts).
LATENCY_WINDOW = 2048
#: The window of the throughput figure (s).
THROUGHPUT_WINDOW_S = 60.0
#: Recent verdicts shown.
RECENT = 20
#: Histogram buckets of the part latency (s): 1 ms to 1 s.
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of ascending values, nearest rank; ``None`` if empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class EdgeMetrics:
    """What the status page shows (thread-safe; see the module docstring).

    Args:
        agent: the agent's name.
        depth: reads the outbox's depth (``Outbox.depth``), or ``None``.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        agent: str,
        *,
        depth: Callable[[], Depth] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.agent = agent
        self._depth = depth
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._times: deque[float] = deque()
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self._verdicts: Counter[str] = Counter()
        self._versions: dict[str, str] = {
            "model": "",
            "model_version": "",
            "recipe": "",
            "recipe_checksum": "",
        }
        self._links: dict[str, bool] = {}
        self._updates: dict[str, Any] | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        self._parts = PromCounter(
            "thermoscope_edge_parts",
            "Parts decided, by verdict.",
            ["verdict"],
            registry=self.registry,
        )
        self._latency = PromHistogram(
            "thermoscope_edge_part_latency_seconds",
            "Frame in to verdict out, per part (s).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Live(self))

    def observe(self, part: str, verdict: str, latency_ms: float, *, ts: str = "") -> None:
        """Count one decided part (``latency_ms``: frame in to verdict out, ms)."""
        if not math.isfinite(latency_ms) or latency_ms < 0:
            raise EdgeError(f"part {part}: latency must be a finite number of ms >= 0")
        moment = self._clock()
        with self._lock:
            self._latencies.append(latency_ms)
            self._times.append(moment)
            self._verdicts[verdict] += 1
            self._recent.appendleft(
                {"part": part, "verdict": verdict, "latency_ms": round(latency_ms, 3), "ts": ts}
            )
        self._parts.labels(verdict=verdict).inc()
        self._latency.observe(latency_ms / 1000.0)

    def set_versions(self, **versions: str | int) -> None:
        """Set ``model``, ``model_version``, ``recipe`` or ``recipe_checksum``."""
        unknown = set(versions) - set(self._versions)
        if unknown:
            raise EdgeError(f"unknown version field(s): {', '.join(sorted(unknown))}")
        with self._lock:
            self._versions.update({k: str(v) for k, v in versions.items()})

    def set_updates(self, updates: Mapping[str, Any]) -> None:
        """Set the model updater's state (``ModelUpdater.snapshot``; JSON-ready)."""
        with self._lock:
            self._updates = dict(updates)

    def set_link(self, name: str, up: bool) -> None:
        """Record whether a link (``plc``, ``mqtt``, ``server``, ``webhook``) is up."""
        with self._lock:
            self._links[name] = up

    def snapshot(self) -> dict[str, Any]:
        """The JSON document of ``/status.json`` (see docs/edge.md)."""
        now = self._clock()
        with self._lock:
            while self._times and self._times[0] < now - THROUGHPUT_WINDOW_S:
                self._times.popleft()
            latencies = sorted(self._latencies)
            window = min(THROUGHPUT_WINDOW_S, max(now - self._started, 1e-9))
            doc: dict[str, Any] = {
                "agent": self.agent,
                "uptime_s": round(now - self._started, 3),
                "parts": sum(self._verdicts.values()),
                "verdicts": dict(self._verdicts),
                "throughput_per_s": round(len(self._times) / window, 3),
                "latency_ms": {f"p{q}": percentile(latencies, q) for q in (50, 90, 99)}
                | {"max": latencies[-1] if latencies else None, "window": len(latencies)},
                "recent": list(self._recent),
                "versions": dict(self._versions),
                "links": dict(self._links),
                "updates": self._updates,
            }
        doc["outbox"] = None if self._depth is None else asdict(self._depth())
        return doc

    def prometheus(self) -> bytes:
        """The Prometheus text exposition of the registry."""
        return generate_latest(self.registry)


class _Live(Collector):
    """Gauges read when scraped: outbox depth, disk policy counters, links, versions."""

    def __init__(self, metrics: EdgeMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        doc = self.metrics.snapshot()
        info = InfoMetricFamily("thermoscope_edge_build", "Active model and recipe.")
        info.add_metric([], doc["versions"])
        yield info
        links = GaugeMetricFamily(
            "thermoscope_edge_link_up", "Whether a link is up (1) or down (0).", labels=["link"]
        )
        for name, up in sorted(doc["links"].items()):
            links.add_metric([name], 1.0 if up else 0.0)
        yield links
        latency = GaugeMetricFamily(
            "thermoscope_edge_latency_ms",
            "Latency percentiles over the recent parts (ms).",
            labels=["quantile"],
        )
        for key, value in doc["latency_ms"].items():
            if key.startswith("p") and value is not None:
                latency.add_metric([key], float(value))
        yield latency
        outbox: Mapping[str, Any] | None = doc["outbox"]
        if outbox is None:
            return
        for name, text, field in (
            ("thermoscope_edge_outbox_pending", "Entries waiting, per sink.", "pending"),
            ("thermoscope_edge_outbox_rejected", "Entries refused for good, per sink.", "rejected"),
        ):
            family = GaugeMetricFamily(name, text, labels=["sink"])
            for sink, count in sorted(outbox[field].items()):
                family.add_metric([sink], float(count))
            yield family
        for name, text, field in (
            ("thermoscope_edge_outbox_file_bytes", "Bytes of frame files held.", "file_bytes"),
            ("thermoscope_edge_outbox_max_bytes", "Budget of frame files (bytes).", "max_bytes"),
            ("thermoscope_edge_outbox_disk_full", "1 while a kept frame was refused.", "disk_full"),
            ("thermoscope_edge_outbox_evicted_samples", "OK samples evicted.", "evicted_samples"),
            (
                "thermoscope_edge_outbox_dropped_samples",
                "OK samples not stored.",
                "dropped_samples",
            ),
            (
                "thermoscope_edge_outbox_refused_frames",
                "NG/alarm frames refused.",
                "refused_frames",
            ),
        ):
            yield GaugeMetricFamily(name, text, value=float(outbox[field]))


def render_html(doc: Mapping[str, Any]) -> str:
    """The status page for a snapshot (self-contained, escaped, refreshes every 2 s)."""

    def cell(value: Any) -> str:
        return html.escape("—" if value is None or value == "" else str(value))

    outbox = doc.get("outbox") or {}
    latency = doc["latency_ms"]
    rows = [
        ("parts", doc["parts"]),
        ("throughput (parts/s, last minute)", doc["throughput_per_s"]),
        ("latency p50 / p90 / p99 (ms)", f"{latency['p50']} / {latency['p90']} / {latency['p99']}"),
        *((k, v) for k, v in doc["versions"].items()),
        *((f"link {k}", "up" if v else "DOWN") for k, v in doc["links"].items()),
        *((f"waiting for {k}", v) for k, v in outbox.get("pending", {}).items()),
        *((f"refused by {k}", v) for k, v in outbox.get("rejected", {}).items()),
    ]
    updates = doc.get("updates")
    if updates:
        current = updates["current"] or {}
        rows.append(("model update", f"{updates['state']} (v{current.get('version', '—')})"))
        for event in updates["events"][:3]:
            detail = event.get("reason") or event.get("version", "")
            rows.append((f"update {event['step']} ({event['ts']})", detail))
    if outbox:
        rows.append(("frame files (bytes)", f"{outbox['file_bytes']} of {outbox['max_bytes']}"))
        rows.append(("disk", "DISK FULL" if outbox["disk_full"] else "ok"))
    table = "".join(f"<tr><th>{cell(k)}</th><td>{cell(v)}</td></tr>" for k, v in rows)
    recent = "".join(
        f"<tr><td>{cell(r['part'])}</td><td class='{cell(r['verdict'])}'>{cell(r['verdict'])}"
        f"</td><td>{cell(r['latency_ms'])}</td><td>{cell(r['ts'])}</td></tr>"
        for r in doc["recent"]
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='refresh' content='2'>"
        f"<title>{cell(doc['agent'])}: thermoscope edge</title><style>"
        "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin:1em 0}"
        "th,td{border:1px solid #ccc;padding:.2em .6em;text-align:left}"
        ".NG{background:#f8c0c0}.WARN{background:#f8e8a0}.OK{background:#c8f0c8}"
        f"</style></head><body><h1>{cell(doc['agent'])}</h1><table>{table}</table>"
        "<h2>Last verdicts</h2><table><tr><th>part</th><th>verdict</th><th>ms</th><th>time</th>"
        f"</tr>{recent}</table><p><a href='/status.json'>status.json</a> · "
        "<a href='/metrics'>metrics</a></p></body></html>"
    )


class StatusServer:
    """Serves ``EdgeMetrics`` over HTTP on a thread (see the module docstring).

    Args:
        metrics: what to serve.
        host: the address to listen on (loopback by default: a local page).
        port: the port (0: any free one; ``port`` tells which after ``start``).
    """

    def __init__(self, metrics: EdgeMetrics, host: str = "127.0.0.1", port: int = 0) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        """Listen and serve on a daemon thread.

        Raises:
            EdgeError: the address cannot be bound.
        """
        metrics = self.metrics

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/":
                    self._send("text/html; charset=utf-8", render_html(metrics.snapshot()).encode())
                elif path == "/status.json":
                    body = json.dumps(metrics.snapshot(), allow_nan=False).encode()
                    self._send("application/json", body)
                elif path == "/metrics":
                    self._send(CONTENT_TYPE_LATEST, metrics.prometheus())
                else:
                    self._send("text/plain; charset=utf-8", b"not found\n", 404)

            def _send(self, kind: str, body: bytes, code: int = 200) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # requests are not worth a log line each

        try:
            self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        except OSError as exc:
            raise EdgeError(f"status page {self.host}:{self.port}: {exc.strerror}") from None
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, name="status", daemon=True).start()

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
