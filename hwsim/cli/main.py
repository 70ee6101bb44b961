"""The command line's entry point (`hwsim --help`): parse, check, run one command, report its
failure.

Before a command runs, its options are checked for ones that would not act (`options.
refuse_inert`) and its paths for outputs that would touch an input (`paths.check_paths`).
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

from rich.console import Console
from rich.markup import escape

from hwsim.cli.errors import message
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


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status (0 done, 2 refused, 1 a bug, 130 interrupted)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.given = given_options(argv)
    console, errors = FittingConsole(quiet=args.quiet), Console(stderr=True)
    try:
        from hwsim.cli import options, paths  # options loads the stages: only when one runs

        options.refuse_inert(args)
        paths.check_paths(args)
        from hwsim.cli.commands import COMMANDS

        COMMANDS[args.command](args, console)
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
