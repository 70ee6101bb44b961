"""The command line: parses arguments, calls one api entry point, prints through report."""

from hwsim.cli.main import main

__all__ = ["main"]
