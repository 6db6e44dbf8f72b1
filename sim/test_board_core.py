"""The spiking-MLP core behind the UART under Verilator, end to end, bit-exact against golden.

The board top is the one ``spikeforge board build --core spiking-mlp`` builds
(``synth.boards.core.core_board_top``: ``UARTBlockTop(NeuroCore)``, no debug taps). The
host side is the real driver code: ``core_client`` plans the request frames (whole
samples per request: 64 pixel beats each), the cocotb bench (``sim/uart_bench.py``) plays
them bit by bit into the simulated UART and records the board's replies, and the driver
then decodes those replies through a transport that replays them. The logits must be
``==`` the golden program and the integer model, every status beat's cycle count ``==``
``predict_cycles``, every activity beat ``==`` ``op_activity``; a request with a wrong checksum must be refused without touching the
core (the next digit still comes out right).
"""

import json

import torch

from golden.core.cycles import predict_cycles
from golden.core.execute import run_program
from rtl.emit import to_verilog
from sim.harness import build, run_bench
from sim.test_board import ReplayTransport
from sim.uart_bench import UartBenchConfig, UartBenchResult
from spikeforge.core import held_out_samples, load_core_model
from synth.boards.core import check_core_outputs, core_board_top, core_client, core_input_words, core_stream_bits
from synth.boards.protocol import ACK_FRAME_BYTES, decode_reply

DIVISOR = 8  # clock cycles per UART bit in simulation (a real board: clock / baud)


def test_mlp_core_behind_the_uart_is_bit_exact(tmp_path):
    cm = load_core_model("spiking-mlp", debug_taps=False)
    digits, labels, _ = held_out_samples(cm, 3)
    words = core_input_words(cm, digits)
    in_bits, out_bits = core_stream_bits(cm)
    assert len(words) == 3 * 64

    # 128 beats per request: the first request carries two digits, the second one; a digit makes 6
    # output frames (2 logits words, the activity beats of its 3 ops, the status beat)
    plan = core_client(cm, None, beats_per_request=128).plan(words)
    frame_bytes = 2 + (out_bits + 7) // 8
    assert [(beats, reply) for _, beats, reply in plan] == [(128, ACK_FRAME_BYTES + 12 * frame_bytes),
                                                            (64, ACK_FRAME_BYTES + 6 * frame_bytes)]
    corrupted = bytearray(plan[0][0])
    corrupted[5] ^= 0x04  # a pixel bit flipped on the line: checksum wrong, the board drops the request
    requests = [(bytes(corrupted), ACK_FRAME_BYTES)] + [(frame, reply) for frame, _, reply in plan]

    built = build(to_verilog(core_board_top(cm, DIVISOR), "uart_core_top"), "uart_core_top")
    stimulus = tmp_path / "uart_stimulus.json"
    stimulus.write_text(json.dumps({"divisor": DIVISOR,
                                    "requests": [{"frame": f.hex(), "reply_len": n} for f, n in requests]}))
    config = UartBenchConfig(stimulus=str(stimulus.resolve()), result=str((tmp_path / "uart_result.json").resolve()))
    result = run_bench(built, "sim.uart_bench", config, tmp_path, result_type=UartBenchResult)
    replies = [bytes.fromhex(r) for r in result.replies]
    assert result.framing_errors == 0
    nak = decode_reply(replies[0], out_bits, 0)
    assert nak.status == 1 and nak.outputs == []

    transport = ReplayTransport([f for f, _, _ in plan], replies[1:])
    outputs = core_client(cm, transport, beats_per_request=128).run(words)
    check = check_core_outputs(cm, digits, outputs)
    run = run_program(cm.program, digits, current_width=cm.spec.current_width)
    assert torch.equal(check.logits, run.logits)                 # == the golden program
    assert torch.equal(check.logits, check.model_logits)         # == the integer model
    assert check.cycles == predict_cycles(cm.program, cm.spec, run).tolist()
    assert check.activity_match and set(check.activity) == {0, 1, 2}
    assert check.ok, str(check)
    # not a vacuous match: real logits, and the model's own answers for these digits
    assert check.logits.abs().sum() > 0 and min(check.cycles) > 64
    assert (check.logits[:, 0].argmax(dim=-1) == labels).sum() >= 2
