"""The ``tether`` command line.

Example::

    $ tether worker --engine tcp://10.0.0.5:7701 --queue python_tool --modules my_tools

``main(argv)`` returns the exit status, so it can be called from tests and other programs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tether.cli import (
    agents_command,
    artifacts_command,
    audit_command,
    deploy_command,
    dev_command,
    engine_commands,
    keys_command,
    memory_command,
    time_travel_commands,
    worker_command,
)

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="tether", description="Tether: durable execution for AI agents and workflows."
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="print the version")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    dev_command.add_parser(commands)
    deploy_command.add_parser(commands)
    engine_commands.add_parsers(commands)
    time_travel_commands.add_parsers(commands)
    worker_command.add_parser(commands)
    agents_command.add_parser(commands)
    keys_command.add_parser(commands)
    audit_command.add_parser(commands)
    memory_command.add_parser(commands)
    artifacts_command.add_parser(commands)
    return parser


class _VersionAction(argparse.Action):
    """argparse's ``version`` action with the version looked up when asked for: reading the
    installed metadata (importlib.metadata) was ~4% of a cold ``tether dev``'s imports."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        print(f"tether {_version()}")  # to stdout, as argparse's own version action
        parser.exit()


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("tether")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tether`` command with ``argv`` (default ``sys.argv[1:]``); the exit status.

    Example::

        raise SystemExit(main(["worker", "--engine", "tcp://127.0.0.1:7701",
                               "--modules", "my_tools"]))
    """
    parser = build_parser()
    # argparse exits with 2 and one usage line on bad arguments, which is what we want.
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    status: int = args.run(args)
    return status
