"""hwsim's value of every published number in references.yaml, computed through hwsim's own
functions (`hwsim.hw.mapping.map_network`, `hwsim.hw.energy`, `hwsim.hw.area`,
`hwsim.hw.timing`) on a workload matching the paper's stated conditions, and the validation
tables of docs/validation.md rendered from them.

    .venv/bin/python tests/validation/reproduce.py            # prints the tables
    .venv/bin/python tests/validation/reproduce.py --write    # updates docs/validation.md

Workloads: a design's peak figures are those of a matrix-vector layer (a 1x1 convolution on a
1x1 map, C_in rows and C_out outputs) that fills the chip, every input spiking every timestep
(`full_activity`, SpikeSim's accounting: every PE operation of every layer charged). Power =
energy of one timestep / the timestep's steady-state interval (`TimingResult.interval_cycles`,
every PE of the layer working in parallel). NeuroSim's VGG-8 example is the whole network, one
8-bit image as 8 binary timesteps (one per input bit), every read charged: energy by layer and
component, and each layer's PE-operation time (`TimingResult.busy_stage_cycles`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: import the checkout's hwsim
    sys.path.insert(0, str(ROOT))

from hwsim.hw.activity import full_activity  # noqa: E402
from hwsim.hw.arch import Architecture, load_arch, parse_arch  # noqa: E402
from hwsim.hw.area import chip_area  # noqa: E402
from hwsim.hw.energy import pe_energy_components_pj, spikesim_energy  # noqa: E402
from hwsim.hw.mapping import ChipMapping, map_network  # noqa: E402
from hwsim.hw.timing import cycles_to_ns, run_timing  # noqa: E402
from hwsim.model.graph import Layer, LayerGraph, LayerKind, Role  # noqa: E402

REFERENCES = Path(__file__).with_name("references.yaml")
DOC = ROOT / "docs" / "validation.md"
TABLES = ("summary", "calibration", "sources")
README = ROOT / "README.md"
README_TABLES = ("summary",)
"""The README carries the summary table too; `--write` updates both files."""
"""The generated blocks of docs/validation.md, between `<!-- validation:NAME -->` and
`<!-- /validation:NAME -->`."""


@dataclass(frozen=True)
class Row:
    """One published number (references.yaml) and what hwsim makes of it."""

    id: str
    design: str
    quantity: str
    unit: str
    published: float
    source: str
    role: str  # exact | calibration | predicted
    tolerance: float
    gap_error: float
    gap: str
    hwsim: float

    @property
    def error(self) -> float:
        """hwsim / published - 1."""
        return self.hwsim / self.published - 1.0

    @property
    def drift(self) -> float:
        """How far the error is from the one the stated gap explains (0 without a gap)."""
        return abs(self.error - self.gap_error)


def arch(name: str) -> Architecture:
    return _arch(name)


@cache
def _arch(name: str) -> Architecture:
    return load_arch(ROOT / "arch_configs" / f"{name}.yaml")


def variant(base: Architecture, section: str, **values: Any) -> Architecture:
    """`base` with some keys of one section changed, validated as a file would be."""
    raw = base.to_mapping()
    raw[section] = {**raw[section], **values}
    return parse_arch(raw, f"{base.name} ({section}: {values})")


def vmm_graph(rows: int, outputs: int) -> LayerGraph:
    """One matrix-vector layer: a 1x1 conv on a 1x1 map, `rows` inputs, `outputs` outputs."""
    layer = Layer(
        "vmm", LayerKind.CONV, Role.BACKBONE, (rows, 1, 1), (outputs, 1, 1), (1, 1), 1, 0, (),
        "vmm",
    )  # fmt: skip
    return LayerGraph((layer,), (rows, 1, 1), outputs)


def interval_ns(mapping: ChipMapping) -> float:
    """Steady-state ns between timesteps with every input spiking (the bottleneck stage)."""
    timing = run_timing(mapping, full_activity(mapping, timesteps=1))
    return float(cycles_to_ns(timing.interval_cycles, mapping.arch.clock_mhz))


def peak_power_mw(mapping: ChipMapping) -> float:
    """Energy of one timestep with every PE operation charged / the timestep's interval."""
    return spikesim_energy(mapping).total_pj / interval_ns(mapping)  # pJ / ns = mW


def component_power_mw(a: Architecture, component: str, pes: int) -> float:
    """Full-rate power of one component over `pes` PEs, each doing one 1-crossbar PE operation
    per `pe_operation_ns`."""
    return pes * pe_energy_components_pj(a, (1, 1))[component] / a.pe_operation_ns


