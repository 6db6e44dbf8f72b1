"""The bulk co-simulation path (issue 15, parts 1, 2 and 4).

* the gap generator, the packer and the per-block stream converters against independent answers
  (Marsaglia's and MurmurHash3's published values, Amaranth's own ``pack``, the blocks' own beat
  functions) -- no simulator;
* the per-cycle bench (``sim/streams.py``, Python on every edge) and the bulk path
  (``sim/bulk.py``, everything in the simulator) on the same vectors and the same xorshift gaps:
  the same beats accepted and emitted on the same cycles, the same cycle counts, for every block;
* >= 10^5 random + adversarial vectors per block through ``spikeforge.demo.check_count`` with 0
  mismatches (10^6 with ``--long``);
* a deliberately broken design (one output bit flipped on one beat) is caught, its first failing
  beat reported with the right cycle, field, expected and got, and a VCD written that holds it;
  extra and missing beats are counted.

Builds: one bulk build per block (shared by the 10^5 run, the cross-check and the CLI), its
Verilator runtime objects compiled once for all of them; the per-cycle side of the cross-check
runs on the X-state builds ``sim/test_x_initial.py`` makes anyway (``x_seed=0``: every X at
zero, as ``--x-initial fast``), so it adds no build.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from amaranth import Module, Mux, Signal
from amaranth.lib import data, wiring

from rtl.streams import pack, unpack
from sim import adversarial
from sim.bulk import first_differing_field, ints_from_limbs, pack_beats, pack_columns, stream_ports, write_memh
from sim.bulk_streams import CONVERTERS, stream_words
from sim.streams import XorshiftGaps, _mix32, xorshift_seed, xorshift_threshold
from spikeforge.blocks import block_names, get_block

CI_COUNT = 100_000
LONG_COUNT = 1_000_000


# ---- no simulator --------------------------------------------------------------------------------

def test_xorshift_and_seed_mixer_match_their_published_values():
    # Marsaglia (2003), xorshift32 with (13, 17, 5): 1 -> 270369; MurmurHash3 fmix32(1) = 0x514E28B7
    assert XorshiftGaps.step(1) == 270369
    assert _mix32(1) == 0x514E28B7
    assert xorshift_seed(0, 1) == _mix32(1)
    assert xorshift_seed(3, 0) != xorshift_seed(3, 1) != 0
    # the coin: the state's top 16 bits against round(p 2^16); p = 1 always, p = 0 never
    g = XorshiftGaps(5, 0, 0.75)
    state = g.state
    hits = [g() for _ in range(4)]
    expect = []
    for _ in range(4):
        expect.append((state >> 16) < 49152)
        state = XorshiftGaps.step(state)
    assert hits == expect and g.state == state
    always, never = XorshiftGaps(1, 0, 1.0), XorshiftGaps(1, 1, 0.0)
    assert all(always() for _ in range(100)) and not any(never() for _ in range(100))
    assert xorshift_threshold(0.5) == 32768
    with pytest.raises(ValueError, match="gap probability"):
        xorshift_threshold(1.5)
    coin = XorshiftGaps(9, 1, 0.3)
    rate = sum(coin() for _ in range(20000)) / 20000
    assert 0.28 < rate < 0.32


def test_pack_columns_and_memh_agree_with_amaranth():
    layout = data.StructLayout({"a": data.ArrayLayout(data.ArrayLayout(range(-5, 3), 2), 3), "flag": 1,
                                "wide": data.ArrayLayout(40, 3), "s": data.ArrayLayout(7, 2)})
    rng = np.random.default_rng(1)
    n = 200
    a = rng.integers(-5, 3, (n, 3, 2))
    wide = rng.integers(0, 1 << 40, (n, 3))
    s = rng.integers(0, 128, (n, 2))
    flag = rng.integers(0, 2, n)
    beats = [{"a": a[i].tolist(), "flag": int(flag[i]), "wide": wide[i].tolist(), "s": s[i].tolist()}
             for i in range(n)]
    want = [pack(layout, b) for b in beats]
    assert layout.size > 128   # three limbs, fields straddling limb edges
    assert ints_from_limbs(pack_columns(layout, {"a": a, "flag": flag, "wide": wide, "s": s}, n)) == want
    assert ints_from_limbs(pack_beats(layout, beats)) == want
    with pytest.raises(ValueError, match=r"a\[0\]\[0\] = 9 does not fit signed\(4\)"):
        pack_columns(layout, {"a": np.full((1, 3, 2), 9), "flag": 0, "wide": np.zeros((1, 3)), "s": 0}, 1)


def test_memh_file_is_one_hex_word_per_line(tmp_path):
    words = [0, 1, (1 << 70) - 1, 0xABC << 60]
    from sim.bulk import limbs_from_ints

    write_memh(tmp_path / "w.hex", limbs_from_ints(words, 72), 72)
    lines = (tmp_path / "w.hex").read_text().splitlines()
    assert lines == [f"{w:018x}" for w in words]


@pytest.mark.parametrize("name", sorted(CONVERTERS))
def test_stream_converters_give_the_beat_functions_words(name):
    """The numpy converters agree word for word with the blocks' own beat functions."""
    block = get_block(name)
    spec = block.default_spec()
    vectors = adversarial.vectors(block, spec, 3000, seed=2)
    component = block.component(spec)
    _, words_in, words_out, how = stream_words(block, vectors, component)
    assert how == "columns"
    _, beats, expected = block.stream_from_vectors(vectors)
    in_layout, out_layout = stream_ports(component, block.in_name, block.out_name)
    assert ints_from_limbs(words_in) == [pack(in_layout, b) for b in beats]
    assert ints_from_limbs(words_out) == [pack(out_layout, b) for b in expected]
    assert len(beats) >= 3000


