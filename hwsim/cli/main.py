"""The command line's entry point (`hwsim --help`): parse, run one command, report its failure.

Every expected failure (an `HwsimError`: bad input, a model, data or configuration that
cannot be used; an `OSError`, which names its path) is one message on stderr and exit status 2,
with the API's parameters named by their flags (`hwsim.cli.errors`). Anything else is a bug in
hwsim: one line asking to report it, exit status 1; `--debug` shows the traceback instead.
"""

from __future__ import annotations

from rich.console import Console

from hwsim.cli.errors import message
from hwsim.cli.parser import build_parser
from hwsim.errors import HwsimError
from hwsim.report.console import FittingConsole

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status (0 done, 2 refused, 1 a bug, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    console, errors = FittingConsole(quiet=args.quiet), Console(stderr=True)
    try:
        from hwsim.cli.commands import COMMANDS  # loads the stages: only when a command runs

        COMMANDS[args.command](args, console)
    except (HwsimError, OSError) as e:
        if args.debug:
            raise
        errors.print(f"[bold red]error:[/] {message(e)}", highlight=False)
        return 2
    except KeyboardInterrupt:
        errors.print("[yellow]interrupted[/]")
        return 130
    except Exception as e:
        if args.debug:
            raise
        errors.print(
            f"[bold red]internal error:[/] {type(e).__name__}: {e} (a bug in hwsim: please report"
            " it, with the traceback that --debug shows)",
            highlight=False,
        )
        return 1
    return 0