# ------------------------------------------------------------------------------ SpikeSim
# ela_spikesim.py's example network (VGG9 on CIFAR-10), its lists (as tests/test_mapping.py)
VGG9 = dict(
    in_ch=[3, 64, 64, 128, 128, 256, 256],
    out_ch=[64, 64, 128, 128, 256, 256, 256],
    in_dim=[32, 32, 16, 16, 8, 8, 8],
    out_dim=[32, 16, 16, 8, 8, 8, 4],
)


@cache
def spikesim_vgg9() -> ChipMapping:
    layers = []
    for i, (c_in, c_out, h_in, h_out) in enumerate(
        zip(VGG9["in_ch"], VGG9["out_ch"], VGG9["in_dim"], VGG9["out_dim"], strict=True)
    ):
        inputs = (f"conv{i - 1}",) if i else ()
        shapes = (c_in, h_in, h_in), (c_out, h_out, h_out)
        stride = h_in // h_out
        layers.append(
            Layer(
                f"conv{i}",
                LayerKind.CONV,
                Role.BACKBONE,
                *shapes,
                (3, 3),
                stride,
                1,
                inputs,
                f"conv{i}",
            )
        )
    graph = LayerGraph(tuple(layers), (3, 32, 32), 10)
    return map_network(arch("spikesim"), graph)


# --------------------------------------------------------------------------------- ISAAC
ISAAC_TILES = 168  # [I] tiles per chip
ISAAC_INPUT_BITS = 16  # [I] a 16-bit input takes 16 one-bit DAC cycles (16 hwsim timesteps)


@cache
def isaac_chip() -> ChipMapping:
    """A layer filling ISAAC's 168 tiles: 126 x 128 crossbars = 168 tiles x 96 crossbars."""
    a = arch("isaac")
    crossbars = ISAAC_TILES * a.pe.pes_per_tile * a.pe.crossbars_per_pe
    row_groups = 126
    col_groups = crossbars // row_groups
    mapping = map_network(
        a, vmm_graph(row_groups * a.crossbar.rows, col_groups * a.outputs_per_crossbar)
    )
    assert mapping.tiles == ISAAC_TILES and mapping.crossbars == crossbars
    return mapping


def isaac_one_tile() -> ChipMapping:
    a = arch("isaac")
    mapping = map_network(a, vmm_graph(a.crossbar.rows, a.pe.pes_per_tile * a.outputs_per_crossbar))
    assert mapping.tiles == 1
    return mapping


def isaac_tile_area_um2(component: str) -> float:
    parts = chip_area(isaac_one_tile()).per_component_um2()
    return parts[component]


def isaac_peak_tops() -> float:
    """Peak throughput, TOP/s: 2 ops per MAC of the chip-filling layer per 16-bit input."""
    mapping = isaac_chip()
    macs = mapping.graph.layers[0].macs
    return 2 * macs / (ISAAC_INPUT_BITS * interval_ns(mapping)) / 1e3  # ops/ns -> TOP/s


def isaac_chip_area_mm2() -> float:
    """The tiles' area (hwsim's SNN neuron and input memories are not part of ISAAC, whose
    activations live in the tiles' eDRAM)."""
    return float(chip_area(isaac_chip()).tile_um2.sum()) * 1e-6


# ------------------------------------------------------------------------------- NeuRRAM
NEURRAM_CORES = 48  # [W]


def neurram(output_bits: int) -> Architecture:
    """NeuRRAM at `output_bits`-bit outputs: the calibrated file's ADC at another resolution
    (hwsim's own ADC scaling, `adc.reference_bits`)."""
    return variant(arch("neurram"), "adc", bits=output_bits)


def neurram_ops_per_mvm(a: Architecture) -> int:
    return 2 * a.crossbar.rows * a.outputs_per_crossbar  # one MAC = two operations


def neurram_fj_per_op(output_bits: int, components: tuple[str, ...]) -> float:
    a = neurram(output_bits)
    parts = pe_energy_components_pj(a, (1, 1))
    return sum(parts[c] for c in components) * 1e3 / neurram_ops_per_mvm(a)


def neurram_tops(output_bits: int) -> float:
    a = neurram(output_bits)
    mapping = map_network(a, vmm_graph(a.crossbar.rows, a.outputs_per_crossbar))
    return NEURRAM_CORES * neurram_ops_per_mvm(a) / interval_ns(mapping) / 1e3


def neurram_tops_per_w(output_bits: int) -> float:
    a = neurram(output_bits)
    mapping = map_network(a, vmm_graph(a.crossbar.rows, a.outputs_per_crossbar))
    return neurram_ops_per_mvm(a) / spikesim_energy(mapping).total_pj  # ops / pJ = TOP/s / W


