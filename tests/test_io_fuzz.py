"""Property tests: truncated, bit-flipped and random input to every reader gives a format error.

Each case either decodes (all frames) or raises ``ThermoscopeFormatError``; never another
exception, a hang or a memory blow-up. Inputs are small synthetic files, so the suite needs no
sample data.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import thermoscope.io as tio
from synthetic_frames import planck_frame
from thermoscope.io import flir_writer


def rjpeg(fff: bytes, chunk: int = 200) -> bytes:
    """Wrap an FFF record set in FLIR APP1 chunks, as FLIR cameras do."""
    parts = [fff[i : i + chunk] for i in range(0, len(fff), chunk)]
    out = bytearray(b"\xff\xd8")
    for index, part in enumerate(parts):
        payload = b"FLIR\x00\x01" + bytes([index, len(parts) - 1]) + part
        out += b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return bytes(out + b"\xff\xd9")


def _frames(n: int = 2) -> list:  # type: ignore[type-arg]
    return [planck_frame(12, 16, seed=i, index=i) for i in range(n)]


SEEDS: dict[str, Callable[[], bytes]] = {
    "fff-be": lambda: flir_writer.emit_fff(_frames(1)[0]),
    "fff-le": lambda: flir_writer.emit_fff(_frames(1)[0], byte_order="<"),
    "seq": lambda: flir_writer.emit_seq(_frames()),
    "csq": lambda: flir_writer.emit_csq(_frames()),
    "rjpeg": lambda: rjpeg(flir_writer.emit_fff(_frames(1)[0])),
}


def decode_all(data: bytes) -> None:
    """Parse and materialise every frame; only format errors may escape."""
    try:
        seq = tio.parse_bytes(data)
        for frame in seq:
            assert frame.celsius.shape == frame.raw.shape if frame.raw is not None else True
    except tio.ThermoscopeFormatError:
        pass


FUZZ = settings(
    max_examples=int(os.environ.get("THERMOSCOPE_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_seed_files_decode(kind: str) -> None:
    seq = tio.parse_bytes(SEEDS[kind]())
    assert all(frame.shape == (12, 16) for frame in seq)


@pytest.mark.parametrize("kind", sorted(SEEDS))
@FUZZ
@given(cut=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated(kind: str, cut: float) -> None:
    data = SEEDS[kind]()
    decode_all(data[: int(len(data) * cut)])


@pytest.mark.parametrize("kind", sorted(SEEDS))
@FUZZ
@given(
    flips=st.lists(
        st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=8
    )
)
def test_bit_flipped(kind: str, flips: list[tuple[float, int]]) -> None:
    data = bytearray(SEEDS[kind]())
    for where, bit in flips:
        data[int(len(data) * where)] ^= 1 << bit
    decode_all(bytes(data))


@pytest.mark.parametrize(
    "prefix",
    [b"", b"FFF\x00", b"\xff\xd8\xff\xe1", b"\xff\xd8\xff\xe1\x01\x00FLIR\x00"],
    ids=["none", "fff", "jpeg", "flir"],
)
@FUZZ
@given(body=st.binary(max_size=2048))
def test_random_bytes(prefix: bytes, body: bytes) -> None:
    decode_all(prefix + body)


@FUZZ
@given(header=st.binary(min_size=64, max_size=64), entries=st.binary(min_size=0, max_size=256))
def test_random_fff_directories(header: bytes, entries: bytes) -> None:
    decode_all(
        b"FFF\x00"
        + header[4:20]
        + struct.pack(">III", 100, 64, len(entries) // 32)
        + header[32:]
        + entries
    )
