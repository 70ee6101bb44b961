"""The command line's names for the API's parameters, used when an error is printed.

An `HwsimError` names the parameters it is about (`HwsimError.params`); the command line prints
each as the flag that sets it. `FLAGS` is the one table of those names: every parameter that
an error of hwsim names has its flag here (tests/test_cli.py checks the source for it).
"""

from __future__ import annotations

from hwsim.errors import HwsimError

FLAGS: dict[str, str] = {
    "adc_bits": "--adc-bits",
    "arch": "--arch",
    "backend": "--backend",
    "batch_size": "--batch-size",
    "calibration_images": "--calibration-images",
    "cells_per_weight": "--cells-per-weight",
    "coding": "--coding",
    "data_root": "--data-root",
    "dataset": "--dataset",
    "executor": "--executor",
    "fc_output": "--fc-output",
    "folds": "--tune-on cross-fit:K, K =",
    "hardware": "--hardware",
    "ic": "--ic",
    "ic_positions": "--ic-positions",
    "images": "--images",
    "lr": "--lr",
    "model": "--model",
    "out": "--out",
    "scheduler": "--scheduler",
    "seed": "--seed",
    "test_trace": "--trace",
    "timesteps": "--timesteps",
    "timing": "--timing",
    "trace_root": "--traces",
    "tune_images": "--tune-images",
    "tune_on": "--tune-on",
    "v0": "--v0",
    "validation": "--validation",
    "variation_sigma": "--variation-sigma",
}
"""API parameter -> the command-line flag that sets it."""


def message(error: BaseException) -> str:
    """The error's message as the command line says it: parameters named by their flags."""
    if isinstance(error, HwsimError):
        return error.render(FLAGS)
    return str(error)
