"""The command line's entry point (`hwsim --help`): parse, check, run one command, report its
failure.

A --config file's options are read as if given before the command's own flags (`hwsim.cli.
config`). Before a command runs, packaged names are resolved (`paths.resolve_names`), its
options checked for ones that would not act (`inert.refuse_inert`), its inputs to be there
(`paths.check_inputs`) and the data files its model reads (`paths.check_data`), all before
torch or numba load, so that a wrong option or path fails at
once, as are outputs that would touch an input (`paths.check_paths`).

Every expected failure (an `HwsimError`: bad input, a model, data or configuration that
cannot be used; an `OSError`, which names its path) is one message on stderr and exit status 2,
with the API's parameters named by their flags (`hwsim.cli.errors`), also under `--debug`
(which adds the traceback). Anything else is a bug in hwsim: one line asking to report it,
exit status 1; `--debug` raises it with its traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape

from hwsim.cli import paths
from hwsim.cli.config import with_config
from hwsim.cli.errors import message
from hwsim.cli.inert import refuse_inert
from hwsim.cli.parser import build_parser
from hwsim.errors import HwsimError
from hwsim.report.console import FittingConsole

__all__ = ["build_parser", "main"]


def given_options(argv: list[str]) -> frozenset[str]:
    """The options given on the command line (their `dest`s), told apart from defaults by
    parsing `argv` again with every default suppressed."""
    parser = build_parser()
    stack = [parser]
    while stack:
        q = stack.pop()
        for action in q._actions:  # argparse has no public walk over a parser's actions
            if isinstance(action, argparse._SubParsersAction):
                stack += list(action.choices.values())
            elif action.option_strings:
                action.default = argparse.SUPPRESS
    return frozenset(vars(parser.parse_args(argv))) - {"command"}


def _command(command: str) -> Callable[[argparse.Namespace, Console], None]:
    """The command's handler (its module loads the stages, but `hwsim cache`'s)."""
    if command == "cache":
        from hwsim.cli.cache import cmd_cache

        return cmd_cache
    from hwsim.cli.commands import COMMANDS

    return COMMANDS[command]


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status (0 done, 2 refused, 1 a bug, 130 interrupted)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    console, errors = FittingConsole(quiet=args.quiet), Console(stderr=True)
    try:
        argv = with_config(argv, args, parser)
        args = parser.parse_args(argv)
        args.given = given_options(argv)
        paths.resolve_names(args)
        refuse_inert(args)
        paths.check_inputs(args)
        paths.check_data(args)
        paths.check_paths(args)
        _command(args.command)(args, console)
    except (HwsimError, OSError) as e:
        if args.debug:
            traceback.print_exc()
        errors.print(f"[bold red]error:[/] {escape(message(e))}", highlight=False)
        return 2
    except KeyboardInterrupt:
        errors.print("[yellow]interrupted[/]")
        return 130
    except Exception as e:
        if args.debug:
            raise
        errors.print(
            f"[bold red]internal error:[/] {type(e).__name__}: {escape(str(e))} (a bug in hwsim:"
            " please report it, with the traceback that --debug shows)",
            highlight=False,
        )
        return 1
    return 0
