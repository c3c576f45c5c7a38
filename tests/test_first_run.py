"""A newcomer's first run: the licence, how to install, and what ``make test`` installs."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")


def test_the_licence_is_the_full_apache_2_text() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert len(text) > 10_000  # the whole licence, not a notice
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0"


def test_the_readme_installs_from_a_checkout_or_git_url() -> None:
    install = README.split("## Install", 1)[1].split("\n## ", 1)[0]
    assert "pip install ." in install
    assert "git+" in install
    commands = re.findall(r"pip install ([^\s#]+)", README)
    assert "thermoscope" not in commands  # not published: no bare registry install
    assert "'thermoscope[dev]'" not in commands


def test_the_readme_explains_the_samples_instead_of_pointing_at_shared() -> None:
    assert "../shared" not in README
    assert "THERMOSCOPE_SAMPLES" in README


def _system_packages() -> list[str]:
    match = re.search(r"^SYSTEM_PACKAGES := (.*)$", MAKEFILE, re.M)
    assert match
    return match.group(1).split()


def test_make_test_installs_the_services_without_recommends() -> None:
    wanted = {"chromium", "fonts-liberation", "postgresql", "mosquitto", "gcc", "libc6-dev"}
    assert wanted <= set(_system_packages())
    installs = [line for line in MAKEFILE.splitlines() if "apt-get install" in line]
    assert installs
    assert all("--no-install-recommends" in line for line in installs)


def test_make_test_runs_the_whole_suite_after_the_set_up() -> None:
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "test"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout  # under `make test` itself, make would otherwise add "make[1]: ..." lines
    assert "apt-get install -y -qq --no-install-recommends chromium" in dry
    assert dry.strip().splitlines()[-1].endswith("python -m pytest")
