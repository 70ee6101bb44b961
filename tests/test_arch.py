"""Architecture YAML: shipped configs load with the cited numbers; every bad file is refused
with an ArchConfigError naming the file, the key and what was expected."""

import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hwsim.hw.arch import (
    ArchConfigError,
    Architecture,
    EnergyModel,
    FullScale,
    MappingStyle,
    Placement,
    SignedWeights,
    Slicing,
    load_arch,
    parse_arch,
    schema_keys,
)

ROOT = Path(__file__).resolve().parents[1]
SPIKESIM_YAML = ROOT / "arch_configs" / "spikesim.yaml"
ISAAC_YAML = ROOT / "arch_configs" / "isaac_like.yaml"
CHIP_YAML = ROOT / "arch_configs" / "spikesim_chip.yaml"

# BayesianSpikeFusion's spikesim_config.json (energies in pJ), transcribed independently.
BSF_SPIKESIM_CONFIG = {
    "xbar_size": 64,
    "pe_per_tile": 8,
    "energy": {
        "xbar_ar": 1.76423,
        "tile_buff": 397.0,
        "temp_buff": 0.2,
        "sub": 1.15e-6,
        "adc": 2.03084,
        "htree": 19.64,
        "mux": 0.094245,
        "mem_fetch": 4.64,
        "neuron": 1.274,
    },
}


def _raw(path: Path = SPIKESIM_YAML) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


# ------------------------------------------------------------------------ shipped configs


def test_spikesim_yaml_has_spikesim_numbers() -> None:
    arch = load_arch(SPIKESIM_YAML)
    ref = BSF_SPIKESIM_CONFIG["energy"]
    e = arch.energy_pj
    assert (arch.crossbar.rows, arch.crossbar.cols) == (64, 64)
    assert arch.pe.pes_per_tile == BSF_SPIKESIM_CONFIG["pe_per_tile"]
    assert (e.crossbar_read, e.adc, e.mux, e.shift_add) == (
        ref["xbar_ar"],
        ref["adc"],
        ref["mux"],
        ref["sub"],
    )
    assert (e.temp_buffer, e.tile_buffer, e.htree, e.memory_fetch, e.neuron) == (
        ref["temp_buff"],
        ref["tile_buff"],
        ref["htree"],
        ref["mem_fetch"],
        ref["neuron"],
    )
    # SpikeSim's multiplicities: Htree x 8, neuron x 4, 16 shift-adds, X/8 ADCs.
    assert arch.pe.htree_links_per_pe == 8
    assert arch.pe.neuron_units_per_pe == 4
    assert arch.pe.shift_adds_per_column_group == 16
    assert arch.adc.columns_per_adc == 8
    assert arch.adcs_per_crossbar == 64 // 8
    assert arch.clock_mhz == 250.0
    assert arch.timing.pe_cycles == 26
    assert arch.clock_period_ns == pytest.approx(4.0)
    assert arch.pe_operation_ns == pytest.approx(26 * 4.0)  # SpikeSim PE_cycle = 104 ns
    assert arch.energy_model is EnergyModel.SPIKESIM
    assert arch.version == 1