def test_adversarial_vectors_hold_the_cases_they_promise():
    """Spot checks on the golden answers of the adversarial sets (the golden model computes them)."""
    from golden import fixed

    lif = get_block("lif")
    spec = lif.default_spec()
    v = adversarial.vectors(lif, spec, 20000, seed=0)
    cur = v["currents"]
    assert cur.max() == fixed.int_max(spec.input_width, True) and cur.min() == fixed.int_min(spec.input_width, True)
    assert (v["spikes"].reshape(len(v["spikes"]), -1).sum(axis=1) == 0).any()              # silent sequences
    assert (v["spikes"].reshape(len(v["spikes"]), -1).min(axis=1) == 1).any()              # all firing
    # where the widths allow it (not at the default spec: 12-bit inputs cannot push a 16-bit
    # membrane with a shift leak past its limits), the membrane saturates both ways
    narrow = spec.replace(membrane_width=10, input_width=10, threshold=400, reset_mode="none")
    mem = adversarial.vectors(lif, narrow, 2000, seed=0)["membrane"]
    assert mem.max() == fixed.int_max(10, True) and mem.min() == fixed.int_min(10, True)
    assert (v["currents"] == spec.threshold).any() and (v["currents"] == spec.threshold - 1).any()
    topk = get_block("topk")
    t = adversarial.vectors(topk, topk.default_spec(), 20000, seed=0)
    rows = t["scores"].reshape(-1, topk.default_spec().length)
    assert (rows == rows[:, :1]).all(axis=1).any()                                          # all-equal rows
    syn = get_block("synapse")
    sspec = syn.default_spec()
    s = adversarial.vectors(syn, sspec, 20000, seed=0)
    acc_max, acc_min = fixed.int_max(sspec.acc_width, True), fixed.int_min(sspec.acc_width, True)
    assert (s["currents"] == acc_max).any() and (s["currents"] == acc_min).any()           # saturating sums
    window = get_block("window")
    w = adversarial.vectors(window, window.default_spec(), 5000, seed=0)
    assert (w["maps"].reshape(len(w["maps"]), -1).sum(axis=1) == 0).any()
    mtts = get_block("mtts")
    mspec = mtts.default_spec()
    m = adversarial.vectors(mtts, mspec, 5000, seed=0)
    assert set(range(mspec.input_min, mspec.input_max + 1)) <= set(m["values"].reshape(-1).tolist())


