"""Forecast accuracy at the first drift alarm, on seeded synthetic runs (the issue's done-when).

Three stations of the synthetic line wear, each its own way: the pcb's U1 heat sink loses
contact at an accelerating rate (the rate doubles every ~300 parts), the battery's coolant pump
loses part of its flow at once (a ~2 °C step) and then wears on (a ramp), the seal's jaw heater
weakens linearly. Every run's rate, doubling and step are the station's nominal ones times
``exp(N(0, SPREAD))``, the drift starts at a random part in [150, 300), and the hall's ambient
warms and cycles over the shift. A
:class:`~thermoscope.recipes.maintenance.MaintenanceWatch` watches every inspected part; its
first forecast alert is compared with the actual crossing: the first part at which the centred
21-part moving average of the forecast value passes its NG limit. A forecast is *within 20 %*
when ``|forecast - actual| <= 0.2 * (actual - alarm part)``.

Two forecasters run side by side on the same parts: with the station's wear signature (learnt
from ``--past`` earlier runs of the same station: their rate, curvature and step, fitted on the
values that raised drift alarms) and from the run's data alone (the peer: a straight ramp, flat
prior). Drift runs on seeds ``[0, --tune)`` are the ones the method was tuned on; seeds
``[--tune, --tune + --held-out)`` were not looked at while tuning. Drift-free runs (one shift,
1,000 parts) give the false-forecast rate: the share of runs with any forecast alert, next to
the share with any drift alarm of the watch itself.

Run: ``python benchmarks/eval_forecast.py [--tune 100] [--held-out 200] [--free 60] [--past 4]``.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from thermoscope.analysis.forecast import WearSignature, learn_wear_signature
from thermoscope.core import Inspection
from thermoscope.datasets.synthetic import Drift, simulate_run
from thermoscope.recipes import compile_recipe, inspect, load_recipe
from thermoscope.recipes.maintenance import ForecastAlert, MaintenanceWatch, rule_limits

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SeriesKey = tuple[str, str]


@dataclass(frozen=True)
class Wear:
    """A station's way of wearing: nominal initial rate (°C/part), doubling (parts), step (°C)."""

    kind: str
    target: str
    rate: float
    doubling: float = math.inf
    step: float = 0.0


STATIONS = {
    "pcb": Wear("accelerating", "U1", 0.008, doubling=300.0),
    "battery": Wear("step+ramp", "cooling", 0.008, step=2.0),
    "seal": Wear("linear", "seal", -0.03),
}
#: Log-normal spread of every drift parameter between runs.
SPREAD = 0.15
SMOOTH = 21
MAX_PARTS = 3000
FREE_PARTS = 1000
PARTS_PER_HOUR = 3600.0 / 20.0  # a part every 20 s


@dataclass
class Run:
    """One simulated run: every part's inspection and ambient (°C), and its limits."""

    station: str
    parts: list[tuple[Inspection, float]]
    limits: dict[str, tuple[float | None, float | None]]


@dataclass
class Outcome:
    """One drift run: the first forecast alert, the actual crossing, both forecasts."""

    station: str
    alarm: int | None
    actual: int | None
    with_signature: float
    data_only_alarm: int | None
    data_only: float
    covered: bool


def drift_of(station: str, seed: int) -> Drift:
    """The seeded drift of one run of ``station``."""
    wear = STATIONS[station]
    rng = np.random.default_rng([1, seed])
    factors = np.exp(rng.normal(0.0, SPREAD, 3))
    return Drift(
        wear.target,
        wear.rate * float(factors[0]),
        int(rng.integers(150, 300)),
        doubling_parts=wear.doubling * float(factors[1]),
        step_c=wear.step * float(factors[2]),
    )


def _crossing(values: list[float], limit: float, up: bool) -> int | None:
    """The first part where the centred moving average passes the limit (None: not yet)."""
    if len(values) < SMOOTH:
        return None
    half = SMOOTH // 2
    mean = np.convolve(np.asarray(values), np.ones(SMOOTH) / SMOOTH, mode="valid")
    beyond = np.flatnonzero(mean > limit if up else mean < limit)
    return int(beyond[0]) + half if beyond.size else None


def _limit(limits: Mapping[str, tuple[float | None, float | None]], rule: str, up: bool) -> float:
    low, high = limits[rule]
    limit = high if up else low
    assert limit is not None
    return limit


