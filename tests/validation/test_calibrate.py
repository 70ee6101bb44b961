"""hwsim.hw.calibrate: fitting cost-table entries to measurements. Synthetic measurements from a
known cost table (recovered), closed-form single-entry fits, refusals of under-determined
fits naming the entries, bounds, leave-one-out, and the written YAML."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from hwsim.errors import ConfigError, OutputError
from hwsim.hw.arch import Architecture, load_arch
from hwsim.hw.calibrate import (
    FreeEntry,
    Measurement,
    Quantity,
    UnidentifiableError,
    calibrate,
    cost_entries,
    evaluator,
    fit,
    read_measurements,
    with_entries,
)

ROOT = Path(__file__).resolve().parents[2]
SPIKESIM_YAML = ROOT / "arch_configs" / "spikesim.yaml"
BASE = load_arch(SPIKESIM_YAML)

# a known cost table: spikesim.yaml with five entries changed
TRUTH = {
    "energy_pj.adc": 2.5,
    "energy_pj.crossbar_read": 1.2,
    "area_um2.crossbar": 30.0,
    "area_um2.adc": 600.0,
    "area_um2.sram_bit": 0.8,
}
WORKLOADS = [
    ("pe:3x3", Quantity.PE_ENERGY),
    ("pe:1x1", Quantity.PE_ENERGY),
    ("vmm:256x128", Quantity.ENERGY),
    ("conv:64x128x3x8", Quantity.ENERGY),
    ("vgg11@0.25", Quantity.ENERGY),
    ("vmm:256x128", Quantity.AREA),
    ("conv:64x128x3x8", Quantity.AREA),
    ("vgg11@0.25", Quantity.AREA),
    ("vgg16@0.25", Quantity.AREA),
]


def measured(arch: Architecture, workloads=WORKLOADS, **fields) -> list[Measurement]:
    """Synthetic measurements: hwsim's values on `arch` (the known table)."""
    out = []
    for i, (workload, quantity) in enumerate(workloads):
        m = Measurement(f"m{i}", quantity, workload, 1.0, **fields)
        out.append(dataclasses.replace(m, value=evaluator(m)(arch)))
    return out


def free(*keys: str) -> list[FreeEntry]:
    return [FreeEntry(k) for k in keys]


def costs(arch: Architecture) -> dict[str, float]:
    """The cost entries the file sets (null ones left out)."""
    return {k: v for k, v in cost_entries(arch).items() if v is not None}


def test_recovers_a_known_cost_table() -> None:
    truth = with_entries(BASE, TRUTH)
    result = fit(BASE, measured(truth), free(*TRUTH))
    for entry in result.entries:
        assert entry.value == pytest.approx(TRUTH[entry.key], rel=1e-9), entry.key
        assert entry.base == cost_entries(BASE)[entry.key]
        assert entry.stderr is not None and entry.stderr < 1e-9 * entry.value
        assert not entry.at_bound
    for r in result.residuals:
        assert r.relative == pytest.approx(0.0, abs=1e-9)
        assert r.loo_relative == pytest.approx(0.0, abs=1e-9)  # 9 measurements, 5 entries
        assert r.before != pytest.approx(r.measured, rel=1e-6)  # the base table was off
    assert result.rms_relative < 1e-9 and result.loo_rms_relative < 1e-9
    # the calibrated architecture is the known one in every cost entry
    assert costs(result.arch) == pytest.approx(costs(truth), rel=1e-9)


def test_one_entry_one_measurement_is_the_hand_computed_ratio() -> None:
    # one PE operation of SpikeSim's 64 x 64 crossbar: 64 / 8 = 8 ADCs x 8 columns each = 64
    # conversions; the ADC component alone measures 64 x E_adc
    m = Measurement("adc", Quantity.PE_ENERGY, "pe:3x3", 100.0, component="adc")
    result = fit(BASE, [m], free("energy_pj.adc"))
    (entry,) = result.entries
    assert entry.value == pytest.approx(100.0 / 64, rel=1e-12)
    assert entry.stderr is None  # as many measurements as entries
    assert result.residuals[0].loo is None  # nothing left to fit without it
    assert result.loo_rms_relative is None