# ------------------------------------------------------------------- Yao et al., ESSERC 2024
def yao_power_mw(driven_rows: int) -> float:
    """Power with `driven_rows` input rows in use and all 512 outputs, every read-out charged."""
    a = arch("yao_esserc2024")
    return peak_power_mw(map_network(a, vmm_graph(driven_rows, a.outputs_per_crossbar)))


def yao_tops() -> float:
    a = arch("yao_esserc2024")
    mapping = map_network(a, vmm_graph(a.crossbar.rows, a.outputs_per_crossbar))
    return 2 * mapping.graph.layers[0].macs / interval_ns(mapping) / 1e3


# ------------------------------------------- NeuroSim: DNN+NeuroSim V1.3's VGG-8 example
NEUROSIM_INPUT_BITS = 8  # [M] 8-bit activations fed one bit per read: 8 binary timesteps
NEUROSIM_VGG8 = (
    (32, 32, 3, 3, 128),
    (32, 32, 128, 3, 128),
    (16, 16, 128, 3, 256),
    (16, 16, 256, 3, 256),
    (8, 8, 256, 3, 512),
    (8, 8, 512, 3, 512),
    (1, 1, 8192, 1, 1024),
    (1, 1, 1024, 1, 10),
)
"""[N] NetWork_VGG8.csv: IFM height, width, channels; kernel size; output channels. A layer's
output is its full IFM-sized map (NeuroSim pools after layers 2, 4, 6 outside the crossbars)."""
NEUROSIM_MIDDLE = tuple(f"layer{i}" for i in range(2, 8))
"""The layers the example does not print one by one: the chip's totals less layers 1 and 8."""
NEUROSIM_CATEGORIES: dict[str, tuple[str, ...]] = {
    "adc": ("adc",),
    "accumulation": ("shift_add",),
    "buffer": ("tile_buffer", "temp_buffer"),
    "interconnect": ("htree",),
    "rest": ("crossbar", "mux", "memory_fetch", "neuron"),
}
"""NeuroSim's printed energy categories -> hwsim's components (arch_configs/neurosim_vgg8.yaml):
"ADC", "Accumulation Circuits", the buffer and interconnect ("ic") parts of "Other
Peripheries", and the rest of "Other Peripheries"."""
ALL_CATEGORIES = tuple(NEUROSIM_CATEGORIES)


@cache
def neurosim_vgg8() -> ChipMapping:
    """VGG-8 ([N]) on arch_configs/neurosim_vgg8.yaml; layers layer1..layer8."""
    layers = []
    for i, (h, w, c_in, k, c_out) in enumerate(NEUROSIM_VGG8, start=1):
        kind = LayerKind.CONV if k > 1 else LayerKind.LINEAR
        inputs = (f"layer{i - 1}",) if i > 1 else ()
        layer = Layer(
            f"layer{i}", kind, Role.BACKBONE, (c_in, h, w), (c_out, h, w), (k, k), 1,
            (k - 1) // 2, inputs, f"layer{i}",
        )  # fmt: skip
        layers.append(layer)
    return map_network(arch("neurosim_vgg8"), LayerGraph(tuple(layers), (3, 32, 32), 10))


def neurosim_energy_nj(layers: tuple[str, ...], categories: tuple[str, ...]) -> float:
    """hwsim's energy of one image (8 input bits) in `layers` and NeuroSim's `categories`, nJ."""
    breakdown = spikesim_energy(neurosim_vgg8())
    names = breakdown.layer_names
    components = [c for cat in categories for c in NEUROSIM_CATEGORIES[cat]]
    rows = [names.index(name) for name in layers]
    cols = [breakdown.components.index(c) for c in components]
    per_step = breakdown.energy_pj[np.ix_(rows, cols)].sum()
    return float(per_step) * NEUROSIM_INPUT_BITS / 1e3


def neurosim_compute_ns(layer: str) -> float:
    """hwsim's time for one image's PE operations of `layer` (8 input bits), ns."""
    mapping = neurosim_vgg8()
    timing = run_timing(mapping, full_activity(mapping, timesteps=NEUROSIM_INPUT_BITS))
    cycles = timing.busy_stage_cycles[timing.index(layer)]
    return float(cycles_to_ns(cycles, mapping.arch.clock_mhz))


def neurosim_utilisation(layer: str) -> float:
    """Used / mapped cells of `layer`'s crossbars (NeuroSim's "Utilization of each layer")."""
    return neurosim_vgg8().layer(layer).utilisation


