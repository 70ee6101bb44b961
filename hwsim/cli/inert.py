"""Options given where they would not act, and options that conflict, refused by name before
anything runs (`refuse_inert`): the first check of a command, before its paths are looked at and
before any stage loads.

Loads no stage (neither torch nor numba), like `hwsim.cli.parser`.
"""

from __future__ import annotations

import argparse

from hwsim.errors import InputError

DEVICE_OPTIONS = ("first_layer", "variation_sigma", "sa0_rate", "sa1_rate", "device_seed")
"""What run and sweep read only with --hardware functional (the chip's crossbars)."""
GEOMETRY_OPTIONS = ("net", "input", "classes", "width")
"""What map and estimate read only without --model (an untrained zoo geometry)."""


def given(args: argparse.Namespace) -> frozenset[str]:
    """The options given on the command line (`hwsim.cli.main.given_options`)."""
    return getattr(args, "given", frozenset())


def _refuse(message: str, *params: str) -> InputError:
    return InputError(message, params=params)


def refuse_inert(args: argparse.Namespace) -> None:
    """Refuse, before anything runs, an option given where it would not act (it needs
    another one, or the command's other options make it moot) and options that conflict."""
    said = given(args)
    hardware = getattr(args, "hardware", None)
    if args.command in ("run", "sweep") and hardware != "functional":
        for name in DEVICE_OPTIONS:
            if name in said:
                raise _refuse(
                    f"{{{name}}} sets the chip's crossbars, which only {{hardware}} functional"
                    " simulates; add {hardware} functional or leave it out",
                    name,
                    "hardware",
                )
    if hardware == "functional":  # the mapped chip's simulation, not the IF engine
        for name in ("backend", "threads"):
            if name in said:
                raise _refuse(
                    f"{{{name}}} chooses how the IF engine runs, and {{hardware}} functional"
                    " simulates on the mapped chip instead; leave it out",
                    name,
                    "hardware",
                )
    elif "threads" in said and getattr(args, "backend", None) == "torch":
        raise _refuse(
            "{threads} sets the numba engine's threads; {backend} torch uses torch's own (set"
            " OMP_NUM_THREADS), so leave it out",
            "threads",
            "backend",
        )
    if "seed" in said and args.command in ("run", "sweep", "trace", "tune") and not _poisson(args):
        raise _refuse(
            "{seed} seeds Poisson input spikes, and no {coding} here is poisson; leave it"
            " out (or add {coding} poisson)",
            "seed",
            "coding",
        )
    if args.command in ("map", "estimate") and args.model is not None:
        for name in GEOMETRY_OPTIONS:
            if name in said:
                raise _refuse(
                    f"{{{name}}} describes an untrained geometry; with {{model}} the model file"
                    " gives the network, so leave it out",
                    name,
                    "model",
                )
    if args.command == "run" and args.trace is not None and "images" in said:
        raise _refuse(
            "{images} with {test_trace}: the given trace brings its own test images; leave"
            " {images} out",
            "images",
            "test_trace",
        )
    if args.command == "sweep":
        dask = args.executor == "dask"
        if "workers" in said and (not dask or args.scheduler is not None):
            raise _refuse(
                "{workers} sizes the local Dask cluster that {executor} dask starts without"
                " {scheduler} (an existing cluster has its own workers); leave it out",
                "workers",
                "executor",
                "scheduler",
            )
        if "wait_workers" in said and (not dask or args.scheduler is None):
            raise _refuse(
                "{wait_workers} waits for the workers of an existing cluster: give it with"
                " {executor} dask and {scheduler}",
                "wait_workers",
                "executor",
                "scheduler",
            )
    if args.command == "explore":
        _refuse_explore(args, said)
    if args.command == "functional" and {"full_scale", "full_scale_levels"} <= said:
        raise _refuse(
            "{full_scale} and {full_scale_levels} both set the ADC full scale; give one",
            "full_scale",
            "full_scale_levels",
        )


def _refuse_explore(args: argparse.Namespace, said: frozenset[str]) -> None:
    """Explore's search options given to a search that does not read them."""
    kind = args.search.partition(":")[0]
    if "population" in said and kind != "nsga2":
        raise _refuse(
            f"{{population}} is NSGA-II's generation size, and {{search}} {args.search} is no"
            " NSGA-II search; leave it out (or give {search} nsga2:N)",
            "population",
            "search",
        )
    if "search_seed" in said and kind == "grid":
        raise _refuse(
            "{search_seed} seeds a random or NSGA-II search, and {search} grid draws nothing;"
            " leave it out (or give {search} random:N or nsga2:N)",
            "search_seed",
            "search",
        )


def _poisson(args: argparse.Namespace) -> bool:
    """Whether a --coding of the command is Poisson (what --seed seeds)."""
    return any(c.partition(":")[0] == "poisson" for c in codings(args))


def codings(args: argparse.Namespace) -> list[str]:
    """--coding as a list (sweep takes several)."""
    return args.coding if isinstance(args.coding, list) else [args.coding]
