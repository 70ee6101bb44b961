"""The expected failures of hwsim: one small hierarchy under `HwsimError`.

Every message names the file, key, parameter or value and what was expected. The library names
its own parameters (`images`, `arch`, `timesteps`); the command line maps them to its flags
(`hwsim.cli.errors`). The command line turns an `HwsimError` (and an `OSError`, which names its
path) into one message on stderr and exit status 2; anything else is a bug, reported in one line
with a request to report it and a hint to rerun with `--debug` for the traceback.

Each class is also a `ValueError`, so a notebook that catches ValueError keeps working; the
command line never catches a plain ValueError (that is a bug).
"""


class HwsimError(ValueError):
    """Base of every expected failure; use a subclass to say which input is wrong."""


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