HWSIM: dict[str, Callable[[], float]] = {
    # SpikeSim
    "spikesim.pe_energy_3x3": lambda: sum(
        pe_energy_components_pj(arch("spikesim"), (3, 3)).values()
    ),
    "spikesim.vgg9_tiles": lambda: float(spikesim_vgg9().tiles),
    "spikesim.vgg9_area": lambda: chip_area(spikesim_vgg9()).total_mm2,
    # ISAAC: calibration
    "isaac.adc_power_ima": lambda: component_power_mw(arch("isaac"), "adc", 8),
    "isaac.dac_power_ima": lambda: component_power_mw(arch("isaac"), "crossbar", 8),
    "isaac.shift_add_power_ima": lambda: component_power_mw(arch("isaac"), "shift_add", 8),
    "isaac.edram_power_tile": lambda: component_power_mw(arch("isaac"), "tile_buffer", 96),
    "isaac.bus_power_tile": lambda: component_power_mw(arch("isaac"), "htree", 96),
    "isaac.adc_area_ima": lambda: isaac_tile_area_um2("adc") / 12,
    "isaac.dac_area_ima": lambda: isaac_tile_area_um2("crossbar") / 12,
    "isaac.edram_area_tile": lambda: isaac_tile_area_um2("tile_buffer"),
    "isaac.bus_area_ima": lambda: isaac_tile_area_um2("htree") / 12,
    "isaac.router_area": lambda: 4 * isaac_tile_area_um2("router"),
    # ISAAC: predicted
    "isaac.peak_throughput": isaac_peak_tops,
    "isaac.chip_power": lambda: peak_power_mw(isaac_chip()) / 1e3,
    "isaac.chip_area": isaac_chip_area_mm2,
    # NeuRRAM: calibration (3-bit outputs, 1-bit inputs)
    "neurram.read_energy_o3": lambda: neurram_fj_per_op(3, ("crossbar",)),
    "neurram.neuron_energy_o3": lambda: neurram_fj_per_op(3, ("adc",)),
    "neurram.throughput_o3": lambda: neurram_tops(3),
    "neurram.efficiency_o3": lambda: neurram_tops_per_w(3),
    # NeuRRAM: predicted (4-bit outputs, 2-bit inputs: still one input pulse)
    "neurram.read_energy_o4": lambda: neurram_fj_per_op(4, ("crossbar",)),
    "neurram.neuron_energy_o4": lambda: neurram_fj_per_op(4, ("adc",)),
    "neurram.throughput_o4": lambda: neurram_tops(4),
    "neurram.efficiency_o4": lambda: neurram_tops_per_w(4),
    # Yao et al.: calibration (512 driven rows)
    "yao.power_512": lambda: yao_power_mw(512),
    "yao.throughput": yao_tops,
    # Yao et al.: predicted (fewer driven rows)
    "yao.power_384": lambda: yao_power_mw(384),
    "yao.power_256": lambda: yao_power_mw(256),
    "yao.power_128": lambda: yao_power_mw(128),
    # NeuroSim: calibration (layers 2-7: the chip less layers 1 and 8)
    "neurosim.adc_middle": lambda: neurosim_energy_nj(NEUROSIM_MIDDLE, ("adc",)),
    "neurosim.accumulation_middle": lambda: neurosim_energy_nj(NEUROSIM_MIDDLE, ("accumulation",)),
    "neurosim.buffer_middle": lambda: neurosim_energy_nj(NEUROSIM_MIDDLE, ("buffer",)),
    "neurosim.interconnect_middle": lambda: neurosim_energy_nj(NEUROSIM_MIDDLE, ("interconnect",)),
    "neurosim.rest_middle": lambda: neurosim_energy_nj(NEUROSIM_MIDDLE, ("rest",)),
    "neurosim.read_time": lambda: arch("neurosim_vgg8").pe_operation_ns,
    # NeuroSim: predicted (layers 1 and 8)
    "neurosim.utilisation_l1": lambda: neurosim_utilisation("layer1"),
    "neurosim.energy_l1": lambda: neurosim_energy_nj(("layer1",), ALL_CATEGORIES),
    "neurosim.adc_l1": lambda: neurosim_energy_nj(("layer1",), ("adc",)),
    "neurosim.accumulation_l1": lambda: neurosim_energy_nj(("layer1",), ("accumulation",)),
    "neurosim.movement_l1": lambda: neurosim_energy_nj(("layer1",), ("buffer", "interconnect")),
    "neurosim.compute_time_l1": lambda: neurosim_compute_ns("layer1"),
    "neurosim.utilisation_l8": lambda: neurosim_utilisation("layer8"),
    "neurosim.energy_l8": lambda: neurosim_energy_nj(("layer8",), ALL_CATEGORIES),
    "neurosim.adc_l8": lambda: neurosim_energy_nj(("layer8",), ("adc",)),
    "neurosim.accumulation_l8": lambda: neurosim_energy_nj(("layer8",), ("accumulation",)),
    "neurosim.movement_l8": lambda: neurosim_energy_nj(("layer8",), ("buffer", "interconnect")),
    "neurosim.compute_time_l8": lambda: neurosim_compute_ns("layer8"),
}
"""Row id -> hwsim's value, in the row's unit."""


