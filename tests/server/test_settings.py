"""Settings: environment variables, the settings file, bounds, and their documentation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from thermoscope.server.settings import Settings

DOC = (Path(__file__).resolve().parents[2] / "docs" / "server.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name: str) -> None:
    assert f"`THERMOSCOPE_{name.upper()}`" in DOC, f"setting {name} undocumented in docs/server.md"


def test_defaults_are_the_embedded_deployment(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'thermoscope.db'}"
    assert settings.resolved_blob_url == str(tmp_path.resolve() / "blobs")


def test_environment_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "server.yaml"
    config.write_text("database_url: postgresql+psycopg://db/x\nworker_threads: 3\n")
    monkeypatch.setenv("THERMOSCOPE_CONFIG", str(config))
    monkeypatch.setenv("THERMOSCOPE_WORKER_THREADS", "2")
    monkeypatch.setenv("THERMOSCOPE_BLOB_URL", "s3://bucket/prefix")
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg://db/x"  # from the file
    assert settings.worker_threads == 2  # the environment beats the file
    assert settings.resolved_blob_url == "s3://bucket/prefix"
    assert Settings(worker_threads=4).worker_threads == 4  # arguments beat both


def test_bad_settings_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError):
        Settings(worker_threads=-1)
    with pytest.raises(ValidationError):
        Settings(sqlite_synchronous="OFF")
    config = tmp_path / "server.yaml"
    config.write_text("no_such_setting: 1\n")
    monkeypatch.setenv("THERMOSCOPE_CONFIG", str(config))
    with pytest.raises(ValidationError):
        Settings()


def test_a_missing_settings_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THERMOSCOPE_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(FileNotFoundError, match=r"missing\.yaml"):
        Settings()
