"""hwsim against published numbers (references.yaml): every row within its tolerance, the
calibration rows reproduced by construction, and docs/validation.md's tables equal to the ones
computed now (so the document stays true)."""

from pathlib import Path

import pytest

from hwsim.hw.arch import load_arch
from tests.validation.reproduce import (
    DOC,
    HWSIM,
    NEUROSIM_INPUT_BITS,
    NEUROSIM_MIDDLE,
    README,
    README_TABLES,
    ROOT,
    TABLES,
    Row,
    doc_block,
    load_references,
    neurosim_vgg8,
    render,
    rows,
)

REFS = load_references()
ROLES = {"exact", "calibration", "predicted"}


@pytest.fixture(scope="module")
def computed() -> list[Row]:
    return rows()


def test_references_are_well_formed() -> None:
    designs = REFS["designs"]
    ids = [r["id"] for r in REFS["rows"]]
    assert len(ids) == len(set(ids)), "row ids must be unique"
    assert set(ids) == set(HWSIM), "every row has an hwsim value and every value a row"
    for name, design in designs.items():
        assert load_arch(ROOT / design["arch"]).name  # the arch file loads
        assert design["sources"], f"{name}: no sources"
    for r in REFS["rows"]:
        assert r["design"] in designs, r["id"]
        assert r["role"] in ROLES, r["id"]
        assert r["published"] > 0 and r["tolerance"] >= 0, r["id"]
        key = r["source"].split(" ")[0]
        assert key in designs[r["design"]]["sources"], f"{r['id']}: unknown source {key!r}"
        # a gap error is a documented prediction error: only predicted rows have one, with
        # the gap that explains it
        if "gap_error" in r:
            assert r["role"] == "predicted" and r.get("gap"), r["id"]


def test_at_least_four_designs_one_fabricated_with_predictions() -> None:
    designs = REFS["designs"]
    assert len(designs) >= 4
    predicted = {r["design"] for r in REFS["rows"] if r["role"] == "predicted"}
    fabricated = {n for n, d in designs.items() if d["kind"].startswith("fabricated")}
    assert fabricated & predicted, "a fabricated design with predicted numbers"


@pytest.mark.parametrize("row_id", [r["id"] for r in REFS["rows"]])
def test_row_within_tolerance(computed: list[Row], row_id: str) -> None:
    row = next(r for r in computed if r.id == row_id)
    assert row.drift <= row.tolerance, (
        f"{row.id}: hwsim {row.hwsim:.6g} {row.unit} against published {row.published:.6g}"
        f" ({100 * row.error:+.2f}%, stated gap {100 * row.gap_error:+.2f}%): drifted"
        f" {100 * row.drift:.3f}% > {100 * row.tolerance:.3f}%"
    )


def test_calibration_rows_carry_no_error_and_predictions_do(computed: list[Row]) -> None:
    summary = render("summary", computed)
    calibration = render("calibration", computed)
    for r in computed:
        line = f"| {r.quantity} ({r.unit}) |"
        if r.role == "calibration":
            assert line in calibration and line not in summary, r.id
        else:
            assert line in summary and line not in calibration, r.id
    assert "%" not in calibration


@pytest.mark.parametrize("table", TABLES)
def test_doc_tables_are_the_computed_ones(computed: list[Row], table: str) -> None:
    text = Path(DOC).read_text(encoding="utf-8")
    assert doc_block(text, table) == render(table, computed), (
        f"{DOC} is out of date: regenerate its '{table}' table with"
        " `.venv/bin/python tests/validation/reproduce.py`"
    )


def test_readme_summary_is_the_computed_one(computed: list[Row]) -> None:
    text = README.read_text(encoding="utf-8")
    for table in README_TABLES:
        assert doc_block(text, table) == render(table, computed), (
            f"{README} is out of date: regenerate it with"
            " `.venv/bin/python tests/validation/reproduce.py --write`"
        )


def test_neurosim_event_counts_are_the_arch_files() -> None:
    """arch_configs/neurosim_vgg8.yaml divides NeuroSim's layers-2-7 energies by 1196032 PE
    operations (128 conversions each) and its gaps count 4194304 layer-1 conversions: hwsim's
    mapping must count the same. By hand: output positions x ceil(kernel rows / 128) x
    ceil(C_out / 32) per input bit (an 8-bit weight on 4 of a crossbar's 128 columns)."""
    by_hand = {
        "layer1": 32 * 32 * 1 * 4,  # 27 rows
        "layer2": 32 * 32 * 9 * 4,  # 1152 rows
        "layer3": 16 * 16 * 9 * 8,
        "layer4": 16 * 16 * 18 * 8,
        "layer5": 8 * 8 * 18 * 16,
        "layer6": 8 * 8 * 36 * 16,
        "layer7": 1 * 64 * 32,  # 8192 rows, 1024 outputs
        "layer8": 1 * 8 * 1,  # 1024 rows, 10 outputs
    }
    mapping = neurosim_vgg8()
    assert {m.name: m.pe_operations for m in mapping.layers} == by_hand
    middle = sum(mapping.layer(name).pe_operations for name in NEUROSIM_MIDDLE)
    assert middle * NEUROSIM_INPUT_BITS == 1196032
    conversions = mapping.arch.adcs_per_crossbar * mapping.arch.adc_rounds
    assert by_hand["layer1"] * NEUROSIM_INPUT_BITS * conversions == 4194304
