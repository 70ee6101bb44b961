"""The command line's arguments: one sub-parser per command (`hwsim --help`).

Loading this module loads no stage (neither torch nor numba): the commands import them when
they run. Range checks of single values are argparse types (`int_in`, `real_in`), so a bad
value is refused before anything is loaded.
"""

from __future__ import annotations

import argparse
import math

from hwsim import __version__
from hwsim.cli.help import HelpFormatter, finish
from hwsim.hw.arch import EnergyModel
from hwsim.methods import EvidencePooling
from hwsim.model.data import DATASETS
from hwsim.model.netspec import NETS
from hwsim.model.nir_presets import CONVENTION_NAMES
from hwsim.model.packaged import CACHE_ENV, arch_names, cache_root, model_names

DEFAULT_ARCH = "spikesim"
"""The packaged architecture of run, sweep, map, ... (`hwsim.model.packaged`)."""
DEFAULT_CHIP = "spikesim_chip"
"""The packaged full chip of `hwsim ablation`."""
DEFAULT_MODEL = "vgg19"
"""The packaged trained model."""
GEOMETRY_MODEL = (
    "a checkpoint (or a packaged one by name) or NIR file (else --net/--input/--classes)"
)
MAX_TIMESTEPS = 1_000_000
MAX_IMAGES = 100_000_000


def int_in(lo: int, hi: int):
    """An argparse type: an integer in [lo, hi] (argparse names the option on failure)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is out of range; expected {lo}..{hi}")
        return value

    return parse


def real_in(lo: float, hi: float, *, open_lo: bool = False):
    """An argparse type: a finite number in [lo, hi] ((lo, hi] with open_lo)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        low_ok = value > lo if open_lo else value >= lo
        if not (math.isfinite(value) and low_ok and value <= hi):
            side = "(" if open_lo else "["
            raise argparse.ArgumentTypeError(f"{value} is out of range; expected {side}{lo}, {hi}]")
        return value

    return parse


AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
SIZE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _amount(text: str, units: dict[str, int], what: str) -> float:
    """A number with one of `units`' suffixes (case-insensitive) as that many base units."""
    body = text.strip()
    suffix = body[-1:].upper() if body[-1:].isalpha() else ""
    factor = {k.upper(): v for k, v in units.items()}.get(suffix)
    try:
        value = float(body[: len(body) - len(suffix)])
    except ValueError:
        value = math.nan
    if factor is None or not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value * factor


def age(text: str) -> float:
    """An argparse type: an age such as 30d, 12h, 45m, 90s or 2w, in seconds."""
    return _amount(text, AGE_UNITS, "an age like 30d, 12h, 45m or 90s")


def size(text: str) -> int:
    """An argparse type: a size such as 500M, 2G, 100K or a number of bytes, in bytes."""
    return int(_amount(text, SIZE_UNITS, "a size like 500M, 2G or a number of bytes"))


def timesteps_arg(q: argparse.ArgumentParser) -> None:
    """--timesteps (run, trace, tune, sweep, explore)."""
    q.add_argument(
        "--timesteps",
        type=int_in(1, MAX_TIMESTEPS),
        default=300,
        help="timesteps T each image is simulated for",
    )


def images_arg(q: argparse.ArgumentParser) -> None:
    """--images: test images of the split (run, trace, sweep, explore)."""
    q.add_argument("--images", type=int_in(1, MAX_IMAGES), help="images (default: the whole split)")


def target_arg(q: argparse.ArgumentParser) -> None:
    """--target: the target accuracy as a fraction of the ANN's."""
    q.add_argument(
        "--target",
        type=real_in(0, 1, open_lo=True),
        default=0.99,
        help="target accuracy, a fraction of the ANN's",
    )


