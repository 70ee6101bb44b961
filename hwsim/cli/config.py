"""`--config FILE`: a command's options from a YAML file, and the configuration a run used
written beside its outputs (`config.yaml`), so that `hwsim run --config OUT/config.yaml --out
NEW` repeats it.

The file is a mapping from option names (the long flags without `--`: `timesteps: 200`,
`batch-size: 100`; `_` reads as `-`) to values: a number or a text; `true`/`false` for flags; a
list for options that take several values; `null` for the default. Its options are read as if
given on the command line before the command's own flags, so a flag given there wins, and each
value is checked by the same rules as the flag. A key that is not an option of the command is
refused by name (exit 2). Paths in the file are read as on the command line (relative to the
working directory); the file hwsim writes holds absolute ones.

Loads no stage (only yaml), like `hwsim.cli.parser`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from hwsim import __version__
from hwsim.errors import ConfigError, InputError

CONFIG_FILE = "config.yaml"
"""The configuration a run used, written into its output folder."""
NOT_OPTIONS = ("help", "config")
"""Flags a configuration file cannot hold."""
WHERE_AND_HOW = ("out", "summary", "quiet", "debug")
"""Options that say where a run writes and what it prints, not what it computes: left out of
the configuration hwsim writes (a repeat names its own --out)."""
PATH_OPTIONS = ("arch", "base", "model", "trace", "data-root", "traces", "measurements")
"""Options that name files or folders: written as absolute paths."""
MAX_CONFIG_BYTES = 1 << 20


def options_of(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """A command's options by their long name without `--` (`batch-size`)."""
    out = {}
    for action in parser._actions:  # argparse has no public walk over a parser's actions
        longs = [s for s in action.option_strings if s.startswith("--")]
        if longs and longs[0][2:] not in NOT_OPTIONS:
            out[longs[0][2:]] = action
    return out


