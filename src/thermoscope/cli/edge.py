"""``thermoscope edge``: run the edge agent beside a line, or check its configuration."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from thermoscope.cli.exits import ExitCode, fail
from thermoscope.edge import EdgeError
from thermoscope.edge.agent import Agent
from thermoscope.edge.config import AgentConfig, ConfigError, load_config
from thermoscope.edge.outbox import OutboxError
from thermoscope.edge.parts import RunSummary
from thermoscope.edge.sources import SourceError

edge_app = typer.Typer(
    help="The edge agent: inspect parts beside the line, talk to the PLC, MQTT and the server.",
    no_args_is_help=True,
)
console = Console()

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", help="The agent's configuration (YAML or JSON)."),
]


def _load(path: Path) -> AgentConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise fail(str(exc)) from None


@edge_app.command("check-config")
def check_config_command(config: ConfigOption) -> None:
    """Validate a configuration and load its recipe and model, without starting anything."""
    settings = _load(config)
    try:
        agent = Agent(settings)
    except EdgeError as exc:
        raise fail(str(exc)) from None
    model = agent.model
    console.print(
        f"{config}: ok: station {agent.name}, source {settings.source.kind}, trigger "
        f"{settings.trigger.kind}, plc {settings.plc.kind}, recipe "
        f"{agent.recipe.name if agent.recipe else '-'} (checksum {agent.recipe_checksum:#06x}), "
        f"model {model.name + ' ' + model.version if model else '-'}",
        highlight=False,
    )


async def _run(agent: Agent) -> RunSummary:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, agent.stop)
    return await agent.run()


@edge_app.command("run")
def run_command(
    config: ConfigOption,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every part.")] = False,
) -> None:
    """Run the agent until its source ends or it is stopped (Ctrl-C, SIGTERM)."""
    settings = _load(config)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        agent = Agent(settings)
    except EdgeError as exc:
        raise fail(str(exc)) from None
    try:
        summary = asyncio.run(_run(agent))
    except (OutboxError, SourceError) as exc:  # a file or folder the configuration names
        raise fail(f"{config}: {exc}") from None
    except OSError as exc:
        raise fail(f"{config}: {exc}", ExitCode.UNAVAILABLE) from None
    except EdgeError as exc:
        raise fail(f"{config}: {exc}", ExitCode.UNAVAILABLE) from None
    counts = ", ".join(f"{verdict} {n}" for verdict, n in sorted(summary.verdicts.items()))
    console.print(
        f"{summary.parts} parts ({counts or 'none'}); {summary.errors} errors, "
        f"{summary.overruns} PLC overruns, {summary.unrecorded} not recorded",
        highlight=False,
    )