def cache_args(q: argparse.ArgumentParser, results: bool = False) -> None:
    """--data-root, --traces and --no-cache (`results`: the result store lives in --traces
    too, as for explore)."""
    q.add_argument("--data-root", help="folder with MNIST IDX or CIFAR pickle files")
    q.add_argument(
        "--traces",
        default=str(cache_root()),
        help=f"trace cache folder, the same from every working directory (default: ${CACHE_ENV}"
        f" if set, else {cache_root()}); `hwsim cache list` shows what it holds"
        + ("; the result store is in it" if results else ""),
    )
    q.add_argument(
        "--no-cache",
        action="store_true",
        help="neither read nor write traces" + (" nor stored results" if results else ""),
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; `args.command` names the one given."""
    archs, models = ", ".join(arch_names()), ", ".join(model_names())
    arch_help = f"architecture: a YAML file, or a packaged one by name ({archs})"
    model_help = (
        f"trained checkpoint (.pt), or a packaged one by name ({models}; a bare name is looked"
        " for in models/ here first)"
    )
    p = argparse.ArgumentParser(
        prog="hwsim",
        description="SNN on RRAM compute-in-memory: accuracy, energy, fusion.",
        formatter_class=HelpFormatter,
        epilog="example:\n  hwsim run --arch spikesim --model vgg19 --images 200"
        "\n\n`hwsim COMMAND --help` shows a command's options, defaults and an example.",
    )
    p.add_argument("--version", action="version", version=f"hwsim {__version__}")
    p.add_argument("--debug", action="store_true", help="show the traceback of any error")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train an ANN with IC heads and write a checkpoint")
    t.add_argument("--net", choices=NETS, default="vgg19", help="network of the model zoo")
    t.add_argument("--dataset", choices=DATASETS, default="mnist5k", help="dataset trained on")
    t.add_argument(
        "--width", type=real_in(0, 4, open_lo=True), default=0.125, help="channel width multiplier"
    )
    t.add_argument("--ic", default="all", help="IC positions: all, none, N, N,M,... or N:M")
    t.add_argument("--epochs", type=int_in(1, 100_000), default=20, help="passes over the data")
    t.add_argument(
        "--batch-size", type=int_in(1, 1_000_000), default=64, help="images per SGD step"
    )
    t.add_argument(
        "--lr",
        type=real_in(0, 100, open_lo=True),
        default=0.05,
        help="peak learning rate (one-cycle SGD)",
    )
    t.add_argument(
        "--seed", type=int_in(0, 2**32 - 1), default=0, help="seed of initialisation and order"
    )
    t.add_argument("--data-root", help="folder with MNIST IDX or CIFAR pickle files")
    t.add_argument(
        "--validation",
        type=int_in(0, MAX_IMAGES),
        default=0,
        help="training images held out (never trained on) as the validation split that run,"
        " sweep and tune tune alpha and early exit on (0: none)",
    )
    t.add_argument("--out", help="checkpoint path (default models/NET_DATASET.pt)")

    c = sub.add_parser("convert", help="fold BN, normalise, and report the SNN's scales")
    c.add_argument("--model", default=DEFAULT_MODEL, help=model_help)
    c.add_argument(
        "--percentile",
        type=real_in(0, 100, open_lo=True),
        default=99.9,
        help="percentile of each layer's ANN activations taken as its scale lambda",
    )
    c.add_argument(
        "--max-images",
        type=int_in(1, MAX_IMAGES),
        default=5000,
        help="training images the activation percentiles are taken over",
    )
    c.add_argument("--v0", type=real_in(-1e6, 1e6), default=0.0, help="initial membrane potential")
    c.add_argument("--data-root", help="folder with MNIST IDX or CIFAR pickle files")
    c.add_argument("--out", help="write the converted weights here (.pt)")

    def geometry_args(q: argparse.ArgumentParser) -> None:
        """An untrained network of the zoo (map and estimate, without --model)."""
        q.add_argument("--net", choices=NETS, default="vgg19", help="network (without --model)")
        q.add_argument("--input", default="3x32x32", help="its input, CxHxW")
        q.add_argument("--classes", type=int_in(2, 100_000), default=10, help="its output classes")
        q.add_argument(
            "--width",
            type=real_in(0, 4, open_lo=True),
            default=1.0,
            help="channel width multiplier",
        )

    def nir_args(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--dataset",
            choices=DATASETS,
            help="NIR models only: the dataset whose images and classes the network reads",
        )
        q.add_argument(
            "--fc-output",
            help="NIR models only: the Output node of the final classifier (default: the"
            " deepest; the other Outputs are ICs)",
        )
        q.add_argument(
            "--convention",
            choices=CONVENTION_NAMES,
            help="NIR models only: whose neuron convention the file follows (default: the"
            " file's metadata, else hwsim's = sinabs'; docs/nir.md)",
        )

    def device_args(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--first-layer",
            choices=("bit_serial", "digital"),
            default="bit_serial",
            help="hardware-functional: the analog input as 8-bit bit-serial crossbar reads, or"
            " the first layer computed digitally",
        )
        q.add_argument(
            "--variation-sigma",
            type=real_in(0, 10),
            default=0.0,
            help="hardware-functional: lognormal conductance variation, std of ln G",
        )
        for rate, state in (("sa0", "G_off"), ("sa1", "G_on")):
            q.add_argument(
                f"--{rate}-rate",
                type=real_in(0, 1),
                default=0.0,
                help=f"hardware-functional: fraction of cells stuck at {state}",
            )
        q.add_argument(
            "--device-seed",
            type=int_in(0, 2**32 - 1),
            default=0,
            help="hardware-functional: seed of the variation and the faults",
        )

    def hardware_args(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--hardware",
            choices=("ideal", "functional"),
            default="ideal",
            help="ideal: the IF engine on the converted weights; functional: through the mapped"
            " chip's crossbars, ADCs (the YAML's bits and full scale), devices and faults",
        )
        device_args(q)

    def sim_args(q: argparse.ArgumentParser, images: bool = True, many: bool = False) -> None:
        q.add_argument(
            "--model",
            default=[DEFAULT_MODEL] if many else DEFAULT_MODEL,
            nargs="+" if many else None,
            help=model_help.removesuffix(")")
            + "); or a NIR file (.nir, with --dataset)"
            + ("; several: a grid" if many else ""),
        )
        nir_args(q)
        timesteps_arg(q)
        if images:
            images_arg(q)
        q.add_argument(
            "--batch-size", type=int_in(1, 1_000_000), default=250, help="images simulated at once"
        )
        q.add_argument(
            "--v0", type=real_in(-1e6, 1e6), default=0.0, help="initial membrane potential"
        )
        q.add_argument(
            "--coding",
            default=["direct"] if many else "direct",
            nargs="+" if many else None,
            help="direct, poisson or weighted:K" + ("; several: a grid" if many else ""),
        )
        q.add_argument(
            "--seed", type=int_in(0, 2**32 - 1), default=0, help="seed of Poisson input spikes"
        )
        q.add_argument(
            "--backend",
            choices=("numba", "torch"),
            default="numba",
            help="the IF engine: numba (CPU kernels) or torch (the reference)",
        )
        q.add_argument(
            "--threads", type=int_in(0, 1024), default=0, help="engine threads (0: all cores)"
        )
        cache_args(q)
        q.add_argument(
            "--emp-pooling",
            choices=[str(p) for p in EvidencePooling],
            default=str(EvidencePooling.JOINT),
            help="empirical Bayes: one alpha maximising the joint evidence, or the mean of"
            " per-entry maximisers (the reference code's procedure)",
        )

    def tuning_args(q: argparse.ArgumentParser, evaluate: bool = True) -> None:
        q.add_argument(
            "--estimator",
            choices=("mean", "map"),
            default="mean",
            help="fused estimate: posterior mean with the mean-E prior (the reference code), or"
            " the paper's eq. 29 MAP with the eq. 25-26 mode prior; empirical Bayes (eq. 30)"
            " uses the same prior",
        )
        q.add_argument(
            "--ties",
            default="fair",
            help="how a tied top class is credited, the same for every method: fair (1/k for a"
            " k-way tie that holds the label), wrong, first (the first tied class, argmax) or"
            " random[:SEED] (a tied class drawn per image and step)",
        )
        q.add_argument(
            "--tune-on",
            default="validation",
            help="images alpha, the LUT and early exit are tuned on: validation (the"
            " checkpoint's held-out split), train (biased)"
            + (", or cross-fit[:K] (K-fold on the test images, K = 5)" if evaluate else ""),
        )
        q.add_argument(
            "--tune-images",
            type=int_in(1, MAX_IMAGES),
            help="tune on the first N of those images (default: all)",
        )
        if evaluate:
            target_arg(q)
            q.add_argument(
                "--bootstrap",
                type=int_in(100, 1_000_000),
                default=1000,
                help="paired bootstrap resamples of the test images for the 90%% intervals",
            )

    r = sub.add_parser("run", help="simulate a checkpoint on an architecture and report")
    r.add_argument("--arch", default=DEFAULT_ARCH, help=arch_help)
    sim_args(r)
    r.add_argument(
        "--ic", type=int_in(0, 10_000), help="IC block (default: shallowest IC reaching the target)"
    )
    tuning_args(r)
    r.add_argument("--trace", help="use this test trace folder instead of simulating")
    r.add_argument(
        "--energy-model",
        choices=[str(m) for m in EnergyModel],
        help="override the architecture's: spikesim (every PE operation every step) or event"
        " (only the PE operations the spikes activate)",
    )
    hardware_args(r)
    r.add_argument(
        "--timing",
        choices=("cycle", "analytic"),
        help="cycle (default; analytic with --hardware functional): simulate the chip cycle by"
        " cycle per image (PEs, buffers, mesh NoC, fusion unit, early termination); analytic:"
        " the max-plus pipeline over mean activity",
    )
    r.add_argument("--out", default="runs/latest", help="output folder")

    tr = sub.add_parser("trace", help="simulate a dataset split and write its spike trace")
    sim_args(tr)
    tr.add_argument(
        "--split",
        choices=("train", "validation", "test"),
        default="test",
        help="the dataset split simulated",
    )
    tr.add_argument("--out", help="also write the trace to this folder")

    tu = sub.add_parser("tune", help="tune alpha(t) LUTs and early exit on validation images")
    sim_args(tu, images=False)
    tu.add_argument("--ic", help="IC positions (default: every IC of the checkpoint)")
    tuning_args(tu, evaluate=False)

    sw = sub.add_parser(
        "sweep", help="run across models x archs x codings x IC positions (resumable)"
    )
    sw.add_argument(
        "--arch", nargs="+", default=[DEFAULT_ARCH], help=arch_help + "; several: a grid"
    )
    sim_args(sw, many=True)
    sw.add_argument("--ic-positions", default="all", help="all, N:M or N,M,...")
    tuning_args(sw)
    sw.add_argument(
        "--energy-model",
        choices=[str(m) for m in EnergyModel],
        help="override the architecture's energy model (as run's --energy-model)",
    )
    hardware_args(sw)
    sw.add_argument("--out", default="runs/sweep", help="output folder")
    sw.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="local: cells one after the other here; dask: as tasks on a Dask cluster"
        " (pip install 'hwsim[dask]'; docs/distributed.md)",
    )
    sw.add_argument(
        "--scheduler",
        help="address of a running Dask scheduler (tcp://HOST:8786); default with --executor"
        " dask: a local cluster of worker processes",
    )
    sw.add_argument(
        "--workers",
        type=int_in(1, 1024),
        help="worker processes of the local Dask cluster (default: one per CPU)",
    )
    sw.add_argument(
        "--wait-workers",
        type=real_in(0, 86_400),
        help="with --scheduler: seconds to wait for the cluster's first worker (default 60)",
    )

    m = sub.add_parser("map", help="map a network onto crossbars, PEs, tiles and the mesh")
    m.add_argument("--arch", default=DEFAULT_ARCH, help=arch_help)
    m.add_argument("--model", help=GEOMETRY_MODEL)
    nir_args(m)
    geometry_args(m)
    m.add_argument("--ic", help="IC positions to map (default: the checkpoint's / none)")
    m.add_argument("--out", default="runs/map", help="output folder")

    f = sub.add_parser(
        "functional",
        help="co-design: FC accuracy and energy per inference on the chip against one knob",
    )
    f.add_argument("--arch", default=DEFAULT_ARCH, help=arch_help)
    f.add_argument("--model", default=DEFAULT_MODEL, help=model_help + "; or a NIR file (.nir)")
    nir_args(f)
    f.add_argument("--ic", type=int_in(0, 10_000), help="also simulate this IC head")
    f.add_argument(
        "--images", type=int_in(1, MAX_IMAGES), default=100, help="test images simulated"
    )
    f.add_argument(
        "--timesteps",
        type=int_in(1, MAX_TIMESTEPS),
        default=300,
        help="timesteps T each image is simulated for",
    )
    f.add_argument("--adc-bits", help="knob: ADC resolutions, N:M or N,M,... (default 3:8)")
    f.add_argument("--cells-per-weight", help="knob: cells (bit slices) per weight, N:M or N,...")
    f.add_argument("--variation-sigma", help="knob: lognormal variation sigmas, S,S,...")
    f.add_argument(
        "--full-scale",
        choices=("auto", "calibrated"),
        help="ADC full scale (default: the architecture file's)",
    )
    f.add_argument(
        "--full-scale-levels",
        type=real_in(0, 1e9, open_lo=True),
        help="an explicit ADC full scale, in cell levels (instead of --full-scale)",
    )
    f.add_argument(
        "--calibration-images",
        type=int_in(1, MAX_IMAGES),
        default=16,
        help="training images the calibrated full scale is set on",
    )
    f.add_argument(
        "--first-layer",
        choices=("bit_serial", "digital"),
        default="bit_serial",
        help="the analog input as 8-bit bit-serial crossbar reads, or computed digitally",
    )
    for rate, state in (("sa0", "G_off"), ("sa1", "G_on")):
        f.add_argument(
            f"--{rate}-rate",
            type=real_in(0, 1),
            default=0.0,
            help=f"fraction of cells stuck at {state}",
        )
    f.add_argument(
        "--device-seed",
        type=int_in(0, 2**32 - 1),
        default=0,
        help="seed of the variation and the faults",
    )
    f.add_argument("--data-root", help="folder with MNIST IDX or CIFAR pickle files")
    f.add_argument("--out", default="runs/functional", help="output folder")

    e = sub.add_parser("estimate", help="SpikeSim energy of an untrained geometry or a model")
    e.add_argument("--arch", default=DEFAULT_ARCH, help=arch_help)
    e.add_argument("--model", help=GEOMETRY_MODEL)
    nir_args(e)
    geometry_args(e)
    e.add_argument(
        "--ic", help="IC positions: none, N, N,M,... or N:M (default: the model's / none)"
    )
    e.add_argument("--out", default="runs/estimate", help="output folder")

    x = sub.add_parser("export", help="write the converted SNN as a NIR file (.nir)")
    x.add_argument("--model", default=DEFAULT_MODEL, help=model_help)
    x.add_argument("--ic", help="IC heads to export: all, none, N,M,... (default: all)")
    x.add_argument("--v0", type=real_in(-1e6, 1e6), default=0.0, help="must be 0 for NIR")
    x.add_argument("--data-root", help="folder with MNIST IDX or CIFAR pickle files")
    nir_args(x)
    x.add_argument(
        "--nir-target",
        choices=CONVENTION_NAMES,
        default="hwsim",
        help="the importer the file is written for (docs/nir.md)",
    )
    x.add_argument("--out", required=True, help="the NIR file to write (NAME.nir)")

    a = sub.add_parser(
        "ablation",
        help="each effect SpikeSim leaves out added in turn: latency and energy of one image",
        description="From SpikeSim's model (--base) to the chip --arch, add pipelining, partial"
        " sums, static power, off-chip I/O and the physical rest one at a time, and report one"
        " image's latency and energy at each step (every PE operation performed, neurons"
        " spiking at --spike-rate); writes ablation.csv.",
    )
    a.add_argument("--arch", default=DEFAULT_CHIP, help="the full chip; " + arch_help)
    a.add_argument("--base", default=DEFAULT_ARCH, help="SpikeSim's model; " + arch_help)
    a.add_argument("--model", help=GEOMETRY_MODEL)
    nir_args(a)
    geometry_args(a)
    a.add_argument("--ic", help="IC positions: none, N, N,M,... or N:M (default: the model's)")
    a.add_argument("--timesteps", type=int_in(1, MAX_TIMESTEPS), default=300, help="timesteps")
    a.add_argument(
        "--spike-rate",
        type=real_in(0.0, 1.0),
        default=0.1,
        help="probability that a neuron spikes in a timestep",
    )
    a.add_argument("--out", default="runs/ablation", help="output folder")

    k = sub.add_parser(
        "calibrate",
        help="fit cost-table entries (energy_pj.*, area_um2.*) to measurements (least squares)",
        description="Fit the architecture file's free cost-table entries to measured energies"
        " or areas (bounded least squares); write the calibrated YAML with provenance comments;"
        " print residuals and leave-one-out errors. docs/validation.md describes the CSV.",
    )
    k.add_argument("--arch", required=True, help="the base " + arch_help)
    k.add_argument(
        "--measurements",
        required=True,
        help="CSV: id, quantity, workload, layer, component, value, sigma",
    )
    k.add_argument("--out", required=True, help="the calibrated architecture YAML to write")
    k.add_argument(
        "--free",
        action="append",
        metavar="KEY[=LO:HI]",
        help="a cost-table entry to fit, e.g. energy_pj.adc=0:10 (repeatable; default: the"
        " CSV's '# free:' lines)",
    )

    rp = sub.add_parser(
        "report",
        help="a finished output folder as one self-contained HTML page (--html) or as text",
        description="Read the files of a finished output folder (summary.json, the CSVs, the"
        " figures) and show them: as text on the console, or with --html as one HTML page"
        " (figures embedded) that opens in any browser.",
    )
    rp.add_argument("folder", metavar="DIR", help="an output folder of run, sweep, map, ...")
    rp.add_argument("--html", action="store_true", help="write the HTML page")
    rp.add_argument("--out", help="where to write the page (default: DIR/report.html)")

    ca = sub.add_parser(
        "cache",
        help="list the trace cache (traces, tunings, stored results) or prune it",
        description="List what hwsim keeps in its trace cache (each entry's kind, size, age and"
        " key) or delete entries by age or total size. Only entries that hwsim wrote are listed"
        " and deleted; anything else in the folder is named and left alone.",
    )
    ca.add_argument(
        "action",
        choices=("list", "prune"),
        help="list the entries, or prune those that --all, --older-than or --max-size select",
    )
    ca.add_argument(
        "--traces",
        default=str(cache_root()),
        help=f"the trace cache folder (default: ${CACHE_ENV} if set, else {cache_root()})",
    )
    ca.add_argument("--all", action="store_true", help="prune: every entry")
    ca.add_argument(
        "--older-than",
        type=age,
        help="prune: the entries written longer ago than this (30d, 12h, 45m, 90s)",
    )
    ca.add_argument(
        "--max-size",
        type=size,
        help="prune: the oldest entries, until the others fit in this size (500M, 2G, bytes)",
    )
    ca.add_argument("--yes", action="store_true", help="prune without asking to confirm")
    ca.add_argument(
        "--dry-run", action="store_true", help="prune: list what would be deleted, delete nothing"
    )

    from hwsim.cli.explore import add_explore_parser  # here: hwsim.cli.explore imports this module

    add_explore_parser(sub)

    for q in sub.choices.values():
        q.add_argument(
            "--config",
            help="a YAML file of this command's options (keys: the long flags without --, e.g."
            " 'timesteps: 200'); flags given here win (docs/cli.md)",
        )
        q.add_argument(
            "--quiet", action="store_true", help="print no tables or progress, only errors"
        )
        q.add_argument(
            "--summary",
            help="write the command's results as JSON here (default: summary.json in the"
            " output folder of run, sweep, map and estimate)",
        )
        q.add_argument(  # also after the command; SUPPRESS keeps a --debug given before it
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show the traceback of any error",
        )
    finish(sub.choices)
    return p
