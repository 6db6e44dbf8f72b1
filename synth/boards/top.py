"""The board-level core: a single-stream block behind a UART speaking ``protocol``.

``UARTBlockTop`` works for any component with one input stream ``i_stream`` and
one output stream ``o_stream`` (the LIF array; the neuromorphic core,
``synth.boards.core``). Nothing here ties output beats to input beats: the
transmitter sends every beat the block makes, whenever it makes it (the LIF
array one per input beat, the core a few per 64-beat digit, after its
computation); the host knows how many to expect (``protocol.plan_requests``).
It is simulated under Verilator with a UART model on the testbench side
(``sim/uart_bench.py``, ``sim/test_board.py``, ``sim/test_board_core.py``) and
built into bitstreams by ``synth.boards.board_build``.

Receive side (RX state machine): wait for the request sync byte 0x55, take the
beat count n, assemble n beats of BI bytes (little endian) into a buffer
memory of depth 256, then check the checksum. The ack (status 0 or 1) is
queued for the transmitter; once it has been taken, an accepted request's n
beats are fed to the block in order (with its back-pressure). Bytes that
arrive while the board feeds the block are ignored: the host waits for each
reply (``protocol`` says so).

Transmit side (TX state machine): when idle, send a queued ack first, else take
one output beat from the block and send it as an output frame (sync 0x5A, BO
bytes little endian, checksum). Frames are never interleaved.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .protocol import ACK_SYNC, OUTPUT_SYNC, REQUEST_SYNC, nbytes
from .uart import UARTRx, UARTTx


class UARTBlockTop(wiring.Component):
    """``block`` (one input, one output stream) behind an 8N1 UART at ``divisor`` cycles per bit.

    Members
    -------
    rx : In(1)   from the host
    tx : Out(1)  to the host
    """

    def __init__(self, block: wiring.Component, divisor: int):
        for name in ("i_stream", "o_stream"):
            if name not in block.signature.members:
                raise ValueError(f"UARTBlockTop needs a block with i_stream and o_stream; "
                                 f"{type(block).__name__} has {', '.join(block.signature.members)}")
        self.block = block
        self.divisor = divisor
        self.in_bits = block.i_stream.payload.shape().size
        self.out_bits = block.o_stream.payload.shape().size
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.block = block = self.block
        m.submodules.uart_rx = urx = UARTRx(self.divisor)
        m.submodules.uart_tx = utx = UARTTx(self.divisor)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]

        bi, bo = nbytes(self.in_bits), nbytes(self.out_bits)
        m.submodules.buffer = buf = memory.Memory(shape=self.in_bits, depth=256, init=[])
        wr = buf.write_port()
        rd = buf.read_port()

        byte = urx.o.payload
        got = urx.o.valid
        count = Signal(8)       # n of the current request
        acc = Signal(8)         # running sum of the request body
        beat = Signal(8 * bi)   # the beat being assembled
        byte_index = Signal(range(max(bi, 2)))
        wp = Signal(8)
        ack_pending = Signal()
        ack_status = Signal(8)
        rp = Signal(8)

        assembled = Cat(beat[8:], byte)  # this byte is the beat's most significant so far
        m.d.comb += [wr.addr.eq(wp), wr.data.eq(assembled[:self.in_bits])]

        feeding = Signal()
        fire = block.i_stream.valid & block.i_stream.ready
        rp_next = Mux(fire, rp + 1, rp)
        m.d.comb += [rd.addr.eq(Mux(feeding, rp_next, 0)), block.i_stream.payload.eq(rd.data)]
        m.d.comb += block.i_stream.valid.eq(feeding)

        with m.FSM(name="rx_fsm"):
            with m.State("IDLE"):
                with m.If(got & (byte == REQUEST_SYNC)):
                    m.next = "COUNT"
            with m.State("COUNT"):
                with m.If(got):
                    m.d.sync += [count.eq(byte), acc.eq(byte), wp.eq(0), byte_index.eq(0)]
                    m.next = "DATA"
                    with m.If(byte == 0):
                        m.next = "CHECK"
            with m.State("DATA"):
                with m.If(got):
                    m.d.sync += [beat.eq(assembled), acc.eq(acc + byte)]
                    with m.If(byte_index == bi - 1):
                        m.d.comb += wr.en.eq(1)
                        m.d.sync += [byte_index.eq(0), wp.eq(wp + 1)]
                        with m.If(wp == count - 1):
                            m.next = "CHECK"
                    with m.Else():
                        m.d.sync += byte_index.eq(byte_index + 1)
            with m.State("CHECK"):
                with m.If(got):
                    ok = (acc + byte)[:8] == 0
                    m.d.sync += [ack_pending.eq(1), ack_status.eq(Mux(ok, 0, 1))]
                    m.next = "ACK"
            with m.State("ACK"):
                with m.If(~ack_pending):
                    m.d.sync += rp.eq(0)
                    with m.If((ack_status == 0) & (count != 0)):
                        m.next = "FEED"
                    with m.Else():
                        m.next = "IDLE"
            with m.State("FEED"):
                m.d.comb += feeding.eq(1)
                m.d.sync += rp.eq(rp_next)
                with m.If(fire & (rp == count - 1)):
                    m.next = "IDLE"

        # ---- transmitter
        body = Signal(8 * max(bo, 1))
        body_len = Signal(range(max(bo, 1) + 1))
        sent = Signal(range(max(bo, 1) + 1))
        sync_byte = Signal(8)
        tx_acc = Signal(8)
        with m.FSM(name="tx_fsm"):
            with m.State("IDLE"):
                with m.If(ack_pending):
                    m.d.sync += [ack_pending.eq(0), body.eq(ack_status), body_len.eq(1), sync_byte.eq(ACK_SYNC)]
                    m.next = "SYNC"
                with m.Elif(block.o_stream.valid):
                    m.d.comb += block.o_stream.ready.eq(1)
                    m.d.sync += [body.eq(block.o_stream.payload.as_value()), body_len.eq(bo),
                                 sync_byte.eq(OUTPUT_SYNC)]
                    m.next = "SYNC"
            with m.State("SYNC"):
                m.d.comb += [utx.i.valid.eq(1), utx.i.payload.eq(sync_byte)]
                with m.If(utx.i.ready):
                    m.d.sync += [tx_acc.eq(0), sent.eq(0)]
                    m.next = "BODY"
            with m.State("BODY"):
                m.d.comb += [utx.i.valid.eq(1), utx.i.payload.eq(body[:8])]
                with m.If(utx.i.ready):
                    m.d.sync += [tx_acc.eq(tx_acc + body[:8]), body.eq(body >> 8), sent.eq(sent + 1)]
                    with m.If(sent == body_len - 1):
                        m.next = "CHECKSUM"
            with m.State("CHECKSUM"):
                m.d.comb += [utx.i.valid.eq(1), utx.i.payload.eq((Const(0, 8) - tx_acc)[:8])]
                with m.If(utx.i.ready):
                    m.next = "IDLE"
        return m