def test_two_inconsistent_measurements_closed_form_fit_and_leave_one_out() -> None:
    # y1 = 64 t (implies t = 1.0), y2 = 64 t (implies t = 1.2); relative residuals:
    # minimise (t - 1)^2 + (t / 1.2 - 1)^2 -> t = (1 + 1/1.2) / (1 + 1/1.44)
    ms = [
        Measurement("a", Quantity.PE_ENERGY, "pe:3x3", 64.0, component="adc"),
        Measurement("b", Quantity.PE_ENERGY, "pe:3x3", 76.8, component="adc"),
    ]
    result = fit(BASE, ms, free("energy_pj.adc"))
    t = (1 + 1 / 1.2) / (1 + 1 / 1.44)
    assert result.entries[0].value == pytest.approx(t, rel=1e-10)
    # leave one out: the other measurement alone sets t
    assert result.residuals[0].loo == pytest.approx(76.8, rel=1e-10)
    assert result.residuals[1].loo == pytest.approx(64.0, rel=1e-10)
    assert result.residuals[0].loo_relative == pytest.approx(0.2, rel=1e-10)
    # standard error: s^2 (J^T J)^-1, J = (1, 1/1.2), s^2 = RSS / (2 - 1)
    rss = (t - 1) ** 2 + (t / 1.2 - 1) ** 2
    assert result.entries[0].stderr == pytest.approx(math.sqrt(rss / (1 + 1 / 1.44)), rel=1e-8)
    # with equal absolute uncertainties the fit is the plain mean of the implied values
    even = [dataclasses.replace(m, sigma=1.0) for m in ms]
    assert fit(BASE, even, free("energy_pj.adc")).entries[0].value == pytest.approx(1.1)


def test_refuses_entries_that_enter_only_together_and_names_them() -> None:
    # every PE operation makes one mux switch per conversion: adc and mux cannot be told apart;
    # crossbar_read can (9 reads per column group for 3x3, 1 for 1x1)
    ms = measured(with_entries(BASE, TRUTH), WORKLOADS[:2])
    with pytest.raises(UnidentifiableError, match="energy_pj.adc, energy_pj.mux") as info:
        fit(BASE, ms, free("energy_pj.adc", "energy_pj.mux", "energy_pj.crossbar_read"))
    assert info.value.entries == ("energy_pj.adc", "energy_pj.mux")
    assert "crossbar_read" not in str(info.value)
    assert isinstance(info.value, ConfigError)
    # fixing mux leaves an identifiable fit
    fit(BASE, ms, free("energy_pj.adc", "energy_pj.crossbar_read"))


def test_refuses_an_entry_no_measurement_depends_on() -> None:
    ms = measured(BASE, WORKLOADS[:5])  # energies only: no area entry enters them
    with pytest.raises(UnidentifiableError, match="no measurement depends on area_um2.adc"):
        fit(BASE, ms, free("energy_pj.adc", "area_um2.adc"))
    # the SpikeSim energy model has no NoC term: its flit energy is never measured either
    with pytest.raises(UnidentifiableError) as info:
        fit(BASE, ms, free("energy_pj.noc_flit_hop"))
    assert info.value.entries == ("energy_pj.noc_flit_hop",)


def test_refuses_fewer_measurements_than_entries() -> None:
    ms = measured(BASE, WORKLOADS[:1])
    with pytest.raises(UnidentifiableError, match="1 measurements cannot identify 2") as info:
        fit(BASE, ms, free("energy_pj.adc", "energy_pj.crossbar_read"))
    assert set(info.value.entries) == {"energy_pj.adc", "energy_pj.crossbar_read"}


def test_bounds_hold_and_are_reported() -> None:
    truth = with_entries(BASE, TRUTH)
    ms = measured(truth, WORKLOADS[:5])
    capped = fit(
        BASE, ms, [FreeEntry.parse("energy_pj.adc=0:2"), FreeEntry("energy_pj.crossbar_read")]
    )
    adc = capped.entries[0]
    assert adc.value == pytest.approx(2.0) and adc.at_bound and adc.stderr is None
    # measurements below what the fixed entries alone give: the free entry rests at 0
    low = [dataclasses.replace(m, value=m.value * 0.01) for m in ms]
    floor = fit(BASE, low, free("energy_pj.adc")).entries[0]
    assert floor.value == pytest.approx(0.0, abs=1e-12) and floor.at_bound


def test_free_entry_parsing_and_checks() -> None:
    assert FreeEntry.parse("energy_pj.adc") == FreeEntry("energy_pj.adc", 0.0, math.inf)
    assert FreeEntry.parse(" area_um2.adc = 1.5 : 9 ") == FreeEntry("area_um2.adc", 1.5, 9.0)
    assert FreeEntry.parse("energy_pj.adc=0.5:") == FreeEntry("energy_pj.adc", 0.5, math.inf)
    with pytest.raises(ConfigError, match="KEY=LO:HI"):
        FreeEntry.parse("energy_pj.adc=3")
    ms = measured(BASE, WORKLOADS[:2])
    with pytest.raises(ConfigError, match="did you mean 'energy_pj.adc'"):
        fit(BASE, ms, free("energy_pj.adcc"))
    with pytest.raises(ConfigError, match="not a cost-table entry"):
        fit(BASE, ms, free("timing.pe_cycles"))
    with pytest.raises(ConfigError, match="given twice"):
        fit(BASE, ms, free("energy_pj.adc", "energy_pj.adc"))
    with pytest.raises(ConfigError, match="0 <= lower < upper"):
        fit(BASE, ms, [FreeEntry("energy_pj.adc", 3.0, 1.0)])
    with pytest.raises(ConfigError, match="no free entries"):
        fit(BASE, ms, [])


