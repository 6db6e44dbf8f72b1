"""``NeuroCore``: the engine behind the host streams, with output FIFOs and a global freeze."""

from __future__ import annotations

from amaranth import Cat, EnableInserter, Module, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.core.program import CoreProgram, CoreSpec, check_fits

from .engine import CoreEngine


def core_output_layout(spec: CoreSpec, program: CoreProgram) -> data.StructLayout:
    """One output beat: ``data`` (packed per ``kind``), ``kind`` (a tap kind) and ``tap`` (the op index)."""
    from .engine import tap_data_width
    return data.StructLayout({"data": unsigned(tap_data_width(spec, program)), "kind": unsigned(3),
                              "tap": unsigned(8)})


def core_input_layout(program: CoreProgram) -> data.StructLayout:
    """One input beat: one pixel or one token id."""
    return data.StructLayout({"value": unsigned(program.input_buffer.width)})


class NeuroCore(wiring.Component):
    """The neuromorphic core: a compiled model's integer inference, self-sequenced.

    The host sends a sample (``n_inputs`` beats: the 64 pixels of a digit, or the L token
    ids of a text window) and reads tagged beats: with ``debug_taps`` every layer's
    currents, spikes (with the residual sums an op writes) and attention outputs, always
    the logits, and last a status beat carrying the sample's cycle count. Everything in
    between -- every layer, head, position and time step -- is walked by the engine's
    sequencer over one MAC engine, one (adaptive) LIF array, the MTTS encoder where the model
    has one, and one attention unit (WTA or spike-driven).

    Freeze: the engine runs under ``EnableInserter``; while either output FIFO is full
    the whole engine holds its state, so host back-pressure changes when beats leave but
    never the engine's cycle count (``golden.core.cycles.predict_cycles``).

    Members
    -------
    i_stream : In(stream.Signature(core_input_layout(program)))
    o_stream : Out(stream.Signature(core_output_layout(spec, program)))
    """

    def __init__(self, spec: CoreSpec, program: CoreProgram):
        if not isinstance(spec, CoreSpec):
            raise TypeError(f"NeuroCore needs a CoreSpec, got {type(spec).__name__}")
        check_fits(spec, program)
        self.spec, self.program = spec, program
        self.engine = CoreEngine(spec, program)
        super().__init__({
            "i_stream": In(stream.Signature(core_input_layout(program))),
            "o_stream": Out(stream.Signature(core_output_layout(spec, program))),
        })

    def elaborate(self, platform):
        m = Module()
        eng = self.engine
        width = len(self.o_stream.payload.as_value())
        fifos = []
        for name in ("a", "b"):
            f = fifo.SyncFIFOBuffered(width=width, depth=self.spec.fifo_depth)
            m.submodules[f"fifo_{name}"] = f
            fifos.append((name, f))
        # en is a register (it fans out to every register of the engine): it may fall only one
        # cycle after a FIFO's level shows it, so the engine stops while each FIFO still has room
        # for the write of the cycle that computes it and the one after
        en = Signal(init=1)
        depth = self.spec.fifo_depth
        m.d.sync += en.eq((fifos[0][1].level + 2 <= depth) & (fifos[1][1].level + 2 <= depth))
        m.submodules.engine = EnableInserter(en)(eng)
        for name, f in fifos:
            valid = getattr(eng, f"{name}_valid")
            m.d.comb += [f.w_en.eq(valid & en),
                         f.w_data.eq(Cat(getattr(eng, f"{name}_data"), getattr(eng, f"{name}_kind"),
                                         getattr(eng, f"{name}_tap")))]
        m.d.comb += [eng.i_stream.valid.eq(self.i_stream.valid), eng.i_stream.payload.eq(self.i_stream.payload),
                     self.i_stream.ready.eq(eng.i_stream.ready & en)]
        # fixed priority: spikes / attention (b) first, then currents, logits and status (a)
        fa, fb = fifos[0][1], fifos[1][1]
        m.d.comb += self.o_stream.valid.eq(fa.r_rdy | fb.r_rdy)
        with m.If(fb.r_rdy):
            m.d.comb += [self.o_stream.payload.eq(fb.r_data), fb.r_en.eq(self.o_stream.ready)]
        with m.Else():
            m.d.comb += [self.o_stream.payload.eq(fa.r_data), fa.r_en.eq(self.o_stream.ready)]
        return m