def test_first_differing_field_names_the_leaf():
    got = {"spikes": 3, "membrane": [1, 2, 7, 4]}
    want = {"spikes": 3, "membrane": [1, 2, 3, 4]}
    assert first_differing_field(got, want) == ("membrane[2]", 3, 7)


def test_per_cycle_report_names_beat_cycle_and_field():
    from sim.harness import CosimReport
    from sim.streams import BenchResult

    layout = data.StructLayout({"spikes": 4, "membrane": data.ArrayLayout(range(-8, 8), 2)})
    want = {"spikes": 5, "membrane": [-3, 2]}
    got = {"spikes": 5, "membrane": [-3, -6]}
    result = BenchResult(beats_in=9, beats_expected=9, beats_checked=9, mismatches=1, cycles=20,
                         simulated_cycles=28, wall_seconds=1.0,
                         first_errors=[[6, hex(pack(layout, got)), hex(pack(layout, want))]], missing=0,
                         accept_cycles=[], output_cycles=[], first_error_cycles=[17])
    text = CosimReport(result, None, lambda bits: unpack(layout, bits)).explain()
    assert text.startswith("beat 6 at cycle 17: field membrane[1] expected 2, got -6")


# ---- under Verilator -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", block_names())
def test_bulk_and_per_cycle_benches_run_the_same_cycles(name, tmp_path):
    """Same vectors, same xorshift gaps: the same beats on the same cycles, the same cycle counts."""
    from sim.bulk import bulk_cosim, cycle_log
    from sim.harness import cosim

    block = get_block(name)
    spec = block.default_spec()
    vectors = adversarial.vectors(block, spec, 800, seed=4)
    component = block.component(spec)
    spec, words_in, words_out, _ = stream_words(block, vectors, component)
    per_cycle = cosim(component, block.toplevel, ints_from_limbs(words_in), ints_from_limbs(words_out),
                      tmp_path / "per-cycle", in_name=block.in_name, out_name=block.out_name, seed=6,
                      valid_prob=0.7, ready_prob=0.6, keep_cycles=True, gaps="xorshift", x_seed=0,
                      timeout_cycles=block.cosim_timeout(spec, len(words_in), len(words_out), 0.7, 0.6))
    bulk = bulk_cosim(component, block.toplevel, words_in, words_out, tmp_path / "bulk", in_name=block.in_name,
                      out_name=block.out_name, seed=6, valid_prob=0.7, ready_prob=0.6, log_cycles=True)
    accept, output = cycle_log(bulk, tmp_path / "bulk")
    p, b = per_cycle.result, bulk.result
    assert p.mismatches == 0 and b.mismatches == 0, (per_cycle.explain(), bulk.explain())
    assert p.beats_checked == b.beats_checked == len(words_out)
    assert len(p.accept_cycles) == b.beats_accepted == len(words_in)
    assert accept == p.accept_cycles
    assert output == p.output_cycles
    assert (p.cycles, p.simulated_cycles) == (b.cycles, b.simulated_cycles)
    # the gaps did act: some cycles with valid low or ready low
    assert p.cycles > max(len(words_in), len(words_out))


#: blocks with one output beat per input beat at their default spec
ONE_TO_ONE = ("lif", "mtts", "window")


def _count_check(name, count, tmp_path):
    from spikeforge.demo import check_count

    block = get_block(name)
    report = check_count(block, count, vector_seed=1, seed=3, workdir=tmp_path)
    # 0 mismatches: every expected beat arrived, equal, in order, and no beat more (bulk_top counts
    # missing and extra beats as mismatches)
    assert report.mismatches == 0, report.details
    assert report.beats_in >= count
    if name in ONE_TO_ONE:
        assert report.beats == report.beats_in
    assert report.simulated_cycles >= report.cycles >= max(report.beats, 1)
    return report


@pytest.mark.parametrize("name", block_names())
def test_bulk_checks_1e5_vectors_per_block(name, tmp_path):
    report = _count_check(name, CI_COUNT, tmp_path)
    print(f"{name}: {report.beats_in} in, {report.beats} out, {report.simulated_cycles} cycles, "
          f"{report.cycles_per_second:,.0f} cycles/s")