def simulate(station: str, seed: int, drift: Drift | None) -> Run:
    """Inspect a run: with a drift, until every value that raised a drift alarm toward a limit
    has crossed it (plus the smoothing window), or ``MAX_PARTS``; without, ``FREE_PARTS``."""
    recipe = load_recipe(EXAMPLES / f"{station}.yaml")
    plan = compile_recipe(recipe)
    limits = rule_limits(recipe)
    watch = MaintenanceWatch(limits, station=station)
    series: dict[SeriesKey, list[float]] = {}
    run = Run(station, [], limits)
    parts = simulate_run(
        station,
        parts=MAX_PARTS if drift is not None else FREE_PARTS,
        defect_rate=0.0,
        rng=np.random.default_rng([2, seed]),
        drift=drift,
    )
    for part in parts:
        inspection = inspect(part.frame, plan, source=part.serial)
        run.parts.append((inspection, part.ambient_c))
        for finding in inspection.findings:
            series.setdefault((finding.rule, finding.region), []).append(finding.value)
        watch.watch.update(inspection, ambient=part.ambient_c)
        if drift is None or part.index % 25:
            continue
        toward = pending = False
        for alarm in watch.watch.alarms:
            up = alarm.direction == "up"
            if alarm.kind != "product" or limits.get(alarm.rule, (None, None))[up] is None:
                continue
            values = series[(alarm.rule, alarm.region)]
            actual = _crossing(values, _limit(limits, alarm.rule, up), up)
            toward = True
            pending |= actual is None or len(values) < actual + SMOOTH
        if toward and not pending:
            break
    return run


def _first_forecast(
    run: Run, signatures: Mapping[SeriesKey, WearSignature] | None
) -> ForecastAlert | None:
    watch = MaintenanceWatch(
        run.limits, station=run.station, signatures=signatures, parts_per_hour=PARTS_PER_HOUR
    )
    for inspection, ambient in run.parts:
        for alert in watch.update(inspection, ambient=ambient):
            if isinstance(alert, ForecastAlert):
                return alert
    return None


def evaluate(run: Run, signatures: Mapping[SeriesKey, WearSignature]) -> Outcome:
    """The first forecast alert of both forecasters on a recorded run, and the actual crossing
    of the value the informed one forecast."""
    outcome = Outcome(run.station, None, None, math.nan, None, math.nan, False)
    informed = _first_forecast(run, signatures)
    alone = _first_forecast(run, None)
    if alone is not None:
        outcome.data_only_alarm = alone.part_index
        outcome.data_only = alone.part_index + alone.forecast.parts_to_limit
    if informed is None:
        return outcome
    up = informed.direction == "up"
    values = [
        f.value
        for inspection, _ in run.parts
        for f in inspection.findings
        if (f.rule, f.region) == (informed.rule, informed.region)
    ]
    outcome.alarm = informed.part_index
    outcome.actual = _crossing(values, _limit(run.limits, informed.rule, up), up)
    outcome.with_signature = informed.part_index + informed.forecast.parts_to_limit
    outcome.covered = (
        outcome.actual is not None
        and informed.part_index + informed.forecast.parts_low
        <= outcome.actual
        <= informed.part_index + informed.forecast.parts_high
    )
    return outcome


def learn(station: str, past: int) -> dict[SeriesKey, WearSignature]:
    """The station's wear signatures from ``past`` earlier runs: one per value that raised a
    product drift alarm in them (what the station's wear drives)."""
    learnt: dict[SeriesKey, list[tuple[np.ndarray, float, int]]] = {}
    for k in range(past):
        seed = 10_000 + k
        run = simulate(station, seed, drift_of(station, seed))
        watch = MaintenanceWatch(run.limits, station=station)
        for inspection, ambient in run.parts:
            watch.update(inspection, ambient=ambient)
        for key in {(a.rule, a.region) for a in watch.watch.alarms if a.kind == "product"}:
            series = watch.corrected(*key)
            learnt.setdefault(key, []).append((series.values, series.center, series.baseline))
    return {key: learn_wear_signature(runs) for key, runs in learnt.items()}


def _within(alarm: int | None, actual: int | None, forecast: float) -> bool:
    if alarm is None or actual is None or not math.isfinite(forecast):
        return False
    return abs(forecast - actual) <= 0.2 * (actual - alarm)


