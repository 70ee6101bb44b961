"""`hwsim --help` and `hwsim COMMAND --help`: every option described, every default shown, one
example per command that the parser itself accepts, and `hwsim --version`."""

import argparse
import re
import shlex

import pytest

import hwsim
from hwsim.cli.help import EXAMPLES
from hwsim.cli.main import build_parser, main

PARSER = build_parser()
SUBPARSERS: dict[str, argparse.ArgumentParser] = next(
    a.choices for a in PARSER._actions if isinstance(a, argparse._SubParsersAction)
)


def help_text(capsys, monkeypatch, *argv: str) -> str:
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return unwrap(capsys.readouterr().out)


def unwrap(text: str) -> str:
    """argparse's line breaks undone (also those after a hyphen, as in a path's name)."""
    return re.sub(r"-\s+", "-", " ".join(text.split()))


def test_every_command_has_an_example():
    assert set(SUBPARSERS) == set(EXAMPLES)


@pytest.mark.parametrize("command", sorted(SUBPARSERS))
def test_help_describes_every_option_with_its_default_and_an_example(command, capsys, monkeypatch):
    text = help_text(capsys, monkeypatch, command)
    for action in SUBPARSERS[command]._actions:
        if not action.option_strings or action.default == argparse.SUPPRESS:
            continue  # --help
        name = action.option_strings[0]
        assert action.help, f"{command} {name} has no help text"
        default = action.default
        if default is None or default is False:
            continue  # an optional value or a flag: its help says what leaving it out means
        shown = " ".join(map(str, default)) if isinstance(default, list) else str(default)
        own = unwrap(action.help.replace("%%", "%"))
        assert own in text and (f"(default: {shown})" in text or "default" in own), (
            f"{command} {name}: default {shown!r} not shown"
        )
    example = EXAMPLES[command]
    assert f"example: {example}" in text
    # the example is a command line this parser accepts, for this command
    args = PARSER.parse_args(shlex.split(example)[1:])
    assert args.command == command


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"hwsim {hwsim.__version__}"


def test_the_top_level_help_names_every_command_and_an_example(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert all(c in text for c in SUBPARSERS)
    assert "example:" in text and "--version" in text