def test_spikesim_yaml_has_spikesim_areas_and_a_fusion_unit() -> None:
    arch = load_arch(SPIKESIM_YAML)
    a = arch.area_um2
    # ela_spikesim.py compute_area (rram), um^2
    assert (a.crossbar, a.adc, a.mux, a.shift_add) == (26.2144, 693.633, 45.9, 13411.41498)
    assert (a.temp_buffer, a.htree, a.sram_bit, a.router) == (484.643999, 216830 * 2, 0.7391, 0)
    assert arch.buffers.tile_buffer_bits * a.sram_bit == pytest.approx(0.7391 * 64 * 128)
    assert arch.buffers.neuron_state_bits == arch.buffers.input_bits == 22
    assert arch.mapping.style is MappingStyle.KERNEL_SPLIT
    assert arch.fusion_unit is not None and arch.fusion_unit.counter_increment_pj == 0.05
    # SpikeSim's mapping: a 4-bit weight's 3 low two's-complement bits as parallel binary
    # cells of one column, the sign digital: 64 weights per 64 columns (ela_spikesim.py's
    # ceil(C_out / X) column groups)
    device = arch.device
    assert (device.signed_weights, device.slicing) == (SignedWeights.DIGITAL, Slicing.CELLS)
    assert (device.slices_per_weight, device.columns_per_weight) == (3, 1)
    assert (device.reference_columns, arch.outputs_per_crossbar) == (0, 64)
    # its functional code's ADC: LSB = one ON cell, unsigned codes 0..2^4 - 1 (hw_models_new.py)
    assert arch.adc.full_scale is FullScale.AUTO and arch.adc_lsb_levels == 1.0
    assert not arch.adc_signed  # digital-sign columns carry non-negative signals
    assert arch.adc.reference_bits == 4 and arch.adc_cost_scale == 1.0
    assert arch.buffers.neuron_memory_layers == 5  # compute_area: out_ch_list[0:5]


def test_isaac_like_yaml_loads_with_isaac_organisation() -> None:
    arch = load_arch(ISAAC_YAML)
    assert (arch.crossbar.rows, arch.crossbar.cols) == (128, 128)
    assert (arch.device.weight_bits, arch.device.bits_per_cell) == (16, 2)
    assert arch.device.columns_per_weight == 8  # 8 slices of 2 bits on columns
    assert arch.device.signed_weights is SignedWeights.OFFSET
    assert arch.adc.bits == 8
    assert arch.adcs_per_crossbar == 1
    assert (arch.pe.pes_per_tile, arch.pe.crossbars_per_pe) == (12, 8)
    assert arch.energy_pj.adc == pytest.approx(16e-3 / (8 * 1.2e9) * 1e12, rel=1e-4)
    # ISAAC's 100 ns crossbar read (120 cycles) is outlasted by the 128 conversions of its ADC
    assert arch.timing.pe_cycles == 120
    assert arch.pe_operation_ns == pytest.approx(128 / 1.2)
    assert arch.mapping.style is MappingStyle.UNROLLED
    assert arch.device.reference_columns == 2 and arch.outputs_per_crossbar == 15
    # a read-out converts all 128 columns through the one ADC: 128 rounds of one cycle
    assert (arch.adc_rounds, arch.timing.cycles_per_conversion) == (128, 1)
    assert arch.pe_operation_cycles == 128 and arch.adc_signed
    assert arch.area_um2.adc == 1200.0 and arch.fusion_unit is None


def test_spikesim_yaml_keeps_every_later_effect_off() -> None:
    arch = load_arch(SPIKESIM_YAML)
    off = (arch.leakage_mw, arch.offchip, arch.programming, arch.partial_sums)
    assert off == (None, None, None, None)
    assert arch.energy_pj.crossbar_cell_read is None and arch.area_um2.crossbar_cell is None
    assert arch.timing.sar_cycles_per_bit is None and arch.conversion_cycles is None
    assert arch.buffers.tile_buffer_sharing.value == "per_consumer"


def test_spikesim_chip_yaml_turns_every_effect_on() -> None:
    chip, base = load_arch(CHIP_YAML), load_arch(SPIKESIM_YAML)
    assert None not in (chip.leakage_mw, chip.offchip, chip.programming, chip.partial_sums)
    assert chip.energy_pj.crossbar_read is None and chip.area_um2.crossbar is None
    assert chip.timing.sar_cycles_per_bit == 1
    assert chip.buffers.tile_buffer_sharing.value == "shared"
    # everything else is spikesim.yaml's
    for section in ("crossbar", "pe", "adc", "device", "mapping", "fusion_unit"):
        assert getattr(chip, section) == getattr(base, section), section
    assert chip.clock_mhz == base.clock_mhz and chip.energy_model is base.energy_model


