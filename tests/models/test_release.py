"""Releases: atomic writing, Ed25519 signatures, and every refusal with the file and reason."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thermoscope.models import release
from thermoscope.models.contract import InputContract
from thermoscope.models.errors import ModelError, ReleaseError
from thermoscope.models.manifest import embed_metadata, embedded_metadata
from thermoscope.models.release import (
    FORMAT,
    KINDS,
    MANIFEST_FILE,
    MANIFEST_KEYS,
    MAX_MANIFEST_BYTES,
    MODEL_FILE,
    SIGNATURE_FILE,
    Manifest,
    check_release,
    generate_keys,
    read_file,
    sign_release,
    verify_release,
    write_release,
)
from thermoscope.models.signing import (
    SIGNATURE_BYTES,
    key_fingerprint,
    load_private_key,
    load_public_key,
    sign_bytes,
)

CREATED = datetime(2026, 1, 1, tzinfo=UTC)
CONTRACT = InputContract(window_c=(20.0, 60.0), height=16, width=20)

Keys = tuple[Path, Path]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("keys")
    generate_keys(folder / "release.key", folder / "release.pub")
    return folder / "release.key", folder / "release.pub"


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("other")
    generate_keys(folder / "other.key", folder / "other.pub")
    return folder / "other.key", folder / "other.pub"


def make(folder: Path, **changes: Any) -> Path:
    fields: dict[str, Any] = {
        "name": "pcb-anomaly",
        "version": 3,
        "kind": "anomaly",
        "contract": CONTRACT,
        "onnx": b"\x08\x07onnx bytes",
        "classes": ("ok", "anomaly"),
        "thresholds": {"anomaly": 0.5},
        "dataset_hash": "sha256:abc",
        "code_version": "0.9.0",
        "training": {"epochs": 3},
        "metrics": {"auroc": 0.99},
        "extra_files": {"index.npz": b"index", "card/model.json": b"{}"},
        "created": CREATED,
        **changes,
    }
    return write_release(folder, **fields)


def signed(tmp_path: Path, keys: Keys, **changes: Any) -> Path:
    folder = make(tmp_path / "release", **changes)
    sign_release(folder, keys[0])
    return folder


def refused(folder: Path, keys: Keys, **kwargs: Any) -> ReleaseError:
    with pytest.raises(ReleaseError) as info:
        verify_release(folder, keys[1], now=CREATED + timedelta(days=1), **kwargs)
    return info.value


def test_a_signed_release_verifies(tmp_path: Path, keys: Keys) -> None:
    folder = signed(tmp_path, keys)
    manifest = verify_release(folder, keys[1], min_version=3, now=CREATED + timedelta(days=30))
    assert manifest.name == "pcb-anomaly"
    assert manifest.version == 3
    assert manifest.kind in KINDS
    assert manifest.contract == CONTRACT
    assert manifest.expires == CREATED + timedelta(days=365)
    assert manifest.threshold("anomaly") == 0.5
    assert manifest.threshold("crack", 0.8) == 0.8
    assert sorted(manifest.files) == ["card/model.json", "index.npz", MODEL_FILE]
    assert read_file(folder, "index.npz", manifest) == b"index"
    assert len((folder / SIGNATURE_FILE).read_bytes()) == SIGNATURE_BYTES
    on_disk = json.loads((folder / MANIFEST_FILE).read_bytes())
    assert tuple(on_disk) == MANIFEST_KEYS
    assert on_disk["format"] == FORMAT
    assert on_disk["created"] == "2026-01-01T00:00:00Z"
    assert Manifest.from_dict(on_disk) == manifest


def test_numpy_figures_are_written_as_json(tmp_path: Path) -> None:
    metrics = {"auroc": np.float32(0.75), "confusion": np.eye(2, dtype=np.int64), "k": (1, 2)}
    folder = make(tmp_path / "r", metrics=metrics)
    manifest = check_release(folder, now=CREATED)
    assert manifest.metrics == {"auroc": 0.75, "confusion": [[1, 0], [0, 1]], "k": [1, 2]}
    with pytest.raises(ReleaseError, match="cannot be written as JSON"):
        make(tmp_path / "s", metrics={"auroc": np.float64("nan")})
    with pytest.raises(ReleaseError, match="cannot be written as JSON"):
        make(tmp_path / "t", metrics={"when": object()})


def test_bytes_that_are_no_onnx_model_are_written_as_given(tmp_path: Path) -> None:
    folder = make(tmp_path / "r", onnx=b"placeholder bytes")
    assert (folder / MODEL_FILE).read_bytes() == b"placeholder bytes"
    manifest = check_release(folder, now=CREATED)
    assert embed_metadata(b"\x08\x07", manifest) == b"\x08\x07"
    assert embedded_metadata({"thermoscope.kind": "not json", "other": "1"}) == {}


def test_signing_while_writing(tmp_path: Path, keys: Keys) -> None:
    folder = make(tmp_path / "r", private_key=keys[0])
    assert verify_release(folder, keys[1], now=CREATED).version == 3


def test_unsigned_release_is_refused(tmp_path: Path, keys: Keys) -> None:
    error = refused(make(tmp_path / "r"), keys)
    assert error.path.endswith(SIGNATURE_FILE)
    assert "unsigned" in error.reason


def test_tampered_manifest_is_refused(tmp_path: Path, keys: Keys) -> None:
    folder = signed(tmp_path, keys)
    path = folder / MANIFEST_FILE
    path.write_bytes(path.read_bytes().replace(b'"anomaly": 0.5', b'"anomaly": 0.9'))
    error = refused(folder, keys)
    assert error.path.endswith(SIGNATURE_FILE)
    assert "signature does not match manifest.json" in str(error)


def test_tampered_model_file_is_refused(tmp_path: Path, keys: Keys) -> None:
    folder = signed(tmp_path, keys)
    (folder / MODEL_FILE).write_bytes(b"\x08\x07ONNX bytes")
    error = refused(folder, keys)
    assert error.path.endswith(MODEL_FILE)
    assert "SHA-256 does not match" in error.reason


def test_an_altered_release_is_never_signed(tmp_path: Path, keys: Keys) -> None:
    folder = make(tmp_path / "r")
    (folder / "index.npz").write_bytes(b"other index")
    with pytest.raises(ReleaseError, match=r"index\.npz: SHA-256 does not match"):
        sign_release(folder, keys[0])
    assert not (folder / SIGNATURE_FILE).exists()


def test_missing_file_is_refused(tmp_path: Path, keys: Keys) -> None:
    folder = signed(tmp_path, keys)
    (folder / "card" / "model.json").unlink()
    error = refused(folder, keys)
    assert error.path.endswith("card/model.json")
    assert "missing" in error.reason


def test_added_file_is_refused(tmp_path: Path, keys: Keys) -> None:
    folder = signed(tmp_path, keys)
    (folder / "backdoor.onnx").write_bytes(b"x")
    error = refused(folder, keys)
    assert error.path.endswith("backdoor.onnx")
    assert "not listed" in error.reason


def test_wrong_key_is_refused(tmp_path: Path, keys: Keys, other_keys: Keys) -> None:
    folder = signed(tmp_path, other_keys)
    error = refused(folder, keys)
    assert "signed with another key" in error.reason
    assert "release.pub" in error.reason


def test_expired_release_is_refused(tmp_path: Path, keys: Keys) -> None:
    folder = signed(tmp_path, keys, valid_days=10)
    verify_release(folder, keys[1], now=CREATED + timedelta(days=9))
    with pytest.raises(ReleaseError, match="expired on 2026-01-11T00:00:00Z") as info:
        verify_release(folder, keys[1], now=CREATED + timedelta(days=10))
    assert info.value.path.endswith(MANIFEST_FILE)
    # A naive time is read as UTC.
    with pytest.raises(ReleaseError, match="expired"):
        verify_release(folder, keys[1], now=datetime(2026, 2, 1))


def test_older_release_is_refused(tmp_path: Path, keys: Keys) -> None:
    folder = signed(tmp_path, keys)
    error = refused(folder, keys, min_version=4)
    assert "v3 is older than the minimum version 4" in error.reason
    assert error.path.endswith(MANIFEST_FILE)


def test_malformed_manifest_is_refused_even_when_signed(tmp_path: Path, keys: Keys) -> None:
    folder = signed(tmp_path, keys)
    path = folder / MANIFEST_FILE
    for garbage, reason in [
        (b"{not json", "not UTF-8 JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"format": "x"}', "missing manifest keys"),
    ]:
        path.write_bytes(garbage)
        with pytest.raises(ReleaseError, match="malformed manifest"):
            sign_release(folder, keys[0])
        (folder / SIGNATURE_FILE).write_bytes(sign_bytes(load_private_key(keys[0]), garbage))
        error = refused(folder, keys)
        assert error.path.endswith(MANIFEST_FILE)
        assert reason in error.reason


def test_unusable_signature_and_keys_are_refused(tmp_path: Path, keys: Keys) -> None:
    folder = signed(tmp_path, keys)
    (folder / SIGNATURE_FILE).write_bytes(b"short")
    assert "signature does not match" in refused(folder, keys).reason
    garbage = tmp_path / "garbage.pub"
    garbage.write_bytes(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ReleaseError, match=r"garbage\.pub: not a PEM public key"):
        verify_release(folder, garbage)
    with pytest.raises(ReleaseError, match=r"nothing\.pub: cannot read key"):
        verify_release(folder, tmp_path / "nothing.pub")
    with pytest.raises(ReleaseError, match="not a PEM private key"):
        sign_release(folder, keys[1])
    with pytest.raises(ReleaseError, match="not a release folder"):
        verify_release(tmp_path / "absent", keys[1])
    with pytest.raises(ReleaseError, match=r"manifest\.json: missing or unreadable"):
        verify_release(tmp_path, keys[1])


def test_oversized_manifest_is_refused(tmp_path: Path, keys: Keys) -> None:
    folder = signed(tmp_path, keys)
    (folder / MANIFEST_FILE).write_bytes(b" " * (MAX_MANIFEST_BYTES + 1))
    assert "larger than" in refused(folder, keys).reason


def test_keys_are_never_overwritten_and_private_keys_are_private(tmp_path: Path) -> None:
    fingerprint = generate_keys(tmp_path / "a.key", tmp_path / "a.pub")
    assert fingerprint == key_fingerprint(load_public_key(tmp_path / "a.pub"))
    assert stat.S_IMODE((tmp_path / "a.key").stat().st_mode) == 0o600
    with pytest.raises(ReleaseError, match="refusing to overwrite"):
        generate_keys(tmp_path / "a.key", tmp_path / "b.pub")


def test_a_release_is_never_written_over(tmp_path: Path) -> None:
    folder = make(tmp_path / "r")
    with pytest.raises(ReleaseError, match="already exists"):
        make(folder, version=4)
    make(folder, version=4, overwrite=True)
    assert check_release(folder, now=CREATED).version == 4


def fail_on(monkeypatch: pytest.MonkeyPatch, name: str, *, after: int) -> None:
    """Make ``release.<name>`` raise OSError after ``after`` successful calls."""
    real: Callable[..., Any] = getattr(release, name)
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > after:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(release, name, flaky)


def test_a_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_on(monkeypatch, "_write_synced", after=2)
    with pytest.raises(ReleaseError, match=r"writing the release failed: .*No space left"):
        make(tmp_path / "r")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rename_keeps_the_old_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make(tmp_path / "r")
    before = sorted(p.name for p in folder.iterdir())
    real_replace = os.replace
    calls = {"n": 0}

    def flaky(src: Any, dst: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the old folder moved aside, the new one fails to move in
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(release.os, "replace", flaky)
    with pytest.raises(ReleaseError, match="Input/output error"):
        make(folder, version=4, overwrite=True)
    monkeypatch.undo()
    assert sorted(p.name for p in folder.iterdir()) == before
    assert check_release(folder, now=CREATED).version == 3
    assert [p.name for p in tmp_path.iterdir()] == ["r"]


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "a//b", "./x", MANIFEST_FILE, ""])
def test_unsafe_extra_file_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ReleaseError):
        make(tmp_path / "r", extra_files={name: b"x"})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": 0}, "version must be an integer >= 1"),
        ({"version": True}, "version must be an integer"),
        ({"kind": "segmenter"}, "kind must be one of"),
        ({"name": "../x"}, "name must be"),
        ({"thresholds": {"anomaly": 1.5}}, r"must be in \[0, 1\]"),
        ({"classes": ("ok", "ok")}, "repeats"),
        ({"onnx": b""}, "non-empty bytes"),
        ({"created": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"expires": CREATED - timedelta(days=1)}, "expires must be after created"),
        ({"training": {"bad": float("nan")}}, "cannot be written as JSON"),
        ({"valid_days": 0.0}, "valid_days must be positive"),
    ],
)
def test_invalid_fields_are_refused(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ReleaseError, match=message):
        make(tmp_path / "r", **changes)
    assert list(tmp_path.iterdir()) == []


def valid_manifest_dict() -> dict[str, Any]:
    return Manifest(
        name="m",
        version=1,
        kind="classifier",
        created=CREATED,
        expires=CREATED + timedelta(days=1),
        classes=("ok", "crack"),
        thresholds={"crack": 0.4},
        contract=CONTRACT,
        files={MODEL_FILE: "0" * 64},
    ).to_dict()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_garbage_manifests_give_release_error(value: Any) -> None:
    with pytest.raises(ReleaseError, match=MANIFEST_FILE):
        Manifest.from_dict(value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(MANIFEST_KEYS), value=json_values)
def test_a_garbled_manifest_field_gives_release_error_or_a_manifest(key: str, value: Any) -> None:
    d = valid_manifest_dict()
    d[key] = value
    try:
        manifest = Manifest.from_dict(d)
    except ReleaseError as exc:
        error: ModelError = exc
        path = exc.path
    else:
        assert Manifest.from_dict(manifest.to_dict()) == manifest
        return
    assert path == MANIFEST_FILE
    assert str(error).startswith(MANIFEST_FILE)
