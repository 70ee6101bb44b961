"""Cycle-level simulation of the mapped chip: a discrete-event model, in clock cycles, of PEs,
neuron units, input buffers with back-pressure, a mesh NoC with link contention and router
buffers, and the fusion unit, over a stream of images with their own activity
(`hwsim.hw.sim.simulate`, the chip's resources in `hwsim.hw.sim.chip`)."""

from hwsim.hw.sim.chip import ChipModel, chip_model, input_buffer_timesteps
from hwsim.hw.sim.simulate import (
    STALL_CAUSES,
    ChipRun,
    RowsFn,
    StreamedWorkload,
    Workload,
    percentile,
    simulate,
)

__all__ = [
    "STALL_CAUSES",
    "ChipModel",
    "ChipRun",
    "RowsFn",
    "StreamedWorkload",
    "Workload",
    "chip_model",
    "input_buffer_timesteps",
    "percentile",
    "simulate",
]
