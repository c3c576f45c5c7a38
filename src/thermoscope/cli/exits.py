"""The exit codes every ``thermoscope`` command keeps (the table is in docs/cli.md)."""

from __future__ import annotations

from enum import IntEnum

import typer
from rich.markup import escape

from thermoscope.cli.batch import err_console


class ExitCode(IntEnum):
    """What a command's exit status means; the same for every command."""

    #: everything asked for was done.
    OK = 0
    #: a file or folder the command names (input, output, recipe, manifest, dataset) is missing,
    #: unreadable, unwritable or invalid, or a value does not fit it (a pixel outside the
    #: frame, a version the dataset lacks); with several inputs the others were still done.
    FAILED = 1
    #: the command line is wrong on its own (unknown command or option, a missing argument, a
    #: value that cannot be parsed or is out of range); nothing was read or written.
    USAGE = 2
    #: a resource outside the files is unavailable: ``serve`` cannot listen on its address
    #: (port taken, address not local), ``edge run`` cannot listen for its PLC or status page
    #: or reach its PLC.
    UNAVAILABLE = 3


def fail(message: str, code: ExitCode = ExitCode.FAILED) -> typer.Exit:
    """Print ``error: message`` on stderr; return the ``typer.Exit`` to raise."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code=int(code))


def usage(message: str) -> typer.Exit:
    """A bad command line (exit 2): print ``error: message`` and return the exit to raise."""
    return fail(message, ExitCode.USAGE)
