"""A plain 8N1 UART (receiver and transmitter) for the board builds.

``divisor`` = clock cycles per bit (clock frequency / baud rate, at least 4).
The receiver double-registers ``rx``, waits for a start bit, checks it again
half a bit later, samples the 8 data bits (LSB first) in the middle of each bit
and delivers the byte as a one-cycle ``o.valid`` pulse when the stop bit is 1
(a byte with a bad stop bit is dropped). There is no receive buffer: the byte
must be taken in that cycle (``o.ready`` is ignored).
"""

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


def _check_divisor(divisor: int) -> int:
    if not isinstance(divisor, int) or divisor < 4:
        raise ValueError(f"UART divisor (clock cycles per bit) must be an integer >= 4, got {divisor!r}")
    return divisor


class UARTRx(wiring.Component):
    """8N1 receiver.

    Members
    -------
    rx : In(1)   the serial line (idle 1)
    o : Out(stream.Signature(8))   received bytes (valid for one cycle each)
    """

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        meta = Signal(init=1)
        line = Signal(init=1)
        m.d.sync += [meta.eq(self.rx), line.eq(meta)]  # two flip-flops against metastability
        timer = Signal(range(d))
        bits = Signal(range(9))
        shift = Signal(8)
        m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(line):  # a glitch, not a start bit
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [timer.eq(d - 1), bits.eq(0)]
                        m.next = "DATA"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), timer.eq(d - 1), bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(line):
                        m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
        return m


class UARTTx(wiring.Component):
    """8N1 transmitter: takes a byte from ``i`` when idle and sends start, 8 data bits, stop.

    Members
    -------
    i : In(stream.Signature(8))
    tx : Out(1)   the serial line (idle 1)
    """

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        timer = Signal(range(d))
        frame = Signal(10, init=0x3FF)  # shifted out LSB first; all ones = idle line
        left = Signal(range(11))
        m.d.comb += [self.tx.eq(frame[0]), self.i.ready.eq(left == 0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [frame.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))), left.eq(10), timer.eq(d - 1)]
        with m.Elif(left != 0):
            with m.If(timer == 0):
                m.d.sync += [frame.eq(Cat(frame[1:], Const(1, 1))), left.eq(left - 1), timer.eq(d - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
