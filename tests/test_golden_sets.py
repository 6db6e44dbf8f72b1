"""The golden-only vector sets (issue 16, part 5): the log quantizer and the MTTS decoder, written by
``spikeforge vectors``, reloaded through the manifest's hash checks and compared (==) with
implementations written here from docs/numeric-contract.md alone, in exact rational arithmetic."""

from fractions import Fraction

import pytest

from golden.logquant import INPUT_FRAC
from golden.vectors import load_vectors
from spikeforge.cli import main


def round_log2(x: Fraction) -> int:
    """e with 2^(e - 1/2) <= x < 2^(e + 1/2), i.e. 2^(2e - 1) <= x^2 < 2^(2e + 1), for x > 0."""
    e = x.numerator.bit_length() - x.denominator.bit_length()   # within 1 of log2 x
    for cand in range(e - 2, e + 3):
        if Fraction(2) ** (2 * cand - 1) <= x * x < Fraction(2) ** (2 * cand + 1):
            return cand
    raise AssertionError(x)


def log_quantize_ref(weights: list[int], code_bits: int, levels: int) -> tuple[int, list[int], list[int]]:
    reals = [Fraction(w, 1 << INPUT_FRAC) for w in weights]
    peak = max(abs(r) for r in reals)
    f = 0 if peak == 0 else (levels - 1) - round_log2(peak)
    codes, decoded = [], []
    for r in reals:
        x = abs(r) * Fraction(2) ** f
        if x < Fraction(1, 2):
            codes.append(0)
            decoded.append(0)
            continue
        s = min(max(round_log2(x), 0), levels - 1)
        sign = 1 if r < 0 else 0
        codes.append((sign << (code_bits - 1)) | (s + 1))
        decoded.append(-(1 << s) if sign else 1 << s)
    return f, codes, decoded


@pytest.mark.parametrize("options", [[], ["--code-bits", "5", "--levels", "12"], ["--code-bits", "3", "--levels", "2"]])
def test_logquant_vectors_equal_an_independent_quantizer(options, tmp_path):
    out = tmp_path / "lq"
    assert main(["vectors", "logquant", *options, "--count", "600", "--seed", "3", "-o", str(out)]) == 0
    v = load_vectors(out, block="logquant")
    weights = [int(w) for w in v["weights"]]
    f, codes, decoded = log_quantize_ref(weights, v.spec["code_bits"], v.spec["levels"])
    assert int(v["scale_exp"][0]) == f
    assert [int(c) for c in v["codes"]] == codes
    assert [int(q) for q in v["decoded"]] == decoded
    # the stimulus reaches every rule: zeros, clipping at the top level, both signs, every shift
    assert 0 in codes and any(c >> (v.spec["code_bits"] - 1) for c in codes)
    assert {abs(q) for q in decoded if q} == {1 << s for s in range(v.spec["levels"])}


def mtts_ref(x: int, spec: dict) -> tuple[int, int, int]:
    """(time, silent, decoded) of one value, from the contract's equations (rationals for floor / ceil)."""
    lo, hi, t = spec["lo"], spec["hi"], spec["time_steps"]
    r = hi - lo + 1
    xc = min(max(x, lo), hi)
    level = (xc - lo) * t // r
    s = spec["mask_value"] if spec["mask"] else lo
    silent = xc == s or (spec["dead_zone"] and spec["dead_lo"] <= xc <= spec["dead_hi"])
    time = 0 if silent else t - 1 - level
    frac = Fraction(level * r, t)
    ceil = frac.numerator // frac.denominator + (frac.denominator != 1)
    return time, int(silent), s if silent else lo + ceil


@pytest.mark.parametrize("options", [
    [],
    ["--time-steps", "5", "--lo", "-50", "--hi", "77", "--mask-value", "3"],
    ["--no-signed", "--input-width", "6", "--lo", "0", "--hi", "63", "--no-mask", "--time-steps", "7"],
    ["--time-steps", "16", "--dead-zone", "--dead-lo", "-4", "--dead-hi", "6", "--lanes", "3"],
])
def test_mtts_decoder_vectors_equal_an_independent_decoder(options, tmp_path):
    out = tmp_path / "md"
    assert main(["vectors", "mtts-decode", *options, "--beats", "300", "-o", str(out)]) == 0
    v = load_vectors(out, block="mtts-decode")
    got = list(zip(v["values"].flatten().tolist(), v["time"].flatten().tolist(), v["silent"].flatten().tolist(),
                   v["decoded"].flatten().tolist()))
    for x, time, silent, decoded in got:
        assert (time, silent, decoded) == mtts_ref(x, v.spec), x
    assert {s for _, _, s, _ in got} == {0, 1}


def test_a_corrupted_golden_set_is_refused(tmp_path):
    import json

    out = tmp_path / "lq"
    assert main(["vectors", "logquant", "--count", "10", "-o", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["arrays"]["codes"]["sha256"] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="'codes' fails its sha256 check"):
        load_vectors(out, block="logquant")
