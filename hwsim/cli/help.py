"""How `hwsim --help` and `hwsim COMMAND --help` read: every option's default after its help
text, and one example per command below its options.

Loads no stage (only argparse), like `hwsim.cli.parser`.
"""

from __future__ import annotations

import argparse

EXAMPLES: dict[str, str] = {
    "train": "hwsim train --net vgg19 --dataset mnist5k --width 0.125 --ic all --epochs 20"
    " --validation 1000 --out runs/vgg19.pt",
    "convert": "hwsim convert --model vgg19 --out runs/vgg19_snn.pt",
    "run": "hwsim run --arch spikesim --model vgg19 --images 200 --timesteps 300 --out runs/latest",
    "trace": "hwsim trace --model vgg19 --timesteps 300 --split test --images 100 --out runs/trace",
    "tune": "hwsim tune --model vgg19 --ic 8 --timesteps 300",
    "sweep": "hwsim sweep --arch spikesim --model vgg19 --ic-positions 3:14 --out runs/sweep",
    "map": "hwsim map --arch spikesim --model vgg19 --out runs/map",
    "explore": "hwsim explore --arch spikesim --model vgg19 --vary crossbar.rows=64,128,256"
    ' --vary adc.bits=3:8 --ic-positions 4,8 --constraint "area_mm2<=20" --images 200'
    " --timesteps 100 --out runs/explore",
    "functional": "hwsim functional --arch spikesim --model vgg19"
    " --adc-bits 3:8 --images 100 --out runs/functional",
    "estimate": "hwsim estimate --arch spikesim --net vgg19 --input 3x32x32 --classes 10 --ic 5",
    "export": "hwsim export --model vgg19 --out vgg19.nir",
    "calibrate": "hwsim calibrate --arch spikesim --measurements m.csv"
    " --free energy_pj.adc=0:10 --out calibrated.yaml",
    "report": "hwsim report runs/latest --html",
    "cache": "hwsim cache prune --older-than 30d --max-size 2G --yes",
    "ablation": "hwsim ablation --arch spikesim_chip --net vgg19 --input 3x32x32"
    " --classes 10 --out runs/ablation",
}
"""One command line per command, shown under "example:" in its --help."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's help with "(default: X)" after every option that has a default (not for
    flags, options whose default is None, or help that already says its default), and the
    epilog (the example) kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            default is None
            or default is False
            or default is argparse.SUPPRESS
            or not action.option_strings
            or "default" in text
        ):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else default
        return f"{text} (default: {str(shown).replace('%', '%%')})"


def example(command: str) -> str:
    """The epilog of a command's --help: its example."""
    return f"example:\n  {EXAMPLES[command]}"


def finish(subparsers: dict[str, argparse.ArgumentParser]) -> None:
    """Give every command's parser the defaults-showing formatter and its example."""
    for name, q in subparsers.items():
        q.formatter_class = HelpFormatter
        q.epilog = example(name)
