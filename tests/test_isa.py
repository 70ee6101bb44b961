"""The instruction-set narrowing environment (hwsim.isa): hand-written feature lists."""

from hwsim.isa import TORCH_ISA, Isa, environment, narrowed_features

HOST = "+64bit,+avx,+avx2,+avx512f,+avx512bw,-amx-tile,+avxvnni,+fma,+f16c,+sse4.2,+bmi2"


def test_avx2_switches_off_avx512_and_vnni_only():
    got = narrowed_features(Isa.AVX2, HOST)
    assert got == "+64bit,+avx,+avx2,-avx512f,-avx512bw,-amx-tile,-avxvnni,+fma,+f16c,+sse4.2,+bmi2"


def test_sse4_switches_off_every_avx_and_fma():
    got = narrowed_features(Isa.SSE4, HOST)
    assert got == "+64bit,-avx,-avx2,-avx512f,-avx512bw,-amx-tile,-avxvnni,-fma,-f16c,+sse4.2,+bmi2"


def test_environment_narrows_torch_and_numba_together():
    env = environment(Isa.AVX2, HOST)
    assert env["NUMBA_CPU_NAME"] == "haswell"
    assert "-avx512f" in env["NUMBA_CPU_FEATURES"].split(",")
    assert {k: env[k] for k in TORCH_ISA[Isa.AVX2]} == TORCH_ISA[Isa.AVX2]


def test_environment_queries_the_host_when_not_given():
    features = environment(Isa.AVX2)["NUMBA_CPU_FEATURES"].split(",")
    assert features and not any(f.startswith("+avx512") for f in features)
