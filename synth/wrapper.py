"""A pin-light wrapper so any block can be placed and routed on a small package.

A block's ports (hundreds of bits for wide configurations) would not fit the
I/O of an iCE40 SG48 package, and unregistered pins would make the achieved
clock rate depend on the pad timing rather than on the block. ``SerialWrapper``
therefore feeds every input port of the block from one shift register
(``sin`` -> a chain of flip-flops as wide as all inputs together) and
captures every output port into a second register that ``sout`` shifts out
(``load`` = 1 captures, 0 shifts). Every block port thus starts or ends at a
flip-flop, no logic is optimised away (each output bit reaches ``sout``), and
the block's own register-to-register paths set Fmax, as in an out-of-context
implementation.

The wrapper costs (inputs + outputs) flip-flops and about one LUT per output
bit; resource counts in a report are taken from the bare block, the wrapper is
only used for place and route.
"""


from amaranth import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


def port_bits(component: wiring.Component) -> tuple[int, int]:
    """(input bits, output bits) of a component's signature."""
    n_in = n_out = 0
    for _path, member, value in component.signature.flatten(component):
        if member.flow == In:
            n_in += len(Value.cast(value))
        else:
            n_out += len(Value.cast(value))
    return n_in, n_out


class SerialWrapper(wiring.Component):
    """Serial-in / serial-out shell around ``block`` for place and route.

    Members
    -------
    sin : In(1)   serial input; shifted into the input chain every cycle
    load : In(1)  1: capture the block outputs; 0: shift the output chain
    sout : Out(1) last bit of the output chain
    """

    sin: In(1)
    load: In(1)
    sout: Out(1)

    def __init__(self, block: wiring.Component):
        self.block = block
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.block = block = self.block
        inputs, outputs = [], []
        for _path, member, value in block.signature.flatten(block):
            (inputs if member.flow == In else outputs).append(Value.cast(value))
        n_in = sum(len(v) for v in inputs)
        n_out = sum(len(v) for v in outputs)
        if n_in:
            chain_in = Signal(n_in)
            m.d.sync += chain_in.eq(Cat(self.sin, chain_in[:-1]))
            m.d.comb += Cat(*inputs).eq(chain_in)
        if n_out:
            chain_out = Signal(n_out)
            with m.If(self.load):
                m.d.sync += chain_out.eq(Cat(*outputs))
            with m.Else():
                m.d.sync += chain_out.eq(chain_out[1:])
            m.d.comb += self.sout.eq(chain_out[0])
        return m