def test_an_old_file_without_the_new_keys_means_what_it_meant(tmp_path: Path) -> None:
    raw = _raw()  # spikesim.yaml as written: no leakage, offchip, programming, partial sums
    assert not {"leakage_mw", "offchip", "programming", "partial_sums"} & set(raw)
    arch = load_arch(_write(tmp_path, "old.yaml", raw))
    assert arch == load_arch(SPIKESIM_YAML)
    assert arch.crossbar_read_pj == 1.76423 and arch.pe_operation_cycles == 26


def test_round_trip_through_mapping() -> None:
    for path in (SPIKESIM_YAML, ISAAC_YAML, CHIP_YAML):
        arch = load_arch(path)
        assert parse_arch(arch.to_mapping(), "round-trip") == arch


def test_architecture_is_frozen() -> None:
    arch = load_arch(SPIKESIM_YAML)
    with pytest.raises(dataclasses.FrozenInstanceError):
        arch.clock_mhz = 100.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        arch.energy_pj.adc = 0.0  # type: ignore[misc]


def test_optional_keys_take_documented_defaults(tmp_path: Path) -> None:
    raw = _raw()
    for key in ("noc", "energy_model", "source", "notes"):
        del raw[key]
    del raw["adc"]["columns_per_adc"]
    del raw["pe"]["crossbars_per_pe"]
    del raw["pe"]["htree_links_per_pe"]
    del raw["energy_pj"]["noc_flit_hop"]
    del raw["device"]["signed_weights"]
    arch = load_arch(_write(tmp_path, "minimal.yaml", raw))
    assert arch.energy_model is EnergyModel.SPIKESIM
    assert arch.adc.columns_per_adc == 8
    assert arch.pe.crossbars_per_pe is None
    assert arch.pe.htree_links_per_pe == 8
    assert arch.energy_pj.noc_flit_hop == 0.0
    assert arch.device.signed_weights is SignedWeights.DIFFERENTIAL
    assert arch.noc.mesh_rows is None and arch.noc.flit_width_bits == 32
    assert (arch.source, arch.notes) == ("", "")


def test_new_sections_are_optional(tmp_path: Path) -> None:
    raw = _raw()
    for key in ("mapping", "buffers", "area_um2", "fusion_unit"):
        del raw[key]
    for key in ("full_scale", "reference_bits"):
        del raw["adc"][key]
    del raw["device"]["slicing"]
    arch = load_arch(_write(tmp_path, "old.yaml", raw))
    assert arch.mapping.style is MappingStyle.KERNEL_SPLIT
    assert arch.mapping.placement is Placement.SNAKE
    assert (arch.buffers.tile_buffer_bits, arch.buffers.neuron_state_bits) == (8192, 22)
    assert arch.area_um2 is None and arch.fusion_unit is None
    assert arch.adc.full_scale is FullScale.AUTO and arch.adc.full_scale_ua is None
    assert arch.adc.calibration_percentile == 99.9 and arch.adc.reference_bits is None
    assert arch.device.slicing is Slicing.COLUMNS
    assert arch.buffers.neuron_memory_layers is None
    assert arch.timing.cycles_per_conversion is None
    raw["area_um2"] = None
    assert load_arch(_write(tmp_path, "null.yaml", raw)).area_um2 is None


def test_yaml_12_exponent_floats_are_numbers(tmp_path: Path) -> None:
    text = SPIKESIM_YAML.read_text().replace("shift_add: 1.15e-6", "shift_add: 2e-6")
    assert "shift_add: 2e-6" in text
    arch = load_arch(_write(tmp_path, "exp.yaml", text))
    assert arch.energy_pj.shift_add == 2e-6


def test_docs_describe_every_key() -> None:
    doc = (ROOT / "docs" / "arch-config.md").read_text()
    missing = [key for key, _ in schema_keys() if f"`{key}`" not in doc]
    assert missing == []


