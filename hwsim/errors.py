"""The expected failures of hwsim: one small hierarchy under `HwsimError`.

Every message names the file, key, parameter or value and what was expected. The library names
its own parameters (`images`, `arch`, `timesteps`); the command line maps them to its flags
(`hwsim.cli.errors`). The command line turns an `HwsimError` (and an `OSError`, which names its
path) into one message on stderr and exit status 2; anything else is a bug, reported in one line
with a request to report it and a hint to rerun with `--debug` for the traceback.

Each class is also a `ValueError`, so a notebook that catches ValueError keeps working; the
command line never catches a plain ValueError (that is a bug).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class HwsimError(ValueError):
    """Base of every expected failure; use a subclass to say which input is wrong.

    A message may name API parameters as `{name}` placeholders, each listed in `params`:
    `str(error)` writes them as the parameters' own names (`images 5000: ...`), `render` in
    another spelling (the command line's flags, `--images 5000: ...`). A placeholder is
    replaced literally, never through `str.format`, so the rest of the message may hold braces.
    """

    def __init__(self, message: str = "", *, params: Sequence[str] = ()) -> None:
        self.template = message
        self.params = tuple(params)
        super().__init__(self.render({}))

    @property
    def param(self) -> str | None:
        """The parameter the error is about (the first one named), if any."""
        return self.params[0] if self.params else None

    def render(self, names: Mapping[str, str]) -> str:
        """The message with each parameter spelt as `names` gives it (default: its own name)."""
        text = self.template
        for p in self.params:
            text = text.replace("{" + p + "}", names.get(p, p))
        return text


class InputError(HwsimError):
    """A value given to an API entry point or command is out of range or conflicts with another."""


class ConfigError(HwsimError):
    """An architecture YAML, run configuration or measurement file that cannot be used."""


class ModelError(HwsimError):
    """A checkpoint or NIR file that cannot be read, or a network hwsim cannot map."""


class DataError(HwsimError):
    """A data set, trace or cached file that is missing, corrupt or inconsistent with its key."""


class OutputError(HwsimError):
    """An output path that would overwrite an input or a file hwsim did not write, or cannot be
    written."""