def test_measurement_checks() -> None:
    adc = free("energy_pj.adc")
    bad = [
        (Measurement("w", Quantity.ENERGY, "resnet99", 1.0), "expected pe:KHxKW"),
        (Measurement("w", Quantity.ENERGY, "vmm:12", 1.0), "2 positive integers"),
        (Measurement("w", Quantity.PE_ENERGY, "vmm:8x8", 1.0), "needs a workload pe:KHxKW"),
        (Measurement("w", Quantity.ENERGY, "vmm:8x8", 1.0, layer="conv9"), "has no layer"),
        (Measurement("w", Quantity.ENERGY, "vmm:8x8", 1.0, component="dac"), "component 'dac'"),
        (Measurement("w", Quantity.AREA, "vmm:8x8", 1.0, layer="layer"), "has no layer"),
    ]
    for m, message in bad:
        with pytest.raises(ConfigError, match=message):
            fit(BASE, [m], adc)
    with pytest.raises(ConfigError, match="unique"):
        fit(BASE, measured(BASE, [WORKLOADS[0]]) * 2, adc)
    with pytest.raises(ConfigError, match="zero value needs a sigma"):
        Measurement("z", Quantity.ENERGY, "vmm:8x8", 0.0)
    with pytest.raises(ConfigError, match="sigma -1.0; expected > 0"):
        Measurement("z", Quantity.ENERGY, "vmm:8x8", 1.0, sigma=-1.0)
    with pytest.raises(ConfigError, match="not finite"):
        Measurement("z", Quantity.ENERGY, "vmm:8x8", math.nan)


