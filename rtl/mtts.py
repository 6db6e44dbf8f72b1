"""Masked time-to-first-spike encoder: P values per beat in, their MTTS codes or spike bits out.

Hardware for ``golden.mtts.mtts_encode`` / ``mtts_spikes`` / ``mtts_reference``; the
equations are in ``golden/mtts.py`` and ``docs/numeric-contract.md`` and are
implemented here bit for bit.
"""

from __future__ import annotations

from amaranth import C, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.mtts import MTTSSpec


def mtts_input_layout(spec: MTTSSpec) -> data.StructLayout:
    """Input beat: P values (lane p at the low end), W-bit signed or unsigned per the spec."""
    shape = signed(spec.input_width) if spec.signed else unsigned(spec.input_width)
    return data.StructLayout({"value": data.ArrayLayout(shape, spec.lanes)})


def mtts_output_layout(spec: MTTSSpec) -> data.StructLayout:
    """Output beat.

    ``emit = "code"``: ``time`` (P first-spike times, 0 when silent), ``silent`` (P flags,
    bit p = lane p), ``count``. ``emit = "spikes"``: ``spikes`` (P words of T bits, bit t =
    the spike at step t in the spec's train form), ``count``. ``count`` is the number of
    silent outputs since reset including this beat's, modulo 2^counter_width.
    """
    if spec.emit == "code":
        fields = {"time": data.ArrayLayout(unsigned(spec.time_bits), spec.lanes), "silent": unsigned(spec.lanes)}
    else:
        fields = {"spikes": data.ArrayLayout(unsigned(spec.time_steps), spec.lanes)}
    fields["count"] = unsigned(spec.counter_width)
    return data.StructLayout(fields)


class MTTSEncoder(wiring.Component):
    """P-lane masked time-to-first-spike encoder with a silent-output counter.

    Per lane, combinationally from the accepted beat (constants from the spec, no divider)::

        xc     = min(max(x, lo), hi)
        level  = ((xc - lo) * m) >> f           (m, f) = spec.reciprocal, equal to floor((xc-lo) T / R)
        t      = T - 1 - level
        silent = (xc == S) | (dead_zone & dead_lo <= xc <= dead_hi)
        time   = silent ? 0 : t
        spike bit j = ~silent & (j >= t)  ("step")   or   ~silent & (j == t)  ("single")

    and the counter adds the number of silent lanes of every accepted beat.

    Latency and throughput
    ----------------------
    * Latency: 1 cycle. A beat accepted on the rising edge ending cycle c is
      presented on ``o_stream`` (valid) in cycle c + 1.
    * Throughput: 1 beat (P values) per cycle when ``o_stream.ready`` stays high.
    * Back-pressure: ``i_stream.ready = ~o_stream.valid | o_stream.ready``; no beat is
      dropped or duplicated.

    Members
    -------
    i_stream : In(stream.Signature(mtts_input_layout(spec)))
    o_stream : Out(stream.Signature(mtts_output_layout(spec)))
    silent_count : Out(counter_width), the counter itself (equal to the last beat's ``count``).
    """

    #: cycles from input handshake to output valid, as stated in the docstring
    LATENCY = 1

    def __init__(self, spec: MTTSSpec):
        if not isinstance(spec, MTTSSpec):
            raise TypeError(f"MTTSEncoder needs an MTTSSpec, got {type(spec).__name__}")
        self.spec = spec
        super().__init__({
            "i_stream": In(stream.Signature(mtts_input_layout(spec))),
            "o_stream": Out(stream.Signature(mtts_output_layout(spec))),
            "silent_count": Out(unsigned(spec.counter_width)),
        })

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        lanes, tsteps = spec.lanes, spec.time_steps
        mult, shift = spec.reciprocal
        s_value = spec.silent_value

        m.d.comb += self.i_stream.ready.eq(~self.o_stream.valid | self.o_stream.ready)
        accept = self.i_stream.valid & self.i_stream.ready

        times = Signal(data.ArrayLayout(unsigned(spec.time_bits), lanes))
        silent = Signal(lanes)
        trains = Signal(data.ArrayLayout(unsigned(tsteps), lanes))
        for p in range(lanes):
            x = self.i_stream.payload.value[p]
            xc = Signal(x.shape(), name=f"xc{p}")
            m.d.comb += xc.eq(Mux(x < spec.lo, spec.lo, Mux(x > spec.hi, spec.hi, x)))
            offset = Signal(unsigned(spec.offset_bits), name=f"offset{p}")
            m.d.comb += offset.eq(xc - spec.lo)          # 0 .. R - 1: fits exactly
            level = Signal(unsigned(spec.time_bits), name=f"level{p}")
            m.d.comb += level.eq((offset * C(mult, unsigned(max(1, mult.bit_length())))) >> shift)
            t_first = Signal(unsigned(spec.time_bits), name=f"t_first{p}")
            m.d.comb += t_first.eq(tsteps - 1 - level)
            quiet = xc == s_value
            if spec.dead_zone:
                quiet = quiet | ((xc >= spec.dead_lo) & (xc <= spec.dead_hi))
            m.d.comb += [silent[p].eq(quiet), times[p].eq(Mux(quiet, 0, t_first))]
            for j in range(tsteps):
                fire = (t_first <= j) if spec.train == "step" else (t_first == j)
                m.d.comb += trains[p][j].eq(fire & ~quiet)

        n_silent = sum(silent[p] for p in range(lanes))  # popcount, widened exactly by Amaranth
        count = Signal(unsigned(spec.counter_width))
        next_count = Signal(unsigned(spec.counter_width))
        m.d.comb += [next_count.eq(count + n_silent),   # truncation = modulo 2^counter_width
                     self.silent_count.eq(count)]

        with m.If(accept):
            m.d.sync += [self.o_stream.valid.eq(1), self.o_stream.payload.count.eq(next_count),
                         count.eq(next_count)]
            if spec.emit == "code":
                m.d.sync += [self.o_stream.payload.time.eq(times), self.o_stream.payload.silent.eq(silent)]
            else:
                m.d.sync += self.o_stream.payload.spikes.eq(trains)
        with m.Elif(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        return m


# ---------------------------------------------------------------------------
# Beats <-> golden arrays


def mtts_input_beats(spec: MTTSSpec, values) -> list[dict]:
    """Golden values (n, P) -> input beats in stream order."""
    if values.ndim != 2 or values.shape[1] != spec.lanes:
        raise ValueError(f"MTTS values have shape {tuple(values.shape)}; expected (beats, {spec.lanes})")
    return [{"value": [int(x) for x in row]} for row in values]


def mtts_expected_beats(spec: MTTSSpec, arrays: dict) -> list[dict]:
    """Golden ``mtts_reference`` arrays -> the output beats the hardware must produce."""
    beats = []
    n = arrays["values"].shape[0]
    for i in range(n):
        beat = {"count": int(arrays["count"][i])}
        if spec.emit == "code":
            beat["time"] = [int(t) for t in arrays["time"][i]]
            beat["silent"] = sum(int(s) << p for p, s in enumerate(arrays["silent"][i]))
        else:
            beat["spikes"] = [sum(int(b) << j for j, b in enumerate(lane)) for lane in arrays["spikes"][i]]
        beats.append(beat)
    return beats
