"""Board builds without a board: the framing by hand, the pin plans, and the host driver on a pty.

The UART top itself is co-simulated bit-exact in ``sim/test_board.py``; the
bitstreams are built by ``spikeforge board build`` (minutes, so not here).
"""

import os
import threading

import pytest

from golden.lif import LIFSpec
from rtl.lif import lif_input_layout, lif_output_layout
from spikeforge.cli import main
from synth.boards import board_plan, uart_divisor
from synth.boards.protocol import ProtocolError, checksum, decode_reply, encode_request, plan_requests


def test_request_frame_by_hand():
    # words 0x1234 and 0x00ff as 16-bit beats: 0x55, n = 2, 34 12 ff 00, checksum:
    # 2 + 0x34 + 0x12 + 0xff + 0x00 = 0x147 -> -0x47 mod 256 = 0xb9
    assert encode_request([0x1234, 0x00FF], 16) == bytes([0x55, 0x02, 0x34, 0x12, 0xFF, 0x00, 0xB9])
    # 25-bit beats take 4 bytes; 0x1abcdef -> ef cd ab 01
    assert encode_request([0x1ABCDEF], 25)[2:6] == bytes([0xEF, 0xCD, 0xAB, 0x01])
    assert checksum(b"\x01\xff") == 0x00 and checksum(b"\x10") == 0xF0


def test_request_errors():
    with pytest.raises(ValueError, match="1 .. 255 beats, got 0"):
        encode_request([], 8)
    with pytest.raises(ValueError, match="1 .. 255 beats, got 256"):
        encode_request([0] * 256, 8)
    with pytest.raises(ValueError, match="does not fit 8 bits"):
        encode_request([0x100], 8)


def test_reply_decoding_by_hand_and_its_errors():
    # ack (0xac 00 00) + one 12-bit output 0x0abc: 0x5a bc 0a chk; 0xbc + 0x0a = 0xc6 -> 0x3a
    reply = bytes([0xAC, 0x00, 0x00, 0x5A, 0xBC, 0x0A, 0x3A])
    assert decode_reply(reply, 12, 1).outputs == [0xABC]
    with pytest.raises(ProtocolError, match="checksum"):
        decode_reply(reply[:-1] + b"\x3b", 12, 1)
    with pytest.raises(ProtocolError, match="expected 11"):  # 3 (ack) + 2 x (sync + 2 bytes + chk)
        decode_reply(reply, 12, 2)
    with pytest.raises(ProtocolError, match="ack sync"):
        decode_reply(b"\x5a" + reply[1:], 12, 1)
    with pytest.raises(ProtocolError, match="bits above"):
        decode_reply(bytes([0xAC, 0, 0, 0x5A, 0x00, 0x10, 0xF0]), 12, 1)  # 0x1000 needs 13 bits


def test_requests_are_split_at_the_limit():
    plan = plan_requests(list(range(600)), 16, 8, beats_per_request=255)
    assert [beats for _, beats, _ in plan] == [255, 255, 90]
    assert [reply for _, _, reply in plan] == [3 + 255 * 3, 3 + 255 * 3, 3 + 90 * 3]


@pytest.mark.parametrize("board, clock_pin, rx, tx", [
    ("ulx3s-85f", 'LOCATE COMP "clk25_0__io" SITE "G2"', 'SITE "M1"', 'LOCATE COMP "uart_0__tx__io" SITE "L4"'),
    ("icebreaker", "set_io clk12_0__io 35", "set_io uart_0__rx__io 6", "set_io uart_0__tx__io 9"),
])
def test_board_plan_uses_the_board_clock_and_uart_pins(board, clock_pin, rx, tx):
    _, plan = board_plan(board, LIFSpec(n_neurons=8, lanes=2))
    constraints = next(text for name, text in plan.files.items() if name.endswith((".lpf", ".pcf")))
    for line in (clock_pin, rx, tx):
        assert line in constraints


def test_uart_divisor():
    assert uart_divisor(25e6, 115200) == 217  # 25e6 / 115200 = 217.01
    assert uart_divisor(12e6, 115200) == 104  # 104.17
    with pytest.raises(ValueError, match="too fast for a 12 MHz clock"):
        uart_divisor(12e6, 4_000_000)


def _answer_like_a_board(master: int, frames: list[bytes], replies: list[bytes], seen: list):
    for frame, reply in zip(frames, replies):
        got = b""
        while len(got) < len(frame):
            got += os.read(master, len(frame) - len(got))
        seen.append(got)
        os.write(master, reply)


def test_board_run_over_a_serial_port(tmp_path, capsys):
    """``spikeforge board run`` on a pseudo-terminal answered by a scripted board."""
    spec = LIFSpec(n_neurons=8, lanes=2)
    vec_dir = tmp_path / "vec"
    assert main(["vectors", "lif", "--n-neurons", "8", "--lanes", "2", "--sequences", "1", "--steps", "3",
                 "-o", str(vec_dir)]) == 0
    from golden.vectors import load_vectors
    from rtl.streams import pack
    from spikeforge.blocks import get_block

    _, beats, expected = get_block("lif").stream_from_vectors(load_vectors(vec_dir))
    in_bits, out_bits = lif_input_layout(spec).size, lif_output_layout(spec).size
    frames = [encode_request([pack(lif_input_layout(spec), b) for b in beats], in_bits)]
    # the reply a correct board sends, framed here independently of the driver's decoder
    reply = bytearray([0xAC, 0x00, 0x00])
    for b in expected:
        body = pack(lif_output_layout(spec), b).to_bytes((out_bits + 7) // 8, "little")
        reply += bytes([0x5A]) + body + bytes([(-sum(body)) & 0xFF])
    master, slave = os.openpty()
    seen: list = []
    board = threading.Thread(target=_answer_like_a_board, args=(master, frames, [bytes(reply)], seen))
    board.start()
    try:
        code = main(["board", "run", "--port", os.ttyname(slave), "--vectors", str(vec_dir), "--timeout", "5"])
    finally:
        board.join(10)
        os.close(master)
        os.close(slave)
    assert seen == frames
    assert code == 0
    assert f"board run: {len(expected)} output beats, 0 mismatches" in capsys.readouterr().out


def test_board_run_errors(tmp_path, capsys):
    assert main(["board", "run", "--port", "/nonexistent/ttyUSB9", "--vectors", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spikeforge: error:")