def table(title: str, outcomes: list[Outcome]) -> float:
    """Print the per-station table of ``outcomes``; return the share within 20 % overall."""
    print(f"\n{title}")
    print(
        f"{'station':8} {'kind':13} {'runs':>5} {'alarmed':>8} {'signature <=20%':>16} "
        f"{'data only <=20%':>16} {'median |err|':>13} {'90% covers':>11}"
    )
    share = 0.0
    for station in [*STATIONS, "all"]:
        group = [o for o in outcomes if station in ("all", o.station)]
        if not group:
            continue
        alarmed = [o for o in group if o.alarm is not None and o.actual is not None]
        share = sum(_within(o.alarm, o.actual, o.with_signature) for o in group) / len(group)
        peer = sum(_within(o.data_only_alarm, o.actual, o.data_only) for o in group) / len(group)
        errors = [
            abs(o.with_signature - o.actual) / max(o.actual - o.alarm, 1)
            for o in alarmed
            if o.alarm is not None and o.actual is not None
        ]
        error = float(np.median(errors)) if errors else math.nan
        covered = sum(o.covered for o in group) / len(group)
        kind = STATIONS[station].kind if station in STATIONS else ""
        print(
            f"{station:8} {kind:13} {len(group):5d} {len(alarmed):8d} {share:16.1%} "
            f"{peer:16.1%} {error:13.1%} {covered:11.1%}"
        )
    return share


def _free_runs(
    seeds: Iterable[int], signatures: Mapping[str, Mapping[SeriesKey, WearSignature]]
) -> tuple[int, int, int]:
    names = list(STATIONS)
    runs = alarmed = forecast = 0
    for seed in seeds:
        station = names[seed % len(names)]
        run = simulate(station, seed, None)
        watch = MaintenanceWatch(run.limits, station=station, signatures=signatures[station])
        raised = False
        for inspection, ambient in run.parts:
            raised |= any(
                isinstance(a, ForecastAlert) for a in watch.update(inspection, ambient=ambient)
            )
        runs += 1
        alarmed += any(a.kind == "product" for a in watch.watch.alarms)
        forecast += raised
    return runs, alarmed, forecast


def _upper95(hits: int, runs: int) -> float:
    """One-sided 95 % upper bound of a binomial share (Wilson score)."""
    z = 1.645
    p = hits / runs
    centre = p + z * z / (2 * runs)
    margin = z * math.sqrt(p * (1 - p) / runs + z * z / (4 * runs * runs))
    return (centre + margin) / (1 + z * z / runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", type=int, default=100, help="drift runs tuned on (seeds 0..)")
    parser.add_argument("--held-out", type=int, default=200, help="drift runs not tuned on")
    parser.add_argument("--free", type=int, default=60, help="drift-free runs")
    parser.add_argument("--past", type=int, default=4, help="past runs per station to learn from")
    args = parser.parse_args()
    began = time.process_time()
    signatures = {station: learn(station, args.past) for station in STATIONS}
    for station, learnt in signatures.items():
        for key, signature in learnt.items():
            print(
                f"signature {station} {key[0]!r}: {signature.shape}, {signature.rate:+.4f} /part "
                f"(log sd {signature.log_sd:.2f}), doubling {signature.doubling_parts:.0f} parts, "
                f"step {signature.step:+.2f} ± {signature.step_sd:.2f}, {signature.runs} runs"
            )
    names = list(STATIONS)
    outcomes = []
    for seed in range(args.tune + args.held_out):
        station = names[seed % len(names)]
        outcomes.append(
            evaluate(simulate(station, seed, drift_of(station, seed)), signatures[station])
        )
    table(f"tuning seeds 0-{args.tune - 1}", outcomes[: args.tune])
    held = table(
        f"held-out seeds {args.tune}-{args.tune + args.held_out - 1}", outcomes[args.tune :]
    )
    free = range(20_000, 20_000 + args.free)
    runs, alarmed, forecast = _free_runs(free, signatures)
    print(
        f"\ndrift-free runs ({FREE_PARTS} parts): drift alarm on {alarmed} of {runs}, "
        f"forecast alert on {forecast} of {runs} ({forecast / runs:.1%}, "
        f"95 % upper bound {_upper95(forecast, runs):.1%})"
    )
    print(f"held-out share within 20 %: {held:.1%}; CPU {time.process_time() - began:.0f} s")


if __name__ == "__main__":
    main()