class _KeysAsWritten(yaml.SafeLoader):
    """PyYAML's safe loader, but a plain mapping key stays the text written: YAML 1.1 reads
    `yes`, `no`, `on` and `off` as booleans, and `yes` is an option of hwsim cache."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
        return {
            k.value
            if isinstance(k, yaml.ScalarNode)
            else self.construct_object(k, deep=deep): self.construct_object(v, deep=deep)
            for k, v in node.value
        }


def read_config(path: Path, command: str) -> dict:
    """The mapping in a configuration file; ConfigError naming the file if it is no mapping."""
    if not path.exists():
        raise InputError(f"{{config}} {path}: no such file or folder", params=("config",))
    if not path.is_file():
        raise InputError(f"{{config}} {path}: not a file; expected a YAML file", params=("config",))
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{{config}} {path}: larger than 1 MiB", params=("config",))
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_KeysAsWritten)  # noqa: S506
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{{config}} {path}: not valid YAML ({e})", params=("config",)) from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ConfigError(
            f"{{config}} {path}: expected a mapping of option names to values", params=("config",)
        )
    named = data.pop("command", command)
    if named != command:
        raise ConfigError(
            f"{{config}} {path}: written for hwsim {named}, not hwsim {command}",
            params=("config",),
        )
    return {k.replace("_", "-"): v for k, v in data.items()}


def _scalar(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _tokens(flag: str, action: argparse.Action, value: object, path: Path) -> list[str]:
    """The command-line tokens that give `value` to `action` (`flag`)."""

    def bad(expected: str) -> ConfigError:
        return ConfigError(
            f"{{config}} {path}: {flag[2:]}: {value!r} is not {expected}", params=("config",)
        )

    if action.nargs == 0:  # a flag
        if not isinstance(value, bool):
            raise bad("true or false")
        return [flag] if value else []
    many = action.nargs in ("+", "*") or isinstance(action, argparse._AppendAction)
    values = value if many and isinstance(value, list) else [value]
    if not values or not all(_scalar(v) for v in values):
        raise bad("a list of numbers or texts" if many else "a number or a text")
    for v in values:
        _check_value(action, v, f"{{config}} {path}: {flag[2:]}")
    if isinstance(action, argparse._AppendAction):
        return [t for v in values for t in (flag, str(v))]
    return [flag, *(str(v) for v in values)]


def _check_value(action: argparse.Action, value: object, where: str) -> None:
    """Check one value as argparse would (no leading '-', the option's type and choices), so
    that a bad one is named with the file and key rather than as a bare flag."""
    text = str(value)
    if isinstance(value, str) and text.startswith("-"):  # a YAML number may be negative
        raise ConfigError(
            f"{where}: {text!r} starts with '-', which reads as an option", params=("config",)
        )
    try:
        typed = action.type(text) if callable(action.type) else text
    except (argparse.ArgumentTypeError, ValueError, TypeError) as e:
        raise ConfigError(f"{where}: {e}", params=("config",)) from None
    if action.choices is not None and typed not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise ConfigError(f"{where}: {text!r}: expected one of {choices}", params=("config",))


def config_tokens(path: Path, command: str, parser: argparse.ArgumentParser) -> list[str]:
    """The options of the configuration file `path` for `command` as command-line tokens.
    Values equal to the option's default are left out (they count as not given)."""
    data = read_config(path, command)
    actions = options_of(parser)
    unknown = sorted(set(data) - set(actions))
    if unknown:
        raise ConfigError(
            f"{{config}} {path}: {', '.join(map(repr, unknown))} is no option of hwsim {command}"
            f" (options: {', '.join(sorted(actions))})",
            params=("config",),
        )
    tokens = []
    for name, value in data.items():
        action = actions[name]
        if value is None or value == action.default:
            continue
        tokens += _tokens(f"--{name}", action, value, path)
    return tokens


def with_config(
    argv: list[str], args: argparse.Namespace, parser: argparse.ArgumentParser
) -> list[str]:
    """`argv` with the options of its --config file inserted right after the command name, so
    that the command line's own flags, parsed after them, win."""
    if getattr(args, "config", None) is None:
        return argv
    at = argv.index(args.command)  # the first word that is no option (global ones take none)
    tokens = config_tokens(Path(args.config), args.command, subparser(parser, args.command))
    return [*argv[: at + 1], *tokens, *argv[at + 1 :]]


def subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The sub-parser of `command`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]
    raise KeyError(command)


def used_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """Every option of the command as it acted (defaults included), paths absolute; without the
    options that say only where to write and what to print (`WHERE_AND_HOW`)."""
    out: dict = {"command": args.command}
    for name, action in options_of(subparser(parser, args.command)).items():
        if name in WHERE_AND_HOW or not hasattr(args, action.dest):
            continue
        value = getattr(args, action.dest)
        if name in PATH_OPTIONS and value is not None:
            value = (
                [str(Path(v).absolute()) for v in value]
                if isinstance(value, list)
                else str(Path(value).absolute())
            )
        out[name] = value
    return out


def write_config(args: argparse.Namespace, parser: argparse.ArgumentParser, folder: Path) -> Path:
    """Write the configuration the command used into `folder` (`CONFIG_FILE`)."""
    path = Path(folder) / CONFIG_FILE
    head = (
        f"# hwsim {__version__}: the configuration of this hwsim {args.command}; repeat it with"
        f"\n#   hwsim {args.command} --config THIS_FILE --out NEW_FOLDER\n"
    )
    path.write_text(head + yaml.safe_dump(used_config(args, parser), sort_keys=False))
    return path


def add_config(args: argparse.Namespace, parser: argparse.ArgumentParser, folder: Path) -> Path:
    """Write the configuration into an output folder hwsim has written already (sweep,
    explore), listed in its manifest first so that a rerun replaces it with the rest."""
    from hwsim.atomic import record_outputs

    record_outputs(Path(folder), [CONFIG_FILE])
    return write_config(args, parser, folder)
