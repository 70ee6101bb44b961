"""How an exploration chooses its points: the whole grid, a uniform random sample of it, or
NSGA-II (Deb et al., IEEE TEC 2002) through optuna's `NSGAIISampler` (the `explore` extra) for
spaces too large for a grid. Every choice is a tuple of indices into the dimensions' values, so
the search knows nothing of architectures; seeds are recorded with the results.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from hwsim.errors import InputError

OPTUNA_HINT = "pip install 'hwsim[explore]' (optuna)"

Choice = tuple[int, ...]
"""One index per dimension."""
BatchFn = Callable[[list[Choice]], list[tuple[float, ...] | None]]
"""Evaluates a batch of choices: their objective values (minimised), None where infeasible."""


class SearchKind(StrEnum):
    GRID = "grid"
    RANDOM = "random"
    NSGA2 = "nsga2"


@dataclass(frozen=True)
class Search:
    """A search: its kind, its number of points (random, nsga2: trials) and its seed."""

    kind: SearchKind = SearchKind.GRID
    n: int | None = None
    seed: int = 0
    population: int = 20  # NSGA-II's generation size

    @classmethod
    def parse(cls, text: str, seed: int = 0) -> Search:
        """`grid`, `random:N` or `nsga2:N`."""
        name, sep, arg = text.partition(":")
        try:
            kind = SearchKind(name)
        except ValueError:
            kind = None
        n = None
        if sep:
            try:
                n = int(arg)
            except ValueError:
                n = 0
        bad = kind is None or (kind is SearchKind.GRID) == bool(sep) or (n is not None and n < 1)
        if bad:
            raise InputError(
                f"{{search}} {text!r}: expected grid, random:N or nsga2:N (N >= 1 points)",
                params=("search",),
            )
        assert kind is not None
        return cls(kind, n, seed)

    def check(self) -> None:
        """Refuse NSGA-II without optuna installed, before any work."""
        if self.kind is SearchKind.NSGA2 and importlib.util.find_spec("optuna") is None:
            raise InputError(
                f"{{search}} nsga2 needs optuna's NSGA-II sampler: {OPTUNA_HINT}",
                params=("search",),
            )

    def __str__(self) -> str:
        return str(self.kind) if self.n is None else f"{self.kind}:{self.n}"


def nsga2(
    sizes: Sequence[int], objectives: int, trials: int, batch: BatchFn, seed: int, population: int
) -> list[Choice]:
    """Run optuna's NSGA-II over the grid of `sizes` (one categorical parameter per dimension)
    for `trials` trials, `population` asked and told at a time (so a batch can run in
    parallel); infeasible choices are told as failed. Returns the choices in trial order
    (repeats included: the caller's store makes them free)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    study = optuna.create_study(directions=["minimize"] * objectives, sampler=sampler)
    chosen: list[Choice] = []
    while len(chosen) < trials:
        asked = [study.ask() for _ in range(min(population, trials - len(chosen)))]
        choices = [
            tuple(t.suggest_categorical(f"d{i}", list(range(n))) for i, n in enumerate(sizes))
            for t in asked
        ]
        for trial, values in zip(asked, batch(choices), strict=True):
            if values is None or not all(math.isfinite(v) for v in values):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, list(values))
        chosen += choices
    return chosen