def write_csv(path: Path, ms: list[Measurement], head: str = "") -> Path:
    lines = [head, "id,quantity,workload,layer,component,value,sigma"] if head else []
    lines = lines or ["id,quantity,workload,layer,component,value,sigma"]
    for m in ms:
        sigma = "" if m.sigma is None else repr(m.sigma)
        lines.append(
            f"{m.id},{m.quantity.value},{m.workload},{m.layer or ''},{m.component or ''},"
            f"{m.value!r},{sigma}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_calibrate_writes_the_base_file_with_the_fitted_values_and_provenance(tmp_path) -> None:
    truth = with_entries(BASE, TRUTH)
    csv_path = write_csv(tmp_path / "m.csv", measured(truth))
    out = tmp_path / "out" / "calibrated.yaml"
    result = calibrate(SPIKESIM_YAML, csv_path, out, free(*TRUTH))
    assert result.out_path == out
    written = load_arch(out)
    assert costs(written) == pytest.approx(costs(truth), rel=1e-9)
    # everything but the cost entries is the base file's
    raw, base_raw = written.to_mapping(), BASE.to_mapping()
    for section in ("energy_pj", "area_um2"):
        raw.pop(section), base_raw.pop(section)
    assert raw == base_raw
    text = out.read_text(encoding="utf-8")
    base_lines = SPIKESIM_YAML.read_text(encoding="utf-8").splitlines()
    out_lines = text.splitlines()
    calibrated = [line for line in out_lines if "# calibrated" in line]
    assert len(calibrated) == len(TRUTH)
    assert "  adc: 2.5  # calibrated +/- " in text  # energy_pj.adc, 12 significant digits
    assert "  adc: 600.0  # calibrated +/- " in text  # area_um2.adc, with its base comment:
    assert "; base value 693.633; was: ADC (xbar_size/8 per PE)" in text
    # every other line of the base file is there, unchanged and in order
    kept = [line for line in out_lines if not line.startswith("#") and line not in calibrated]
    untouched = [line for line in base_lines if not line.startswith("#")]
    assert len(kept) == len(untouched) - len(TRUTH)
    assert set(kept) <= set(untouched)
    assert "m.csv" in text and "spikesim.yaml" in text and "leave-one-out" in text


def test_calibrate_adds_a_key_the_base_file_left_at_its_default(tmp_path) -> None:
    text = SPIKESIM_YAML.read_text(encoding="utf-8")
    router = next(line for line in text.splitlines() if line.startswith("  router:"))
    base_path = tmp_path / "base.yaml"
    base_path.write_text(text.replace(router + "\n", ""), encoding="utf-8")
    base = load_arch(base_path)
    assert base.area_um2.router == 0.0  # the default
    keys = {"area_um2.router": 5000.0, "area_um2.crossbar": 30.0, "area_um2.sram_bit": 0.8}
    areas = [w for w in WORKLOADS if w[1] is Quantity.AREA]
    csv_path = write_csv(tmp_path / "m.csv", measured(with_entries(base, keys), areas))
    out = tmp_path / "c.yaml"
    calibrate(base_path, csv_path, out, free(*keys))
    assert load_arch(out).area_um2.router == pytest.approx(5000.0, rel=1e-9)
    lines = out.read_text(encoding="utf-8").splitlines()
    added = next(i for i, line in enumerate(lines) if line.startswith("  router:"))
    section = max(i for i, line in enumerate(lines[:added]) if not line.startswith((" ", "#")))
    assert lines[section].startswith("area_um2:")


def test_free_entries_from_the_measurement_file(tmp_path) -> None:
    truth = with_entries(BASE, TRUTH)
    ms = measured(truth, WORKLOADS[:5])
    head = "# free: energy_pj.adc=0:10, energy_pj.crossbar_read"
    csv_path = write_csv(tmp_path / "m.csv", ms, head=head)
    read, listed = read_measurements(csv_path)
    assert listed == [FreeEntry("energy_pj.adc", 0.0, 10.0), FreeEntry("energy_pj.crossbar_read")]
    assert [m.value for m in read] == [m.value for m in ms] and read[0].sigma is None
    result = calibrate(SPIKESIM_YAML, csv_path, tmp_path / "c.yaml")
    assert [e.value for e in result.entries] == pytest.approx([2.5, 1.2], rel=1e-9)
    assert result.entries[0].upper == 10.0


def test_measurement_file_and_output_checks(tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,quantity,value\nx,energy_pj,1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="missing \\['workload'\\]"):
        read_measurements(bad)
    bad.write_text("quantity,workload,value,watts\nenergy_pj,pe:3x3,1,2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown \\['watts'\\]"):
        read_measurements(bad)
    bad.write_text("quantity,workload,value\npower,pe:3x3,1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="row 2: measurement 'row2': quantity 'power'"):
        read_measurements(bad)
    bad.write_text("quantity,workload,value\npe_energy_pj,pe:3x3,lots\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'lots' is not a number"):
        read_measurements(bad)
    bad.write_text("quantity,workload,value,sigma\npe_energy_pj,pe:3x3,0,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="zero value needs a sigma"):
        read_measurements(bad)
    bad.write_text("# only a comment\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="missing"):
        read_measurements(bad)
    good = write_csv(tmp_path / "m.csv", measured(BASE, WORKLOADS[:2]))
    with pytest.raises(OutputError, match="is the measurements file"):
        calibrate(SPIKESIM_YAML, good, good, free("energy_pj.adc"))
    copy = tmp_path / "arch.yaml"
    copy.write_text(SPIKESIM_YAML.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(OutputError, match="is the arch file"):
        calibrate(copy, good, copy, free("energy_pj.adc"))
    assert np.isfinite(load_arch(copy).energy_pj.adc)  # untouched


def test_cli_calibrate_recovers_the_table_and_refuses_an_unidentifiable_fit(tmp_path, capsys):
    from hwsim.cli import main

    truth = with_entries(BASE, TRUTH)
    csv_path = write_csv(tmp_path / "m.csv", measured(truth))
    out = tmp_path / "c.yaml"
    argv = ["calibrate", "--arch", str(SPIKESIM_YAML), "--measurements", str(csv_path)]
    keys = [arg for key in TRUTH for arg in ("--free", key)]
    assert main([*argv, "--out", str(out), *keys]) == 0
    assert costs(load_arch(out)) == pytest.approx(costs(truth), rel=1e-9)
    printed = capsys.readouterr().out
    assert "fitted entries" in printed and "leave-one-out" in printed and str(out) in printed
    # energy_pj.noc_flit_hop: no PE operation of these workloads sends a flit
    idle = tmp_path / "idle.yaml"
    assert main([*argv, "--out", str(idle), "--free", "energy_pj.noc_flit_hop"]) == 2
    err = capsys.readouterr().err
    assert "energy_pj.noc_flit_hop" in err and not idle.exists()
    # the output may not be an input
    assert main([*argv, "--out", str(csv_path), "--free", "energy_pj.adc"]) == 2
    assert "measurements" in capsys.readouterr().err