@pytest.mark.long
@pytest.mark.parametrize("name", block_names())
def test_bulk_checks_1e6_vectors_per_block(name, tmp_path):
    report = _count_check(name, LONG_COUNT, tmp_path)
    print(f"{name}: {report.beats_in} in, {report.beats} out, {report.simulated_cycles} cycles, "
          f"{report.cycles_per_second:,.0f} cycles/s, prepare {report.prepare_seconds:.1f} s, "
          f"run {report.run_seconds:.1f} s")


class FlipOneBit(wiring.Component):
    """A deliberately broken block: ``inner`` with bit ``bit`` of its output payload inverted on
    output beat ``beat`` (counted from 0 at reset) only; no added latency."""

    def __init__(self, inner, beat: int, bit: int):
        self.inner, self.beat, self.bit = inner, beat, bit
        members = inner.signature.members
        super().__init__({"i_stream": members["i_stream"], "o_stream": members["o_stream"]})

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self.inner
        wiring.connect(m, wiring.flipped(self.i_stream), inner.i_stream)
        count = Signal(32)
        out = inner.o_stream
        with m.If(out.valid & self.o_stream.ready):
            m.d.sync += count.eq(count + 1)
        flip = Mux(count == self.beat, 1 << self.bit, 0)
        m.d.comb += [self.o_stream.valid.eq(out.valid), out.ready.eq(self.o_stream.ready),
                     self.o_stream.payload.eq(out.payload.as_value() ^ flip)]
        return m


def _vcd_values(path, name: str) -> list[int]:
    """Every value the VCD gives variable ``name`` (of scope bulk_top), in file order."""
    text = path.read_text()
    ident = re.search(rf"\$var \w+ \d+ (\S+) {name}(?: \[\d+:\d+\])? \$end", text).group(1)
    values = []
    for line in text.splitlines():
        if line.startswith("b") and line.endswith(" " + ident):
            values.append(int(line[1:].split()[0], 2))
    return values


def test_broken_block_is_caught_with_its_first_failing_beat_and_waves(tmp_path):
    from sim.bulk import bulk_cosim
    from sim.harness import cosim

    block = get_block("lif")
    spec = block.default_spec()
    vectors = adversarial.vectors(block, spec, 3000, seed=5)
    good = block.component(spec)
    spec, words_in, words_out, _ = stream_words(block, vectors, good)
    # membrane[1], bit 3, of output beat 1234: offset = P spike bits + one Wv-bit membrane + 3
    beat, lane, bit_in_field = 1234, 1, 3
    bit = spec.lanes + spec.membrane_width * lane + bit_in_field
    want = int(vectors["membrane"].reshape(-1, spec.lanes)[beat, lane])
    flipped = (want & ((1 << spec.membrane_width) - 1)) ^ (1 << bit_in_field)
    got = flipped - (1 << spec.membrane_width) if flipped >> (spec.membrane_width - 1) else flipped
    # the cycle of output beat `beat`, from the per-cycle bench on the good design, same gaps
    reference = cosim(good, block.toplevel, ints_from_limbs(words_in), ints_from_limbs(words_out),
                      tmp_path / "good", seed=2, keep_cycles=True, gaps="xorshift", x_seed=0)
    assert reference.mismatches == 0
    cycle = reference.result.output_cycles[beat]

    waves = tmp_path / "broken.vcd"
    report = bulk_cosim(FlipOneBit(block.component(spec), beat, bit), "lif_broken", words_in, words_out,
                        tmp_path / "broken", seed=2, waves=waves, waves_window=50)
    assert report.mismatches == 1                      # only that beat differs
    failure = report.first_failure()
    assert failure == {"beat": beat, "cycle": cycle, "field": f"membrane[{lane}]", "expected": want, "got": got}
    assert f"first failing beat {beat} at cycle {cycle}: field membrane[{lane}] expected {want}, got {got}" \
        in report.explain()
    # the wave file: a window of cycles around the failure, with the mismatch counter stepping there
    assert waves.stat().st_size > 1000
    cycles_seen = _vcd_values(waves, "r_cycles")
    assert cycle in cycles_seen and min(cycles_seen) >= cycle - 51 and max(cycles_seen) <= cycle + 52
    assert _vcd_values(waves, "r_mismatches")[-1] == 1 and 0 in _vcd_values(waves, "r_mismatches")