# --------------------------------------------------------------------------- bad files

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = raw
        for key in parents:
            node = node[key]
        node[last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = raw
        for key in parents:
            node = node[key]
        del node[last]

    return mutate


def _both(*mutations: Mutation) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        for m in mutations:
            m(raw)

    return mutate


def _rename(path: str, new: str) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = raw
        for key in parents:
            node = node[key]
        node[new] = node.pop(last)

    return mutate


# (case, mutation, key path in the message, further substrings the message must contain)
BAD_CASES: list[tuple[str, Mutation, str, tuple[str, ...]]] = [
    ("unknown_top", _rename("clock_mhz", "clock_mzh"), "clock_mzh", ("did you mean 'clock_mhz'",)),
    ("unknown_nested", _set("energy_pj.adcc", 1.0), "energy_pj.adcc", ("did you mean 'adc'",)),
    ("unknown_no_match", _set("crossbar.zzz", 1), "crossbar.zzz", ("valid keys here: rows, cols",)),
    ("missing_field", _delete("energy_pj.neuron"), "energy_pj.neuron", ("missing required key",)),
    ("missing_section", _delete("timing"), "timing", ("missing required key",)),
    ("missing_name", _delete("name"), "name", ("missing required key",)),
    ("str_for_int", _set("crossbar.rows", "64"), "crossbar.rows", ("'64' (str)", "an integer")),
    ("bool_for_int", _set("pe.pes_per_tile", True), "pe.pes_per_tile", ("True", "an integer")),
    ("float_for_int", _set("timing.pe_cycles", 26.5), "timing.pe_cycles", ("26.5", "integer")),
    ("str_for_float", _set("clock_mhz", "fast"), "clock_mhz", ("'fast'", "a finite number")),
    ("nan_energy", _set("energy_pj.mux", float("nan")), "energy_pj.mux", ("finite number",)),
    ("list_for_section", _set("adc", [4, 8]), "adc", ("[4, 8]", "a mapping")),
    ("negative_energy", _set("energy_pj.adc", -2.0), "energy_pj.adc", ("-2.0", "[0, 1e+12]")),
    ("rows_not_pow2", _set("crossbar.rows", 48), "crossbar.rows", ("48", "power of two")),
    ("rows_too_small", _set("crossbar.cols", 4), "crossbar.cols", ("4", "8..4096")),
    ("adc_bits_zero", _set("adc.bits", 0), "adc.bits", ("0", "1..16")),
    ("adc_bits_17", _set("adc.bits", 17), "adc.bits", ("17", "1..16")),
    ("clock_zero", _set("clock_mhz", 0), "clock_mhz", ("0", "[0.001, 1e+06]")),
    ("empty_name", _set("name", " "), "name", ("non-empty",)),
    (
        "bad_enum",
        _set("device.signed_weights", "twos_complement"),
        "device.signed_weights",
        ("'twos_complement'", "'differential'", "'offset'", "'digital'"),
    ),
    ("bad_model", _set("energy_model", "magic"), "energy_model", ("'spikesim'", "'event'")),
    ("null_required", _set("crossbar.rows", None), "crossbar.rows", ("None", "an integer")),
    ("bad_version", _set("version", 2), "version", ("2", "supported versions: 1")),
    ("str_version", _set("version", "1"), "version", ("'1'", "supported versions: 1")),
    ("missing_version", _delete("version"), "version", ("missing", "supported versions: 1")),
    (
        "adc_group_not_divisor",
        _set("adc.columns_per_adc", 48),
        "adc.columns_per_adc",
        ("48", "divisor of crossbar.cols (64)"),
    ),
    ("roff_below_ron", _set("device.roff_ohm", 1000.0), "device.roff_ohm", ("device.ron_ohm",)),
    ("half_mesh", _set("noc.mesh_rows", 4), "noc.mesh_cols", ("both set or both null",)),
    ("unknown_mapping", _set("mapping.styl", "unrolled"), "mapping.styl", ("'style'",)),
    (
        "bad_style",
        _set("mapping.style", "diagonal"),
        "mapping.style",
        ("'diagonal'", "'kernel_split'", "'unrolled'"),
    ),
    ("bad_placement", _set("mapping.placement", "spiral"), "mapping.placement", ("'snake'",)),
    ("negative_area", _set("area_um2.adc", -1.0), "area_um2.adc", ("-1.0", "[0, 1e+12]")),
    ("missing_area", _delete("area_um2.crossbar"), "area_um2.crossbar", ("missing required",)),
    ("area_as_list", _set("area_um2", [1]), "area_um2", ("[1]", "a mapping")),
    ("unknown_area", _set("area_um2.adcs", 1.0), "area_um2.adcs", ("did you mean 'adc'",)),
    (
        "fusion_missing",
        _delete("fusion_unit.multiply_pj"),
        "fusion_unit.multiply_pj",
        ("missing required",),
    ),
    ("fusion_negative", _set("fusion_unit.compare_pj", -0.1), "fusion_unit.compare_pj", ("[0,",)),
    ("fusion_cycles", _set("fusion_unit.lut_cycles", 1.5), "fusion_unit.lut_cycles", ("integer",)),
    (
        "full_scale_zero",
        _both(_set("adc.full_scale", "explicit"), _set("adc.full_scale_ua", 0.0)),
        "adc.full_scale_ua",
        ("0.0", "(0, 1e+12]"),
    ),
    ("full_scale_str", _set("adc.full_scale_ua", "auto"), "adc.full_scale_ua", ("or null",)),
    (
        "full_scale_unread",
        _set("adc.full_scale_ua", 50.0),
        "adc.full_scale_ua",
        ("50.0", "'auto'", "exactly when adc.full_scale is 'explicit'"),
    ),
    (
        "explicit_without_current",
        _set("adc.full_scale", "explicit"),
        "adc.full_scale_ua",
        ("None", "'explicit'"),
    ),
    ("bad_full_scale", _set("adc.full_scale", "max"), "adc.full_scale", ("'calibrated'",)),
    (
        "percentile_unread",
        _set("adc.calibration_percentile", 95.0),
        "adc.calibration_percentile",
        ("95", "read only with adc.full_scale 'calibrated'"),
    ),
    (
        "percentile_range",
        _both(_set("adc.full_scale", "calibrated"), _set("adc.calibration_percentile", 0.0)),
        "adc.calibration_percentile",
        ("(0, 100]",),
    ),
    ("reference_bits", _set("adc.reference_bits", 0), "adc.reference_bits", ("1..16",)),
    ("bad_slicing", _set("device.slicing", "rows"), "device.slicing", ("'cells'", "'columns'")),
    (
        "conversion_cycles",
        _set("timing.cycles_per_conversion", 0),
        "timing.cycles_per_conversion",
        ("1..1000000",),
    ),
    (
        "neuron_layers",
        _set("buffers.neuron_memory_layers", 0),
        "buffers.neuron_memory_layers",
        ("(0, 1e+12]",),
    ),
    ("weight_bits_one", _set("device.weight_bits", 1), "device.weight_bits", ("2..32",)),
    ("pe_cycles_overflow", _set("timing.pe_cycles", 2**62), "timing.pe_cycles", ("1..1000000",)),
    ("pe_cycles_float", _set("timing.pe_cycles", 1e29), "timing.pe_cycles", ("an integer",)),
    ("energy_huge", _set("energy_pj.tile_buffer", 1e308), "energy_pj.tile_buffer", ("1e+12",)),
    ("clock_tiny", _set("clock_mhz", 1e-320), "clock_mhz", ("[0.001, 1e+06]",)),
    ("rows_huge", _set("crossbar.rows", 2**62), "crossbar.rows", ("8..4096",)),
    ("mesh_huge", _set("noc.mesh_rows", 100000), "noc.mesh_rows", ("1..1024",)),
    ("buffer_zero", _set("buffers.tile_buffer_bits", 0), "buffers.tile_buffer_bits", ("(0,",)),
    (
        "weight_wider_than_crossbar",
        _both(
            _set("device.weight_bits", 16),
            _set("device.slicing", "columns"),
            _set("crossbar.cols", 8),
        ),
        "crossbar.cols",
        ("got 8", "15 columns of one weight", "columns slicing"),
    ),
    ("negative_leakage", _set("leakage_mw", {"sram_bit": -1e-9}), "leakage_mw.sram_bit", ("[0,",)),
    ("unknown_leakage", _set("leakage_mw", {"sram": 1.0}), "leakage_mw.sram", ("'sram_bit'",)),
    (
        "offchip_missing",
        _set("offchip", {"pj_per_bit": 20.0}),
        "offchip.bits_per_cycle",
        ("missing required",),
    ),
    (
        "programming_rounds",
        _set("programming", {"pulse_pj": 1.0, "row_round_cycles": 15, "verify_rounds": 0}),
        "programming.verify_rounds",
        ("1..4096",),
    ),
    ("psum_bits", _set("partial_sums", {"bits": 0}), "partial_sums.bits", ("1..64",)),
    (
        "bad_sharing",
        _set("buffers.tile_buffer_sharing", "all"),
        "buffers.tile_buffer_sharing",
        ("'shared'",),
    ),
]


@pytest.mark.parametrize(
    ("case", "mutate", "key", "expected"), BAD_CASES, ids=[c[0] for c in BAD_CASES]
)
def test_bad_config_is_refused_naming_file_and_key(
    tmp_path: Path, case: str, mutate: Mutation, key: str, expected: tuple[str, ...]
) -> None:
    raw = copy.deepcopy(_raw())
    mutate(raw)
    path = _write(tmp_path, f"bad_{case}.yaml", raw)
    with pytest.raises(ArchConfigError) as info:
        load_arch(path)
    message = str(info.value)
    assert str(path) in message
    assert f": {key}: " in message
    assert info.value.key == key
    for part in expected:
        assert part in message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("version: 1\nname: x\nclock_mhz: 250\n  crossbar: 3\n", 4),  # bad indentation
        ("version: 1\nname: [a, b\nclock_mhz: 3\n", 3),  # unclosed flow sequence
        ("version: 1\nadc:\n  bits: 4\n  bits: 5\n", 4),  # duplicate key
    ],
    ids=["indent", "unclosed", "duplicate"],
)
def test_malformed_yaml_names_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    path = _write(tmp_path, "malformed.yaml", text)
    with pytest.raises(ArchConfigError) as info:
        load_arch(path)
    message = str(info.value)
    assert str(path) in message
    assert f"line {line}," in message
    assert "malformed YAML" in message


@pytest.mark.parametrize(
    ("text", "shown"),
    [("- 1\n- 2\n", "list"), ("just a string\n", "str"), ("", "null")],
    ids=["list", "scalar", "empty"],
)
def test_non_mapping_top_level_is_refused(tmp_path: Path, text: str, shown: str) -> None:
    path = _write(tmp_path, "top.yaml", text)
    with pytest.raises(ArchConfigError) as info:
        load_arch(path)
    assert str(path) in str(info.value)
    assert f"must be a mapping of keys (version, name, ...), got {shown}" in str(info.value)


def test_parse_arch_names_its_source() -> None:
    with pytest.raises(ArchConfigError, match=r"^inline-test: version: missing"):
        parse_arch({"name": "x"}, "inline-test")


def test_error_is_a_value_error() -> None:
    assert issubclass(ArchConfigError, ValueError)
    assert Architecture.__dataclass_params__.frozen  # type: ignore[attr-defined]
