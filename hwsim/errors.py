"""The one base class of every expected failure: bad input named by its file, key or option.

The command line turns an `HwsimError` into one message on stderr and exit status 2; anything
else is a bug, reported in one line with a hint to rerun with `--debug` for the traceback.
"""


class HwsimError(ValueError):
    """An input hwsim cannot use; the message names the file, key, option or value and what was
    expected. (A ValueError, so callers that catch ValueError keep working.)"""