def test_extra_and_missing_beats_are_counted(tmp_path):
    from sim.bulk import bulk_cosim

    block = get_block("lif")
    spec = block.default_spec()
    vectors = adversarial.vectors(block, spec, 600, seed=6)
    component = block.component(spec)
    spec, words_in, words_out, _ = stream_words(block, vectors, component)
    # at full rate the run drains 8 cycles after the last input: the 5 beats past the expected ones
    # (latency spec.latency < 8) all come out and are counted as extra
    assert spec.latency < 8
    short = bulk_cosim(component, block.toplevel, words_in, words_out[:-5], tmp_path / "extra", seed=1,
                       valid_prob=1.0, ready_prob=1.0)
    assert short.mismatches == 5 and short.result.missing == 0
    assert short.first_failure()["beat"] == len(words_out) - 5 and short.first_failure()["field"] is None
    assert "unexpected extra beat" in short.explain()
    # 7 expected beats the design never sends (inputs cut short): missing, reported after the timeout
    long = bulk_cosim(component, block.toplevel, words_in[:-7], words_out, tmp_path / "missing", seed=1)
    assert long.result.missing == 7 and long.mismatches == 7 and long.result.timed_out
    assert long.result.beats_checked == len(words_out) - 7
    assert "7 expected beat(s) never arrived" in long.explain()


def test_check_command_count_prints_the_figures(capsys):
    from spikeforge.cli import main

    assert main(["check", "lif", "--count", "5000", "--vector-seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "mismatches      : 0" in out and "cycles/s" in out and "bulk path" in out
    beats_in = int(re.search(r"vectors\s+: (\d+) input beats", out).group(1))
    checked = int(re.search(r"beats checked\s+: (\d+) output beats", out).group(1))
    assert beats_in >= 5000 and checked == beats_in      # LIF: one output beat per input beat


# specs the default run does not reach: the window's largest dilation spanning the whole map
# (2 d w + 1 = H = W), and an MTTS dead zone (its edges are adversarial values)
EDGE_SPECS = {
    "window": {"height": 9, "width": 9, "dilations": [1, 2, 4]},
    "mtts": {"dead_zone": True, "dead_lo": -5, "dead_hi": 3, "mask_value": 0},
}


@pytest.mark.parametrize("name", sorted(EDGE_SPECS))
def test_check_count_with_a_spec_file_at_the_limits(name, tmp_path, capsys):
    import json

    from spikeforge.cli import main

    block = get_block(name)
    spec = block.spec_cls.from_dict({**block.default_spec().to_dict(), **EDGE_SPECS[name]})
    if name == "window":
        assert 2 * max(spec.dilations) * spec.radius + 1 == spec.height == spec.width
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec.to_dict()))
    assert main(["check", name, "--count", "20000", "--spec", str(path)]) == 0
    out = capsys.readouterr().out
    assert "mismatches      : 0" in out and ("height=9" in out if name == "window" else "dead_zone=True" in out)


def test_check_vectors_with_waves_runs_the_bulk_path(tmp_path, capsys):
    from spikeforge.cli import main

    assert main(["vectors", "lif", "--sequences", "2", "--steps", "4", "-o", str(tmp_path / "vec")]) == 0
    waves = tmp_path / "run.vcd"
    assert main(["check", "lif", "--vectors", str(tmp_path / "vec"), "--waves", str(waves),
                 "--waves-window", "0"]) == 0
    out = capsys.readouterr().out
    assert "bulk path" in out and f"waves: {waves}" in out
    groups = get_block("lif").default_spec().groups
    cycles = _vcd_values(waves, "r_cycles")
    assert "$enddefinitions" in waves.read_text() and max(cycles) >= 2 * 4 * groups   # the whole run
