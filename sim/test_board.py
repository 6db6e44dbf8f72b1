"""The board top (LIF array behind the UART) under Verilator, bit-exact against golden.

The host side is the real driver code: ``BoardClient`` plans the request frames,
the cocotb bench (``sim/uart_bench.py``) plays them into the simulated UART
and records the board's replies, and ``BoardClient.run`` then decodes those
replies through a transport that replays them (checking that it sends exactly
the frames the simulated board received).
"""

import json
from pathlib import Path

import pytest

from golden.lif import LIFSpec, lif_random_currents, lif_reference
from rtl.emit import to_verilog
from rtl.lif import LIFArray, lif_expected_beats, lif_input_beats, lif_input_layout, lif_output_layout
from rtl.streams import pack
from sim.harness import build, run_bench
from sim.uart_bench import UartBenchConfig, UartBenchResult
from synth.boards.driver import BoardClient
from synth.boards.protocol import ACK_FRAME_BYTES, ProtocolError, decode_reply
from synth.boards.top import UARTBlockTop

DIVISOR = 8  # clock cycles per UART bit in simulation (a real board: clock / baud)


class ReplayTransport:
    """Plays back the simulated board's replies; checks the driver sends the simulated frames."""

    def __init__(self, frames: list[bytes], replies: list[bytes]):
        self.frames, self.replies, self.index = frames, replies, 0

    def write(self, data: bytes):
        assert data == self.frames[self.index], f"driver frame {self.index} differs from the simulated one"

    def read(self, n: int, timeout: float) -> bytes:
        reply = self.replies[self.index]
        self.index += 1
        return reply[:n]


def test_uart_board_top_is_bit_exact(tmp_path):
    spec = LIFSpec(n_neurons=8, lanes=2, refractory=2)
    currents = lif_random_currents(spec, 2, 8, seed=21)
    ref = lif_reference(spec, currents)
    in_layout, out_layout = lif_input_layout(spec), lif_output_layout(spec)
    words = [pack(in_layout, b) for b in lif_input_beats(spec, currents)]
    want = [pack(out_layout, b) for b in lif_expected_beats(spec, ref["spikes"], ref["membrane"])]
    assert len(want) == 2 * 8 * spec.groups == 64

    client = BoardClient(None, in_layout.size, out_layout.size, beats_per_request=24)
    plan = client.plan(words)
    assert [beats for _, beats, _ in plan] == [24, 24, 16]
    corrupted = bytearray(plan[0][0])
    corrupted[-1] ^= 0x01  # wrong checksum: the board must drop it and answer status 1
    requests = [(bytes(corrupted), ACK_FRAME_BYTES)] + [(frame, reply) for frame, _, reply in plan]

    core = UARTBlockTop(LIFArray(spec), DIVISOR)
    built = build(to_verilog(core, "uart_lif_top"), "uart_lif_top")
    stimulus = tmp_path / "uart_stimulus.json"
    stimulus.write_text(json.dumps({"divisor": DIVISOR,
                                    "requests": [{"frame": f.hex(), "reply_len": n} for f, n in requests]}))
    config = UartBenchConfig(stimulus=str(stimulus.resolve()), result=str((tmp_path / "uart_result.json").resolve()))
    result = run_bench(built, "sim.uart_bench", config, tmp_path, result_type=UartBenchResult)
    replies = [bytes.fromhex(r) for r in result.replies]
    assert result.framing_errors == 0

    nak = decode_reply(replies[0], out_layout.size, 0)
    assert nak.status == 1 and nak.outputs == []

    transport = ReplayTransport([f for f, _, _ in plan], replies[1:])
    outputs = BoardClient(transport, in_layout.size, out_layout.size, beats_per_request=24).run(words)
    assert outputs == want  # bit-exact: every spike bit and membrane of every beat


def test_driver_reports_a_rejected_request():
    transport = ReplayTransport([bytes([0x55, 1, 0x01, 0xFE])], [bytes([0xAC, 0x01, 0xFF])])
    with pytest.raises(ProtocolError, match="rejected"):
        BoardClient(transport, 8, 8).run([0x01])
