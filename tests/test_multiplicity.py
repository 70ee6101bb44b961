"""Intervals simultaneous over a sweep's positions (hwsim.metrics.simultaneous and
hwsim.pipeline.evaluate.simultaneous_rows): the intervals by hand from order statistics, their
nesting, and their family-wise coverage on synthetic sweeps of known effects."""

import dataclasses
import json

import numpy as np
import pytest

from hwsim.errors import InputError
from hwsim.methods import BASELINES, METHODS, Method
from hwsim.metrics import (
    CurveEstimates,
    Estimate,
    Multiplicity,
    Summary,
    TargetResult,
    estimate,
    resample_counts,
    simultaneous,
)
from hwsim.pipeline.evaluate import simultaneous_rows
from hwsim.results import MethodOutcome, SweepRow


def synthetic_sweep(seed, m=12, n=1000, resamples=400, rho=0.5, effects=None, level=0.90):
    """One sweep of m positions over the same n test images (MNIST-5k's test set has 1,000;
    with a few hundred the percentile intervals' own under-coverage in the far tail shows:
    family-wise errors of 0.13-0.14 at n = 300): at position j each image's
    difference is rho z_i + sqrt(1 - rho^2) e_ij + effect_j (z_i the image's shared
    difficulty), the statistic its mean; every position bootstrapped on the same resamples
    (paired), as a sweep's IC positions are. Returns the estimates and the true effects."""
    rng = np.random.default_rng(seed)
    effects = np.zeros(m) if effects is None else np.asarray(effects, float)
    z = rng.standard_normal(n)[:, None]
    d = rho * z + np.sqrt(1 - rho**2) * rng.standard_normal((n, m)) + effects
    weights = resample_counts(n, resamples, seed + 10_000).astype(np.float64)
    samples = weights @ d / n
    return [estimate(d[:, j].mean(), samples[:, j], level) for j in range(m)], effects


def order_statistic_interval(samples, level):
    s = np.sort(samples[~np.isnan(samples)])
    a = (1 - level) / 2
    return s[int(np.ceil(a * s.size)) - 1], s[int(np.ceil((1 - a) * s.size)) - 1]


def test_bonferroni_takes_each_percentile_interval_at_the_adjusted_level():
    ests, _ = synthetic_sweep(1, m=5)
    sim = simultaneous(ests, 0.9, Multiplicity.BONFERRONI)
    assert sim.per_position_level == pytest.approx(1 - 0.1 / 5)
    for e, s in zip(ests, sim.intervals, strict=True):
        assert (s.lo, s.hi) == order_statistic_interval(e.samples, 1 - 0.1 / 5)
        assert s.value == e.value
    # a family larger than the estimates given (one grid cell of a 5-position sweep)
    one = simultaneous(ests[2:3], 0.9, Multiplicity.BONFERRONI, family=5)
    assert one.intervals[0] == sim.intervals[2]
    with pytest.raises(InputError, match="family"):
        simultaneous(ests, 0.9, Multiplicity.MAX, family=6)
    with pytest.raises(ValueError, match="samples"):
        simultaneous([Estimate(0.0, -1.0, 1.0)], 0.9)


def test_max_type_intervals_lie_between_the_per_position_and_bonferroni_ones():
    for rho in (0.0, 0.5, 0.95):
        ests, _ = synthetic_sweep(2, rho=rho)
        bonf = simultaneous(ests, 0.9, Multiplicity.BONFERRONI)
        mx = simultaneous(ests, 0.9, Multiplicity.MAX)
        assert 0.9 <= mx.per_position_level <= bonf.per_position_level
        for e, a, b in zip(ests, mx.intervals, bonf.intervals, strict=True):
            assert b.lo <= a.lo <= e.lo and e.hi <= a.hi <= b.hi
        # the calibration: at least 90% of the resamples fall inside all intervals at once
        joint = np.column_stack([e.samples for e in ests])
        inside = np.all((joint >= [x.lo for x in mx.intervals])
                        & (joint <= [x.hi for x in mx.intervals]), axis=1)  # fmt: skip
        assert inside.mean() >= 0.9
    # identical positions: no multiplicity at all
    same = [ests[0]] * 6
    assert simultaneous(same, 0.9).intervals == tuple([ests[0]] * 6)


def test_simultaneous_coverage_is_nominal_on_synthetic_sweeps_of_zero_effects():
    """Many sweeps of 12 positions whose true effects are all 0: the share of sweeps in which
    any interval misses 0 (the family-wise error) stays at or below 10% within Monte-Carlo
    error for both corrections, while uncorrected 90% intervals miss far more often."""
    reps = 250
    misses = {"per-position": 0, Multiplicity.BONFERRONI: 0, Multiplicity.MAX: 0}
    for r in range(reps):
        ests, _ = synthetic_sweep(100 + r)
        misses["per-position"] += any(e.excludes_zero() for e in ests)
        for method in (Multiplicity.BONFERRONI, Multiplicity.MAX):
            misses[method] += bool(simultaneous(ests, 0.9, method).survivors)
    se = np.sqrt(0.1 * 0.9 / reps)
    assert misses[Multiplicity.BONFERRONI] / reps <= 0.10 + 3 * se
    assert misses[Multiplicity.MAX] / reps <= 0.10 + 3 * se
    assert misses[Multiplicity.MAX] >= misses[Multiplicity.BONFERRONI]  # the less conservative
    assert misses["per-position"] / reps > 0.3


