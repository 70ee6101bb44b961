"""The entry points of hwsim, for a notebook and the command line alike (one per command).

`run` evaluates one IC of a model on an architecture (tuning and test traces, every method's
accuracy and energy curves, the chip cycle by cycle); `sweep` the IC positions of one model and
`sweep_grid` a grid of models x architectures x codings x IC positions; `tune`, `trace`,
`estimate`, `map`, `functional` (the co-design sweep of the hardware-functional mode),
`export`, `convert` and `train` do one job each; `profile` gives a network's energy, latency,
area and spike rates on a chip in one call (a NIR graph or file, a peer's torch module, a
checkpoint). Every function takes typed values (configs
in `hwsim.pipeline.config`), checks them before simulating anything, and returns a typed
result (`hwsim.results`) that `hwsim.report` prints, writes and plots. Errors are
`hwsim.errors` classes naming the API's parameters.

By concern: `hwsim.api.evaluation` (what simulates images and evaluates methods),
`hwsim.api.chip` (what describes a chip) and `hwsim.api.model` (what writes a model); the
configuration types a call takes are re-exported here.
"""

from hwsim.api.chip import ablation, calibrate, estimate, functional, map, profile
from hwsim.api.evaluation import explore, run, sweep, sweep_grid, trace, tune
from hwsim.api.model import convert, export, train
from hwsim.explore.run import ExploreConfig
from hwsim.pipeline.config import (
    CodesignConfig,
    EvaluationConfig,
    RunConfig,
    SimConfig,
    SweepConfig,
)
from hwsim.pipeline.grid import Executor, GridConfig
from hwsim.pipeline.session import Session

__all__ = [
    "CodesignConfig",
    "EvaluationConfig",
    "Executor",
    "ExploreConfig",
    "GridConfig",
    "RunConfig",
    "Session",
    "SimConfig",
    "SweepConfig",
    "ablation",
    "calibrate",
    "convert",
    "estimate",
    "explore",
    "export",
    "functional",
    "map",
    "profile",
    "run",
    "sweep",
    "sweep_grid",
    "trace",
    "train",
    "tune",
]
