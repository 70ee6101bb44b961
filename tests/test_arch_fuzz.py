"""Property-based fuzzing of the architecture YAML: whatever one mutation of spikesim.yaml does
(a value of another type, NaN, infinities, huge or negative numbers, a deleted or unknown key),
`hwsim estimate` ends with exit 0 and finite, non-negative outputs, or with exit 2 and a
message naming the file and the key; never a traceback."""

import math
from pathlib import Path

import pandas as pd
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
BASE = yaml.safe_load((ROOT / "arch_configs" / "spikesim.yaml").read_text())


def _leaves(d: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for k, v in d.items():
        out += _leaves(v, (*prefix, k)) if isinstance(v, dict) else [(*prefix, k)]
    return out


LEAVES = _leaves(BASE)
VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 2**62, 1e308, 1e-320, "", "x", None, True, [], {}]),
    st.text(max_size=8),
)


@st.composite
def mutations(draw):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    path = draw(st.sampled_from(LEAVES))
    node = raw
    for k in path[:-1]:
        node = node[k]
    action = draw(st.sampled_from(["set", "set", "set", "delete", "unknown"]))
    if action == "delete":
        del node[path[-1]]
    elif action == "unknown":
        node[path[-1] + "_typo"] = draw(VALUES)
    else:
        node[path[-1]] = draw(VALUES)
    return ".".join(map(str, path)), raw


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutation=mutations())
def test_any_single_mutation_is_accepted_with_finite_outputs_or_refused_by_key(
    mutation, tmp_path, capsys
):
    key, raw = mutation
    arch = tmp_path / "fuzz.yaml"
    arch.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    argv = ["estimate", "--arch", str(arch), "--net", "vgg11", "--input", "1x16x16"]
    code = main([*argv, "--width", "0.0625", "--out", str(out), "--quiet"])
    text = " ".join((lambda o: o.out + o.err)(capsys.readouterr()).split())
    assert "Traceback" not in text and "internal error" not in text, text
    assert code in (0, 2), text
    if code == 2:
        assert "fuzz.yaml" in text, text
        return
    frame = pd.read_csv(out / "energy_breakdown.csv")
    charged = [c for c in frame.columns if c.endswith("_pj") or c == "pe_operations"]
    values = frame[charged].to_numpy(float).ravel()
    assert all(math.isfinite(v) and v >= 0 for v in values), (key, text)
