"""Forecast accuracy at the first drift alarm, on seeded synthetic runs (the issue's done-when).

Three stations of the synthetic line wear: the pcb's U1 heat sink loses contact, the battery's
coolant pump fails, the seal's jaw heater weakens. Every run's wear rate is the station's
nominal rate times ``exp(N(0, RATE_SPREAD))`` and starts at a random part in [150, 300). A
:class:`~thermoscope.recipes.maintenance.MaintenanceWatch` watches every inspected part; at the
first drift alarm its forecast of the crossing is compared with the actual crossing: the first
part at which the centred 21-part moving average of the alarmed value passes its NG limit. A
forecast is *within 20 %* when ``|forecast - actual| <= 0.2 * (actual - alarm part)``.

Two forecasters run side by side on the same parts: with the station's wear signature (the drift
rates of ``--past`` earlier runs of the same station, learnt from their own alarmed series) and
from the run's data alone (the peer). Drift-free runs give the false-forecast rate: the share of
runs in which any forecast alert is raised.

Run: ``python benchmarks/eval_forecast.py [--runs 51] [--free 30] [--past 4]``.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from thermoscope.analysis.forecast import WearSignature, learn_wear_signature
from thermoscope.datasets.synthetic import Drift, simulate_run
from thermoscope.recipes import compile_recipe, inspect, load_recipe
from thermoscope.recipes.maintenance import ForecastAlert, MaintenanceWatch, rule_limits

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: station: (drift target, nominal rate °C/part)
STATIONS = {"pcb": ("U1", 0.012), "battery": ("cooling", 0.012), "seal": ("seal", -0.03)}
RATE_SPREAD = 0.15
SMOOTH = 21
BASELINE = 100
MAX_PARTS = 3000


@dataclass
class Outcome:
    """One drift run: the alarm, the forecasts made at it and the actual crossing."""

    station: str
    alarm: int | None
    actual: int | None
    with_signature: float
    data_only: float
    covered: bool
    forecast_ms: float


def _crossing(values: list[float], limit: float, up: bool) -> int | None:
    """The first part where the centred moving average passes the limit (None: not yet)."""
    if len(values) < SMOOTH:
        return None
    half = SMOOTH // 2
    mean = np.convolve(np.asarray(values), np.ones(SMOOTH) / SMOOTH, mode="valid")
    beyond = np.flatnonzero(mean > limit if up else mean < limit)
    return int(beyond[0]) + half if beyond.size else None


def _run(
    station: str, seed: int, drift: bool, signatures: dict[tuple[str, str], WearSignature]
) -> tuple[Outcome, dict[tuple[str, str], list[float]], set[tuple[str, str]]]:
    target, nominal = STATIONS[station]
    rng = np.random.default_rng(seed)
    rate = nominal * math.exp(rng.normal(0.0, RATE_SPREAD))
    start = int(rng.integers(150, 300))
    recipe = load_recipe(EXAMPLES / f"{station}.yaml")
    plan = compile_recipe(recipe)
    limits = rule_limits(recipe)
    rate_h = 3600.0 / 20.0  # a part every 20 s
    informed = MaintenanceWatch(
        limits, station=station, signatures=signatures, parts_per_hour=rate_h
    )
    alone = MaintenanceWatch(limits, station=station, parts_per_hour=rate_h)
    series: dict[tuple[str, str], list[float]] = {}
    first: dict[str, ForecastAlert] = {}
    spent = 0.0
    outcome = Outcome(station, None, None, math.nan, math.nan, False, math.nan)
    parts = MAX_PARTS if drift else 800
    run = simulate_run(
        station,
        parts=parts,
        defect_rate=0.0,
        rng=np.random.default_rng(seed + 1),
        drift=Drift(target, rate, start) if drift else None,
    )
    for part in run:
        inspection = inspect(part.frame, plan, source=part.serial)
        for finding in inspection.findings:
            series.setdefault((finding.rule, finding.region), []).append(finding.value)
        for name, watch in (("informed", informed), ("alone", alone)):
            began = time.perf_counter()
            alerts = watch.update(inspection, ambient=part.ambient_c)
            spent += time.perf_counter() - began if alerts else 0.0
            for raised in alerts:
                if isinstance(raised, ForecastAlert) and name not in first:
                    first[name] = raised
        if not drift:
            continue
        alert = first.get("informed")
        if alert is not None:
            low, high = limits[alert.rule]
            limit = high if alert.direction == "up" else low
            assert limit is not None
            actual = _crossing(series[(alert.rule, alert.region)], limit, alert.direction == "up")
            if actual is not None and part.index >= actual + SMOOTH:
                outcome.actual = actual
                break
    if "informed" in first:
        alert = first["informed"]
        outcome.alarm = alert.part_index
        outcome.with_signature = alert.part_index + alert.forecast.parts_to_limit
        outcome.covered = (
            outcome.actual is not None
            and alert.part_index + alert.forecast.parts_low
            <= outcome.actual
            <= alert.part_index + alert.forecast.parts_high
        )
        outcome.forecast_ms = spent * 1000.0
    if "alone" in first:
        alone_alert = first["alone"]
        outcome.data_only = alone_alert.part_index + alone_alert.forecast.parts_to_limit
    drifted = {(a.rule, a.region) for a in alone.watch.alarms if a.kind == "product"}
    return outcome, series, drifted


def _within(outcome: Outcome, forecast: float) -> bool:
    if outcome.alarm is None or outcome.actual is None or not math.isfinite(forecast):
        return False
    return abs(forecast - outcome.actual) <= 0.2 * (outcome.actual - outcome.alarm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=51, help="drift runs (spread over stations)")
    parser.add_argument("--free", type=int, default=30, help="drift-free runs")
    parser.add_argument("--past", type=int, default=4, help="past runs per station to learn from")
    args = parser.parse_args()
    began = time.perf_counter()
    signatures: dict[str, dict[tuple[str, str], WearSignature]] = {}
    for station in STATIONS:
        learnt: dict[tuple[str, str], list[tuple[np.ndarray, float, int]]] = {}
        for k in range(args.past):
            _, series, drifted = _run(station, 90_000 + 100 * k + len(station), True, {})
            # every value that raised a drift alarm is one the station's wear drives
            for key in drifted:
                y = np.asarray(series[key])
                learnt.setdefault(key, []).append((y, float(y[:BASELINE].mean()), BASELINE))
        signatures[station] = {key: learn_wear_signature(runs) for key, runs in learnt.items()}
        for key, signature in signatures[station].items():
            print(
                f"signature {station} {key[0]!r}: {signature.rate:+.4f} /part "
                f"(log sd {signature.log_sd:.2f}, {signature.runs} runs)"
            )
    outcomes = []
    names = list(STATIONS)
    for k in range(args.runs):
        station = names[k % len(names)]
        outcome, _, _ = _run(station, 1000 + k, True, signatures[station])
        outcomes.append(outcome)
    false_forecasts = 0
    for k in range(args.free):
        station = names[k % len(names)]
        outcome, _, _ = _run(station, 5000 + k, False, signatures[station])
        false_forecasts += outcome.alarm is not None
    print()
    print(
        f"{'station':8} {'runs':>5} {'alarmed':>8} {'signature <=20%':>16} {'data only <=20%':>16}"
    )
    for station in [*names, "all"]:
        group = [o for o in outcomes if station in ("all", o.station)]
        alarmed = [o for o in group if o.alarm is not None and o.actual is not None]
        share = sum(_within(o, o.with_signature) for o in group) / len(group)
        peer = sum(_within(o, o.data_only) for o in group) / len(group)
        print(f"{station:8} {len(group):5d} {len(alarmed):8d} {share:16.1%} {peer:16.1%}")
    covered = sum(o.covered for o in outcomes) / len(outcomes)
    share = sum(_within(o, o.with_signature) for o in outcomes) / len(outcomes)
    peer = sum(_within(o, o.data_only) for o in outcomes) / len(outcomes)
    print(f"90 % interval covers the actual crossing in {covered:.1%} of drift runs")
    print(f"ratio signature / data-only share within 20 %: {share / max(peer, 1e-9):.2f}")
    print(f"forecast raised on {false_forecasts} of {args.free} drift-free runs")
    print(f"total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