def test_survivors_are_the_positions_with_real_effects():
    effects = np.zeros(12)
    effects[[2, 7]] = 0.5  # large against the standard error ~ 1 / sqrt(300)
    hits = {Multiplicity.BONFERRONI: 0, Multiplicity.MAX: 0}
    for r in range(40):
        ests, _ = synthetic_sweep(500 + r, effects=effects)
        for method in hits:
            survivors = simultaneous(ests, 0.9, method).survivors
            hits[method] += {2, 7} <= set(survivors)
    assert hits[Multiplicity.BONFERRONI] == 40 and hits[Multiplicity.MAX] == 40


def sweep_rows(ests_by_method):
    """SweepRows whose R of each method against each baseline carries the given estimates
    (one list of m estimates per method, reused for both baselines)."""
    m = len(next(iter(ests_by_method.values())))
    rows = []
    for j in range(m):
        methods = {}
        for method in METHODS:
            e = ests_by_method[method][j]
            target = TargetResult(str(method), 0.9, 10, 0.9, 1.0)
            est = CurveEstimates(e, e, e, {b.method: e for b in BASELINES}, ())
            methods[method] = MethodOutcome.of(method, Summary(target, 0.5, e.value), est)
        rows.append(SweepRow(j, 0.9, 0.95, 0.9, methods))
    return rows


def test_simultaneous_rows_give_each_r_its_interval_and_survival():
    ests = {m: synthetic_sweep(7 + i, m=4)[0] for i, m in enumerate(METHODS)}
    rows = sweep_rows(ests)
    out = simultaneous_rows(rows, 0.9)  # Bonferroni over the 4 positions
    for j, row in enumerate(out):
        assert (row.family, row.multiplicity) == (4, Multiplicity.BONFERRONI)
        for method, o in row.methods.items():
            for base, red in o.reductions.items():
                want = ests[method][j].at_level(1 - 0.1 / 4)
                assert red.simultaneous_ci == (want.lo, want.hi), (method, base)
                assert red.survives == want.excludes_zero()
                assert red.ci == rows[j].methods[method].reductions[base].ci  # kept
    # one grid cell alone, told its sweep has 4 positions, gets the same intervals
    cell = simultaneous_rows(rows[1:2], 0.9, family=4)[0]
    assert cell.methods == out[1].methods
    mx = simultaneous_rows(rows, 0.9, Multiplicity.MAX)
    red = mx[0].methods[Method.BSF_GRID].reductions[Method.DL]
    bonf = out[0].methods[Method.BSF_GRID].reductions[Method.DL]
    assert bonf.simultaneous_ci[0] <= red.simultaneous_ci[0] <= red.ci[0]
    with pytest.raises(InputError, match="family"):
        simultaneous_rows(rows[:2], 0.9, Multiplicity.MAX, family=4)
    bare = [dataclasses.replace(r, methods={}) for r in rows]
    assert simultaneous_rows(bare, 0.9)[0].family == 4


def test_simultaneous_columns_and_the_tie_rule_read_back_from_csv():
    # sweep.csv carries each R's simultaneous interval (_simlo, _simhi), the positions and the
    # method they hold over, and the tie rule; a row read back is the same row
    from hwsim.methods import TieRule, Ties, reduction_column
    from hwsim.pipeline.evaluate import row_of_payload, row_payload

    ests = {m: synthetic_sweep(30 + i, m=3)[0] for i, m in enumerate(METHODS)}
    rows = [dataclasses.replace(r, ties=Ties(TieRule.RANDOM, 3)) for r in sweep_rows(ests)]
    out = simultaneous_rows(rows, 0.9)
    d = out[2].to_dict()
    assert d["ties"] == "random:3"
    assert (d["simultaneous_positions"], d["simultaneous_method"]) == (3, "bonferroni")
    base = BASELINES[0]
    col = reduction_column(base, Method.BSF_GRID)
    want = ests[Method.BSF_GRID][2].at_level(1 - 0.1 / 3)
    assert (d[f"{col}_simlo"], d[f"{col}_simhi"]) == (want.lo, want.hi)
    assert SweepRow.from_dict(d) == out[2]
    # without simultaneous intervals the columns are empty and read back as not computed
    plain = rows[0].to_dict()
    assert plain[f"{col}_simlo"] is None and plain["simultaneous_method"] is None
    assert SweepRow.from_dict(plain) == rows[0]
    # the result store's form keeps the samples: the same intervals at any family size
    back = row_of_payload(json.loads(json.dumps(row_payload(rows[1]))), 0.9)
    assert back == rows[1]
    again = simultaneous_rows([back], 0.9, family=3)[0]
    assert again.methods == out[1].methods