def load_references(path: Path = REFERENCES) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def rows(path: Path = REFERENCES) -> list[Row]:
    """Every references.yaml row with hwsim's value."""
    out = []
    for raw in load_references(path)["rows"]:
        out.append(
            Row(
                id=raw["id"],
                design=raw["design"],
                quantity=raw["quantity"],
                unit=raw["unit"],
                published=float(raw["published"]),
                source=raw["source"],
                role=raw["role"],
                tolerance=float(raw["tolerance"]),
                gap_error=float(raw.get("gap_error", 0.0)),
                gap=raw.get("gap", ""),
                hwsim=float(HWSIM[raw["id"]]()),
            )
        )
    return out


# ---------------------------------------------------------------------------- the tables
def number(value: float) -> str:
    """4 significant digits; whole numbers from 1000 up (no exponent)."""
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.4g}"


def cite(source: str) -> str:
    """A row's source as the tables show it: `C (test_tops, (3, 1, 1))` -> `[C] test_tops, ...`."""
    key, _, rest = source.partition(" ")
    rest = rest.strip()
    if rest.startswith("(") and rest.endswith(")"):
        rest = rest[1:-1]
    return f"[{key}] {rest}".rstrip()


def render(table: str, all_rows: list[Row]) -> str:
    """The markdown of one generated table of docs/validation.md."""
    designs = load_references()["designs"]
    if table == "summary":
        lines = [
            "| design | quantity | published | hwsim | error | gap it is explained by |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for r in all_rows:
            if r.role == "calibration":
                continue
            lines.append(
                f"| {designs[r.design]['short']} | {r.quantity} ({r.unit}) | {number(r.published)}"
                f" | {number(r.hwsim)} | {100 * r.error:+.1f}% | {r.gap or '-'} |"
            )
    elif table == "calibration":
        lines = [
            "| design | quantity | published | hwsim | source |",
            "| --- | --- | --- | --- | --- |",
        ]
        for r in all_rows:
            if r.role != "calibration":
                continue
            lines.append(
                f"| {designs[r.design]['short']} | {r.quantity} ({r.unit}) | {number(r.published)}"
                f" | {number(r.hwsim)} | {cite(r.source)} |"
            )
    elif table == "sources":
        lines = ["| design | key | source |", "| --- | --- | --- |"]
        for design in designs.values():
            for key, text in design["sources"].items():
                lines.append(f"| {design['short']} | [{key}] | {' '.join(text.split())} |")
    else:
        raise KeyError(f"no table {table!r}; expected one of {TABLES}")
    return "\n".join(lines)


def doc_block(text: str, table: str) -> str:
    """The generated block `table` of docs/validation.md's text."""
    start, end = f"<!-- validation:{table} -->", f"<!-- /validation:{table} -->"
    _, opened, rest = text.partition(start)
    body, closed, _ = rest.partition(end)
    if not (opened and closed):
        raise KeyError(f"{DOC}: no block {start} ... {end}")
    return body.strip("\n")


def updated_doc(text: str, computed: list[Row], tables: tuple[str, ...] = TABLES) -> str:
    """`text` (docs/validation.md, or the README with `README_TABLES`) with every generated
    block of `tables` replaced by the computed one."""
    for table in tables:
        doc_block(text, table)  # it is there
        start, end = f"<!-- validation:{table} -->", f"<!-- /validation:{table} -->"
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        text = f"{head}{start}\n{render(table, computed)}\n{end}{tail}"
    return text


if __name__ == "__main__":
    computed = rows()
    if sys.argv[1:] == ["--write"]:  # rewrite the generated blocks of the doc and README in place
        DOC.write_text(updated_doc(DOC.read_text(encoding="utf-8"), computed), encoding="utf-8")
        readme = README.read_text(encoding="utf-8")
        README.write_text(updated_doc(readme, computed, README_TABLES), encoding="utf-8")
    else:
        for name in TABLES:
            block = render(name, computed)
            print(f"<!-- validation:{name} -->\n{block}\n<!-- /validation:{name} -->\n")
