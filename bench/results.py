"""Write docs/results/: the numbers README and docs quote, from real runs, with the machine.

    .venv/bin/python bench/results.py                     # every job not done yet
    .venv/bin/python bench/results.py --only default-fair sweep-mnist5k-fair
    .venv/bin/python bench/results.py --images 2000 --only sweep-fashion-fair

Jobs (`JOBS`): the default run (`hwsim run --arch arch_configs/spikesim.yaml --model
models/vgg19.pt`, 1,000 MNIST-5k test images, cycle timing) and the sweeps of IC positions
3..14 of MNIST-5k (models/vgg19.pt) and Fashion-MNIST (models/vgg19_fashion.pt), each under the
fair tie rule (the default) and the ties-are-wrong rule of earlier versions. Each job writes
`<job>.csv` and `<job>.json` (the machine: uname, CPU model and its AVX flags, cores, load
before and after, the wall time, the commit and whether the tree had changes, the settings)
as soon as it is done, and is skipped when both exist (so an interrupted run resumes where it
stopped; `--force` redoes). `README.md` is rebuilt from every job present each time.

Sweep rows carry R of every method against DL and SL with three intervals: per position (90%,
paired bootstrap), Bonferroni over the 12 positions and the max-type calibration
(`hwsim.metrics.simultaneous`); "survives" means the simultaneous interval excludes 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from hwsim import api
from hwsim.fusion import TuningConfig
from hwsim.methods import BASELINES, METHODS, Method, TieRule, Ties, fused_methods
from hwsim.metrics import Multiplicity, auc, simultaneous
from hwsim.pipeline.evaluate import simultaneous_rows

ROOT = Path(__file__).resolve().parents[1]
ARCH = ROOT / "arch_configs" / "spikesim.yaml"
MODELS = {"mnist5k": ROOT / "models" / "vgg19.pt", "fashion": ROOT / "models" / "vgg19_fashion.pt"}
IC_POSITIONS = tuple(range(3, 15))
LEVEL = 0.90
RULES = (Ties(TieRule.FAIR), Ties(TieRule.WRONG))


# --------------------------------------------------------------------------- the machine


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def machine() -> dict:
    """What the numbers were measured on: uname, CPU model and vector extensions, cores
    usable, load averages, library versions, the commit."""
    cpu, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and cpu == "unknown":
                cpu = value.strip()
            if key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    import numba
    import numpy
    import torch

    u = platform.uname()
    return {
        "uname": f"{u.system} {u.release} {u.version} {u.machine}",
        "cpu": cpu,
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "amx": any(f.startswith("amx") for f in flags),
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__,
        "commit": _git("rev-parse", "--short", "HEAD"),
        "changed_files": len(_git("status", "--porcelain").splitlines()),
    }


# --------------------------------------------------------------------------- jobs


def _ci(x: tuple[float, float] | None) -> tuple[float, float]:
    return (math.nan, math.nan) if x is None else x


def default_run(ties: Ties, images: int | None, traces: Path) -> pd.DataFrame:
    """The default run's headline numbers per method (the run's table)."""
    cfg = api.RunConfig(
        arch=ARCH,
        model=MODELS["mnist5k"],
        images=images,
        trace_root=traces,
        tuning=TuningConfig(ties=ties),
    )
    result = api.run(cfg)
    ev = result.evaluation
    checks = result.cycles.fusion.checks if result.cycles and result.cycles.fusion else {}
    # the AUC depends on its energy limit: DL's energy at T (the run's) and to the target
    limits = {"T": float(ev.curves[Method.DL].energy_pj[-1])}
    to_target = ev.summary[Method.DL].target.energy_pj
    if to_target is not None:
        limits["target"] = float(to_target)
    rows = []
    for m in METHODS:
        est = ev.bootstrap.curves[m]
        s = ev.summary[m]
        row = {
            "ties": str(ties),
            "ic": ev.ic,
            "method": str(m),
            "target": ev.target,
            "accuracy_at_T": float(ev.curves[m].accuracy[-1]),
            "steps": s.target.timestep,
            "steps_lo": est.timestep.lo,
            "steps_hi": est.timestep.hi,
            "energy_uj": None if s.target.energy_pj is None else s.target.energy_pj / 1e6,
            "auc": s.auc,
            "auc_lo": est.auc.lo,
            "auc_hi": est.auc.hi,
            "auc_limit_uj": limits["T"] / 1e6,
        }
        for name, limit in limits.items():
            row[f"auc_to_dl_{name}"] = auc(ev.curves[m], limit)
            row[f"auc_to_dl_{name}_limit_uj"] = limit / 1e6
        for b in BASELINES:
            if b.method is m:
                continue
            r = est.reduction_pct[b.method]
            key = f"r_vs_{b.method.key}"
            row |= {key: r.value, f"{key}_lo": r.lo, f"{key}_hi": r.hi}
        if m in fused_methods():
            chosen = ev.fusion.tuning.lut_choice[m].chosen
            row |= {
                "lut_entries": chosen.entries,
                "lut_format": f"{chosen.int_bits}.{chosen.frac_bits}",
            }
        if m in checks:
            c = checks[m]
            row |= {"unit_mismatches": c.mismatches, "unit_decisions": c.images * c.timesteps}
        rows.append(row)
    return pd.DataFrame(rows)


def sweep(model: str, ties: Ties, images: int | None, traces: Path) -> pd.DataFrame:
    """R of every fused method and early exit against DL and SL at every IC position, with
    per-position, Bonferroni and max-type intervals."""
    cfg = api.SweepConfig(
        arch=ARCH,
        model=MODELS[model],
        images=images,
        trace_root=traces,
        tuning=TuningConfig(ties=ties),
        ic_positions=IC_POSITIONS,
    )
    rows = api.sweep(cfg)
    corrected = {k: simultaneous_rows(rows, LEVEL, k) for k in Multiplicity}
    levels = {
        (k, m, b): simultaneous(
            [r.methods[m].reductions[b].estimate for r in rows], LEVEL, k
        ).per_position_level
        for k in Multiplicity
        for m, o in rows[0].methods.items()
        for b in o.reductions
    }
    out = []
    for j, row in enumerate(rows):
        base = {
            "ties": str(ties),
            "ic": row.ic,
            "ann_accuracy_ic": row.ann_accuracy_ic,
            "target": row.target_accuracy,
            **{f"steps_{m.key}": o.timestep for m, o in row.methods.items()},
        }
        for m, o in row.methods.items():
            if m in (Method.DL, Method.SL):
                continue
            for b, red in o.reductions.items():
                value = red.estimate.value  # +-inf: only one of the two reaches the target
                rec = {**base, "method": str(m), "baseline": str(b), "r": value}
                rec["lo"], rec["hi"] = _ci(red.ci)
                for k, sim in corrected.items():
                    got = sim[j].methods[m].reductions[b]
                    rec[f"{k}_lo"], rec[f"{k}_hi"] = _ci(got.simultaneous_ci)
                    rec[f"{k}_survives"] = bool(got.survives)
                    rec[f"{k}_level"] = levels[k, m, b]
                out.append(rec)
    return pd.DataFrame(out)


JOBS: dict[str, Callable[[int | None, Path], pd.DataFrame]] = {}
for _ties in RULES:
    JOBS[f"default-{_ties.rule}"] = lambda n, tr, t=_ties: default_run(t, n, tr)
    for _model in MODELS:
        JOBS[f"sweep-{_model}-{_ties.rule}"] = lambda n, tr, t=_ties, m=_model: sweep(m, t, n, tr)


def run_job(name: str, out: Path, images: int | None, traces: Path, force: bool) -> None:
    csv, meta = out / f"{name}.csv", out / f"{name}.json"
    if csv.is_file() and meta.is_file() and not force:
        print(f"{name}: done before ({csv.name}), skipped", flush=True)
        return
    before = machine() | {"load_before": os.getloadavg()}
    start = time.perf_counter()
    frame = JOBS[name](images, traces)
    seconds = time.perf_counter() - start
    frame.to_csv(csv, index=False)
    info = before | {
        "load_after": os.getloadavg(),
        "seconds": round(seconds, 1),
        "job": name,
        "images": images,
        "started_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime(time.time() - seconds)),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    meta.write_text(json.dumps(info, indent=1) + "\n")
    print(f"{name}: {seconds:.0f} s -> {csv}", flush=True)


# --------------------------------------------------------------------------- the summary


def _fmt(v, digits=1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "+inf" if v > 0 else "-inf"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _interval(lo, hi, digits=1) -> str:
    return f"[{_fmt(lo, digits)}, {_fmt(hi, digits)}]"


def _machine_line(info: dict) -> str:
    load = "/".join(f"{x:.1f}" for x in info["load_before"][:1] + info["load_after"][:1])
    vec = "AVX-512" if info["avx512f"] else ("AVX2" if info["avx2"] else "no AVX2")
    images = info["images"] if info["images"] is not None else "all"
    return (
        f"{info['started_utc']} UTC, {info['seconds']:.0f} s; {info['cpu']} ({vec}), "
        f"{info['cores']} cores, 1-min load {load} (before/after); {info['uname']}; "
        f"commit {info['commit']} with {info['changed_files']} changed files; test images: {images}"
    )


def auc_table(frame: pd.DataFrame) -> list[str]:
    """The AUC of each method relative to DL's at two energy limits: DL's energy at T (the run's
    normalisation) and DL's energy to the target."""
    dl = frame[frame["method"] == "DL"].iloc[0]
    lines = [
        f"AUC (normalised) and its change against DL at two energy limits: DL's energy at T"
        f" ({dl['auc_to_dl_T_limit_uj']:.1f} uJ) and DL's energy to the target"
        f" ({dl['auc_to_dl_target_limit_uj']:.1f} uJ):",
        "",
        "| ties | method | AUC to E_DL(T) | vs DL | AUC to E_DL(target) | vs DL |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in frame.iterrows():
        cells = []
        for name in ("T", "target"):
            v, base = r[f"auc_to_dl_{name}"], dl[f"auc_to_dl_{name}"]
            cells.append(f"{v:.4f} | {100 * (v / base - 1):+.1f}%")
        lines.append(f"| {r['ties']} | {r['method']} | {' | '.join(cells)} |")
    return lines


def default_table(frame: pd.DataFrame) -> list[str]:
    lines = [
        "| ties | method | steps | accuracy at T (%) | energy (uJ) | R vs DL (%) | R vs SL (%) "
        "| AUC | LUT | fixed-point mismatches |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in frame.iterrows():
        lut = (
            "-"
            if pd.isna(r.get("lut_entries"))
            else f"{int(r['lut_entries'])} in {r['lut_format']}"
        )
        mism = "-"
        if not pd.isna(r.get("unit_mismatches", math.nan)):
            mism = f"{int(r['unit_mismatches'])} of {int(r['unit_decisions']):,}"
        rdl = (
            "-"
            if r["method"] == "DL"
            else (f"{_fmt(r['r_vs_dl'])} {_interval(r['r_vs_dl_lo'], r['r_vs_dl_hi'])}")
        )
        rsl = (
            "-"
            if r["method"] == "SL"
            else (f"{_fmt(r['r_vs_sl'])} {_interval(r['r_vs_sl_lo'], r['r_vs_sl_hi'])}")
        )
        step = None if pd.isna(r["steps"]) else int(r["steps"])
        steps = f"{_fmt(step)} {_interval(r['steps_lo'], r['steps_hi'], 0)}"
        lines.append(
            f"| {r['ties']} | {r['method']} | {steps} | {100 * r['accuracy_at_T']:.2f} "
            f"| {_fmt(r['energy_uj'])} | {rdl} | {rsl} "
            f"| {r['auc']:.4f} {_interval(r['auc_lo'], r['auc_hi'], 4)} | {lut} | {mism} |"
        )
    return lines


def sweep_table(frame: pd.DataFrame, method: str, baseline: str) -> list[str]:
    part = frame[(frame["method"] == method) & (frame["baseline"] == baseline)]
    lines = [
        f"| IC | IC ANN acc. | R of {method} vs {baseline} (%) | 90% per position "
        "| Bonferroni-12 | survives | max-type | survives |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, r in part.iterrows():
        lines.append(
            f"| {r['ic']} | {100 * r['ann_accuracy_ic']:.1f}% | {_fmt(r['r'])} "
            f"| {_interval(r['lo'], r['hi'])} "
            f"| {_interval(r['bonferroni_lo'], r['bonferroni_hi'])} "
            f"| {'**yes**' if r['bonferroni_survives'] else 'no'} "
            f"| {_interval(r['max_lo'], r['max_hi'])} "
            f"| {'**yes**' if r['max_survives'] else 'no'} |"
        )
    levels = part[["bonferroni_level", "max_level"]].iloc[0] if len(part) else None
    if levels is not None:
        lines.append("")
        lines.append(
            f"Per-position percentile levels: Bonferroni {100 * levels['bonferroni_level']:.2f}%,"
            f" max-type {100 * levels['max_level']:.2f}% (simultaneous 90% over the positions)."
        )
    return lines


def summary(out: Path) -> None:
    lines = [
        "# Results",
        "",
        "Written by `bench/results.py` from the runs named below (each with the machine it ran",
        "on); do not edit by hand. Intervals: 90%, 1,000 paired bootstrap resamples of the test",
        "images. R is eq. 33 against DL or SL; AUC is normalised by DL's energy at T (its limit,",
        "column `auc_limit_uj` of the CSV). `ties`: the tie rule every method, tuning and",
        "interval used (`fair`: a k-way tie that holds the label earns 1/k, the default; `wrong`:",
        "a tied top class counts as wrong, the rule of earlier versions).",
        "",
    ]
    for name in JOBS:
        csv, meta = out / f"{name}.csv", out / f"{name}.json"
        if not (csv.is_file() and meta.is_file()):
            continue
        info = json.loads(meta.read_text())
        frame = pd.read_csv(csv)
        lines += [f"## {name}", "", f"Machine: {_machine_line(info)}.", ""]
        if name.startswith("default"):
            lines += default_table(frame)
            if "auc_to_dl_target" in frame:
                lines += [""] + auc_table(frame)
        else:
            for method in ("BSF-Grid", "BSF-Emp"):
                for base in ("DL", "SL"):
                    lines += [f"**{method} against {base}**", ""]
                    lines += sweep_table(frame, method, base) + [""]
        lines.append("")
    (out / "README.md").write_text("\n".join(lines).rstrip() + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(JOBS), help="jobs to run (default all)")
    parser.add_argument("--images", type=int, default=None, help="test images (default: all)")
    parser.add_argument("--traces", type=Path, default=ROOT / "traces", help="trace cache")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    parser.add_argument("--force", action="store_true", help="redo jobs already done")
    parser.add_argument("--summary-only", action="store_true", help="only rebuild README.md")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.summary_only:
        for name in args.only or list(JOBS):
            run_job(name, args.out, args.images, args.traces, args.force)
    summary(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
