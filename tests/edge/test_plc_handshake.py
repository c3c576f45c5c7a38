"""The PLC handshake and result buffer, without I/O: each step of the cycle, the overrun policy,
the recipe checksum, and a state-machine property test over any interleaving of PLC and agent."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from thermoscope.edge.plc import (
    Delivery,
    Handshake,
    InspectionResult,
    MemoryPlcLink,
    PlcError,
    PlcInputs,
    recipe_checksum,
)


def result(result_id: int, *, passed: bool = True, ms: float = 3.5) -> InspectionResult:
    return InspectionResult(result_id, passed, error_code=0, processing_time_ms=ms)


def trigger_cycle(hs: Handshake, trigger_id: int, *, ack_level: bool = False) -> None:
    """The PLC raises the trigger for ``trigger_id`` and releases it once acknowledged."""
    step = hs.apply(PlcInputs(trigger=True, trigger_id=trigger_id, result_ack=ack_level))
    assert step.accepted_trigger == trigger_id
    assert hs.outputs.trigger_ack
    hs.apply(PlcInputs(trigger=False, trigger_id=trigger_id, result_ack=ack_level))
    assert not hs.outputs.trigger_ack


def test_one_part_follows_every_step_of_the_handshake() -> None:
    hs = Handshake(recipe_checksum=0x1234)
    out = hs.outputs
    assert (out.trigger_ready, out.busy, out.result_valid, out.recipe_checksum) == (
        True,
        False,
        False,
        0x1234,
    )
    step = hs.apply(PlcInputs(trigger=True, trigger_id=41))
    out = hs.outputs
    assert step.accepted_trigger == 41
    assert (out.trigger_ack, out.acquiring, out.busy, out.trigger_ready) == (
        True,
        True,
        True,
        False,
    )
    assert out.accepted_trigger_id == 41
    assert hs.take_accepted() == [41]
    assert hs.take_accepted() == []
    hs.apply(PlcInputs(trigger=False, trigger_id=41))
    assert not hs.outputs.trigger_ack
    assert not hs.outputs.trigger_ready  # still acquiring
    assert hs.acquisition_done() is None
    out = hs.outputs
    assert (out.acquiring, out.busy, out.trigger_ready) == (False, True, True)
    assert hs.complete(
        InspectionResult(41, False, error_code=0, warning_code=7, processing_time_ms=12.25)
    ) is (Delivery.PRESENTED)
    out = hs.outputs
    assert (out.inspection_completed, out.result_valid, out.result_updated, out.busy) == (
        True,
        True,
        True,
        False,
    )
    assert (out.result_id, out.job_pass, out.job_fail, out.warning_code) == (41, False, True, 7)
    assert out.processing_time_ms == 12.25
    assert out.buffer_fill == 1
    step = hs.apply(PlcInputs(trigger_id=41, result_ack=True))
    assert step.acknowledged is not None
    assert step.acknowledged.result_id == 41
    assert not hs.outputs.result_valid
    assert hs.outputs.buffer_fill == 0
    hs.apply(PlcInputs(trigger_id=41))
    assert not hs.outputs.result_valid
    assert hs.outputs.result_updated  # the toggle keeps its value until the next result


def test_the_toggle_bit_tells_equal_results_apart() -> None:
    hs = Handshake()
    toggles = []
    for part in (5, 5, 5):
        trigger_cycle(hs, part)
        hs.complete(result(part))
        toggles.append(hs.outputs.result_updated)
        hs.apply(PlcInputs(trigger_id=part, result_ack=True))
        hs.apply(PlcInputs(trigger_id=part))
    assert toggles == [True, False, True]


def test_results_wait_in_order_until_the_plc_acknowledges_them() -> None:
    hs = Handshake(depth=4)
    deliveries = []
    for part in (10, 11, 12):
        trigger_cycle(hs, part)
        deliveries.append(hs.complete(result(part, passed=part != 11)))
    assert deliveries == [Delivery.PRESENTED, Delivery.QUEUED, Delivery.QUEUED]
    assert [r.result_id for r in hs.pending] == [10, 11, 12]
    seen = []
    for _ in range(3):
        assert hs.outputs.result_valid
        seen.append((hs.outputs.result_id, hs.outputs.job_pass))
        hs.apply(PlcInputs(result_ack=True))
        assert not hs.outputs.result_valid  # the next result waits for the ack to drop
        hs.apply(PlcInputs(result_ack=False))
    assert seen == [(10, True), (11, False), (12, True)]
    assert not hs.outputs.result_valid
    assert hs.outputs.buffer_fill == 0


def test_overrun_keeps_the_waiting_results_and_reports_the_lost_one() -> None:
    hs = Handshake(depth=2)
    outcomes = {}
    for part in (1, 2, 3, 4):
        trigger_cycle(hs, part)  # triggers are still taken with a full buffer
        outcomes[part] = hs.complete(result(part))
    assert outcomes == {
        1: Delivery.PRESENTED,
        2: Delivery.QUEUED,
        3: Delivery.OVERRUN,
        4: Delivery.OVERRUN,
    }
    out = hs.outputs
    assert (out.overrun, out.overrun_count, out.last_overrun_result_id) == (True, 2, 4)
    assert (out.buffer_fill, out.buffer_full) == (2, True)
    assert [r.result_id for r in hs.pending] == [1, 2]
    assert out.result_id == 1  # the presented result is never overwritten
    hs.apply(PlcInputs(result_ack=True))
    assert not hs.outputs.overrun  # acknowledging the next result clears the flag
    assert hs.outputs.overrun_count == 2  # the counter stays
    hs.apply(PlcInputs(result_ack=False))
    assert hs.outputs.result_id == 2
    assert not hs.outputs.buffer_full


def test_a_trigger_raised_while_acquiring_is_taken_when_the_frame_is_done() -> None:
    hs = Handshake()
    trigger_cycle(hs, 1)
    hs.apply(PlcInputs(trigger=True, trigger_id=2))  # too early: still acquiring part 1
    assert hs.in_flight == (1,)
    assert hs.acquisition_done() == 2
    assert hs.in_flight == (1, 2)
    assert hs.outputs.accepted_trigger_id == 2
    hs.apply(PlcInputs(trigger=False, trigger_id=2))
    assert hs.complete(result(1)) is Delivery.PRESENTED
    assert hs.outputs.acquiring  # part 2 is still being acquired
    assert hs.complete(result(2)) is Delivery.QUEUED
    assert not hs.outputs.busy


def test_a_trigger_held_high_is_taken_once() -> None:
    hs = Handshake()
    hs.apply(PlcInputs(trigger=True, trigger_id=9))
    hs.acquisition_done()
    hs.complete(result(9))
    for _ in range(3):
        assert hs.apply(PlcInputs(trigger=True, trigger_id=9)).accepted_trigger is None
    assert hs.take_accepted() == [9]


def test_misuse_is_refused_with_the_field_named() -> None:
    hs = Handshake()
    with pytest.raises(PlcError, match="no trigger is in flight"):
        hs.complete(result(1))
    trigger_cycle(hs, 1)
    with pytest.raises(PlcError, match="oldest trigger in flight is 1"):
        hs.complete(result(2))
    with pytest.raises(PlcError, match="depth"):
        Handshake(depth=0)
    with pytest.raises(PlcError, match="trigger_id"):
        PlcInputs(trigger_id=-1)
    with pytest.raises(PlcError, match="error_code"):
        InspectionResult(1, True, error_code=70_000)
    with pytest.raises(PlcError, match="processing_time_ms"):
        InspectionResult(1, True, processing_time_ms=float("nan"))
    with pytest.raises(PlcError, match="recipe_checksum"):
        hs.set_recipe_checksum(1 << 16)
    hs.acquisition_done()
    with pytest.raises(PlcError, match="no trigger is being acquired"):
        hs.acquisition_done()


def test_recipe_checksum_is_crc16_ccitt_false() -> None:
    assert recipe_checksum("123456789") == 0x29B1  # the catalogued check value
    assert recipe_checksum("") == 0xFFFF
    assert recipe_checksum("regions: [a]") != recipe_checksum("regions: [b]")
    hs = Handshake()
    hs.set_recipe_checksum(recipe_checksum("123456789"))
    assert hs.outputs.recipe_checksum == 0x29B1


class HandshakeMachine(RuleBasedStateMachine):
    """A PLC that triggers and acknowledges at any moment, an agent that finishes frames and
    inspections at any moment: nothing the buffer had room for is lost or reordered, and every
    overrun is a result that met a full buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 3
        self.hs = Handshake(depth=self.depth)
        self.inputs = PlcInputs()
        self.next_id = 0
        self.completed: list[int] = []  # result ids that entered the buffer, in order
        self.overrun: list[int] = []
        self.received: list[int] = []  # what the PLC read and acknowledged, in order
        self.toggle = False
        self.presentations = 0

    def send(self, **changes: object) -> None:
        values = {
            "trigger": self.inputs.trigger,
            "trigger_id": self.inputs.trigger_id,
            "result_ack": self.inputs.result_ack,
        }
        values.update(changes)
        self.inputs = PlcInputs(**values)  # type: ignore[arg-type]
        before = self.hs.outputs
        step = self.hs.apply(self.inputs)
        if step.acknowledged is not None:
            assert before.result_valid
            assert step.acknowledged.result_id == before.result_id
            self.received.append(step.acknowledged.result_id)
        self.track()

    def track(self) -> None:
        out = self.hs.outputs
        if out.result_updated != self.toggle:
            self.toggle = out.result_updated
            self.presentations += 1
            assert out.result_valid

    @rule()
    def plc_raises_trigger(self) -> None:
        if not self.inputs.trigger:
            self.next_id += 1
            self.send(trigger=True, trigger_id=self.next_id)

    @rule()
    def plc_releases_trigger(self) -> None:
        if self.inputs.trigger and self.hs.outputs.trigger_ack:
            self.send(trigger=False)

    @rule()
    def plc_acknowledges(self) -> None:
        if self.hs.outputs.result_valid and not self.inputs.result_ack:
            self.send(result_ack=True)

    @rule()
    def plc_releases_ack(self) -> None:
        if self.inputs.result_ack:
            self.send(result_ack=False)

    @rule()
    def agent_frame_taken(self) -> None:
        if self.hs.outputs.acquiring:
            self.hs.acquisition_done()
            self.track()

    @precondition(lambda self: bool(self.hs.in_flight))
    @rule(passed=st.booleans())
    def agent_completes(self, passed: bool) -> None:
        oldest = self.hs.in_flight[0]
        full = len(self.hs.pending) >= self.depth
        delivery = self.hs.complete(InspectionResult(oldest, passed))
        if full:
            assert delivery is Delivery.OVERRUN
            self.overrun.append(oldest)
        else:
            assert delivery is not Delivery.OVERRUN
            self.completed.append(oldest)
        self.track()

    @invariant()
    def nothing_lost_or_reordered(self) -> None:
        pending = [r.result_id for r in self.hs.pending]
        assert self.received + pending == self.completed
        assert self.hs.outputs.overrun_count == len(self.overrun)
        assert len(pending) <= self.depth
        if self.hs.outputs.result_valid:
            assert self.hs.outputs.result_id == pending[0]
        assert self.presentations in (len(self.received), len(self.received) + 1)

    @invariant()
    def ready_only_when_a_trigger_can_be_taken(self) -> None:
        out = self.hs.outputs
        assert out.trigger_ready == (not out.acquiring and not out.trigger_ack)
        assert out.busy == (out.acquiring or bool(self.hs.in_flight))
        ids = [*self.hs.in_flight]
        assert ids == sorted(ids)  # triggers stay in the order the PLC sent them


HandshakeMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=60, deadline=None
)
test_handshake_state_machine = HandshakeMachine.TestCase


def test_memory_link_runs_the_cycle_for_the_agent() -> None:
    async def main() -> None:
        link = MemoryPlcLink(depth=2, recipe_checksum=recipe_checksum("r"))
        link.plc_write(trigger_id=77, trigger=True)
        trigger = await link.wait_trigger()
        assert trigger.trigger_id == 77
        assert trigger.accepted_ns > 0
        await link.plc_wait(lambda o: o.trigger_ack)
        link.plc_write(trigger=False)
        await link.acquisition_done()
        await link.acquisition_done()  # nothing being acquired: no-op
        assert await link.publish_result(result(77, passed=False)) is Delivery.PRESENTED
        out = await link.plc_wait(lambda o: o.result_valid)
        assert (out.result_id, out.job_fail, out.recipe_checksum) == (
            77,
            True,
            recipe_checksum("r"),
        )
        link.plc_write(result_ack=True)
        await link.plc_wait(lambda o: not o.result_valid)
        with pytest.raises(PlcError, match="waited"):
            await link.plc_wait(lambda o: o.result_valid, timeout_s=0.01)
        await link.close()
        with pytest.raises(PlcError, match="closed"):
            await link.wait_trigger()
        with pytest.raises(PlcError, match="closed"):
            await link.publish_result(result(1))

    asyncio.run(asyncio.wait_for(main(), 5))
