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


# ---- the neuromorphic core behind the UART (the bench: sim/test_board_core.py)

def test_requests_carry_whole_samples():
    # 5 digits of 64 pixel beats, 3 output beats each: 255 beats per request hold 3 digits
    plan = plan_requests([w % 32 for w in range(5 * 64)], 5, 203, beats_per_sample=64, outputs_per_sample=3)
    frame = 2 + 26  # sync + ceil(203 / 8) bytes + checksum
    assert [(beats, reply) for _, beats, reply in plan] == [(192, 3 + 9 * frame), (128, 3 + 6 * frame)]
    assert plan[1][0][:3] == bytes([0x55, 128, 192 % 32])  # the second request starts at the 4th digit
    with pytest.raises(ValueError, match="a sample of 300 beats does not fit one request of at most 255"):
        plan_requests([0] * 300, 8, 8, beats_per_sample=300)
    with pytest.raises(ValueError, match="100 input beats are not a whole number of 64-beat samples"):
        plan_requests([0] * 100, 8, 8, beats_per_sample=64)


@pytest.fixture(scope="module")
def mlp():
    from spikeforge.core import load_core_model

    return load_core_model("spiking-mlp", debug_taps=False)


def test_core_output_beats_per_sample(mlp):
    from golden.core import run_program
    from rtl.core.beats import expected_taps
    from spikeforge.core import held_out_samples, load_core_model
    from synth.boards.core import core_outputs_per_sample

    prog = mlp.program
    # no taps: out_rows x ceil(out_features / P) logits words + one activity beat per op + 1 status
    # = 1 x ceil(10 / 8) + 3 + 1
    assert (prog.out_rows, prog.out_features, mlp.spec.lanes, len(prog.ops)) == (1, 10, 8, 3)
    assert core_outputs_per_sample(mlp.spec, prog) == 6
    # with the taps every layer leaves too; the count is the same for every digit
    tapped = load_core_model("spiking-mlp", debug_taps=True)
    per_sample = core_outputs_per_sample(tapped.spec, tapped.program)
    x, _, _ = held_out_samples(tapped, 4)
    run = run_program(tapped.program, x, current_width=tapped.spec.current_width)
    assert sum(len(w) for w in expected_taps(tapped.spec, tapped.program, run).values()) + 4 == 4 * per_sample
    assert per_sample > 6


def _core_reply_words(cm, samples):
    """The output words a correct core sends, packed here from golden (not by the decoder)."""
    from golden.core import run_program
    from golden.core.cycles import predict_cycles
    from rtl.core.beats import expected_taps
    from rtl.core.engine import TAP_ACTIVITY, TAP_LOGITS, TAP_STATUS
    from rtl.core.top import core_output_layout
    from rtl.streams import pack

    run = run_program(cm.program, samples, current_width=cm.spec.current_width)
    layout = core_output_layout(cm.spec, cm.program)
    taps = expected_taps(cm.spec, cm.program, run)
    ((op, kind), logits), = [(key, w) for key, w in taps.items() if key[1] != TAP_ACTIVITY]
    assert kind == TAP_LOGITS
    groups = len(logits) // samples.shape[0]
    words = []
    for b, cycles in enumerate(predict_cycles(cm.program, cm.spec, run).tolist()):
        for i in range(len(cm.program.ops)):          # each op's outputs, then its activity beat
            if i == op:
                words += [pack(layout, {"data": w, "kind": TAP_LOGITS, "tap": op})
                          for w in logits[b * groups:(b + 1) * groups]]
            words.append(pack(layout, {"data": taps[(i, TAP_ACTIVITY)][b], "kind": TAP_ACTIVITY, "tap": i}))
        words.append(pack(layout, {"data": cycles, "kind": TAP_STATUS, "tap": len(cm.program.ops) - 1}))
    return run, words


def test_core_outputs_decode_to_logits_and_cycles(mlp):
    from golden.core.cycles import predict_cycles
    from spikeforge.core import held_out_samples
    from synth.boards.core import check_core_outputs, decode_core_outputs

    x, _, _ = held_out_samples(mlp, 2)
    run, words = _core_reply_words(mlp, x)
    got = decode_core_outputs(mlp, words, 2)
    assert torch_equal(got.logits, run.logits) and got.logits.shape == (2, 1, 10)
    assert got.cycles == predict_cycles(mlp.program, mlp.spec, run).tolist()
    assert check_core_outputs(mlp, x, words).ok
    # one logits word off by one LSB, a wrong cycle count: both reported
    bad = list(words)
    bad[2] ^= 1  # the first logits word (after the activity beats of the two spiking layers)
    bad[5] += 1  # the status word's data (the low bits, below kind and tap): one cycle more
    check = check_core_outputs(mlp, x, bad)
    assert not check.logits_match and not check.cycles_match and "DIFFER" in str(check)
    # one activity counter off (layer1's cycle count, the low bits of its beat): reported alone
    off = list(words)
    off[0] += 1
    check = check_core_outputs(mlp, x, off)
    assert check.logits_match and check.cycles_match and not check.activity_match and not check.ok
    assert "activity counters DIFFER" in str(check)
    with pytest.raises(ValueError, match="the core sent 11 output beats for 2 samples; 12 expected"):
        decode_core_outputs(mlp, words[:11], 2)


def torch_equal(a, b):
    import torch

    return torch.equal(a, b)


def test_board_run_core_over_a_serial_port(mlp, capsys):
    """``spikeforge board run --core spiking-mlp`` on a pseudo-terminal answered by a scripted board."""
    from rtl.core.top import core_output_layout
    from spikeforge.core import held_out_samples
    from synth.boards.core import core_input_words

    x, _, _ = held_out_samples(mlp, 2)
    _, words = _core_reply_words(mlp, x)
    out_bits = core_output_layout(mlp.spec, mlp.program).size
    frames = [encode_request(core_input_words(mlp, x), 5)]
    reply = bytearray([0xAC, 0x00, 0x00])
    for w in words:
        body = w.to_bytes((out_bits + 7) // 8, "little")
        reply += bytes([0x5A]) + body + bytes([(-sum(body)) & 0xFF])
    master, slave = os.openpty()
    seen: list = []
    board = threading.Thread(target=_answer_like_a_board, args=(master, frames, [bytes(reply)], seen))
    board.start()
    try:
        code = main(["board", "run", "--port", os.ttyname(slave), "--core", "spiking-mlp", "--samples", "2"])
    finally:
        board.join(10)
        os.close(master)
        os.close(slave)
    assert seen == frames
    out = capsys.readouterr().out
    assert code == 0, out
    assert "core board run: 2 samples; logits == golden program and integer model; cycles == formula" in out


def test_board_plan_puts_the_core_behind_the_uart(mlp):
    _, plan = board_plan("ulx3s-85f", core=mlp)
    constraints = next(text for name, text in plan.files.items() if name.endswith(".lpf"))
    assert 'LOCATE COMP "clk25_0__io" SITE "G2"' in constraints and 'SITE "M1"' in constraints
    design = plan.files["spikeforge_core.il"]
    # the UART top around the core, and the core's units inside it
    for module in ("core.uart_rx", "core.uart_tx", "core.block.engine.mac", "core.block.engine.lif",
                   "core.block.fifo_a"):
        assert f"module \\spikeforge_core.{module}\n" in design, module


def test_board_build_core_errors(tmp_path, capsys, monkeypatch):
    assert main(["board", "build", "--board", "ulx3s-85f", "--core", "no-such-model", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spikeforge: error: checkpoint no-such-model does not exist") and err.count("\n") == 1
    assert main(["board", "build", "--board", "ulx3s-85f", "--core", "spiking-mlp", "--lanes", "4",
                 "-o", str(tmp_path)]) == 2
    assert "the LIF options (--lanes) do not apply" in capsys.readouterr().err
    assert main(["board", "build", "--board", "ulx3s-85f", "--core-lanes", "2", "-o", str(tmp_path)]) == 2
    assert "--core-lanes and --core-wta-lanes go with --core MODEL" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["board", "build", "--board", "arty", "--core", "spiking-mlp", "-o", str(tmp_path)])
    assert "invalid choice: 'arty'" in capsys.readouterr().err

    # a core larger than the board's FPGA: the synthesis report's does-not-fit numbers, no build
    import synth.core
    from synth.flow import SynthReport

    def too_big(cm, target, **kwargs):
        if kwargs.get("cached_only"):
            return None
        report = SynthReport.failed("core", {}, target, "")
        report.status = "does-not-fit"
        report.message = "does not fit on iCE40UP5K-SG48: needs 9999 LUTs, the device has 5280"
        return report
    monkeypatch.setattr(synth.core, "synth_core", too_big)
    assert main(["board", "build", "--board", "icebreaker", "--core", "spiking-mlp", "-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err == ("spikeforge: error: the spiking-mlp core does not fit the icebreaker board: does not fit on "
                   "iCE40UP5K-SG48: needs 9999 LUTs, the device has 5280\n")
    assert not (tmp_path / "b").exists()


def test_board_build_falls_back_from_abc9_like_the_flow(tmp_path):
    """Yosys 0.70's ABC9 assertion (seen on the core's ULX3S build): the script maps LUTs with abc."""
    from types import SimpleNamespace

    from synth.boards import _abc_lut_fallback

    script = "read_rtlil top.il\n    synth_ecp5  -top top\nwrite_json top.json"
    plan = SimpleNamespace(files={"top.ys": script})
    (tmp_path / "top.rpt").write_text("2.46.19.7. Executing ABC_OPS_REINTEGRATE pass\nERROR: Assert `x' failed.\n")
    assert _abc_lut_fallback(plan, "top", tmp_path) is None  # no ABC9 in the log: not this failure
    (tmp_path / "top.rpt").write_text("2.46. Executing ABC9 pass.\nERROR: Assert `GetSize(a) == GetSize(b)' failed.\n")
    assert _abc_lut_fallback(plan, "top", tmp_path) == "ERROR: Assert `GetSize(a) == GetSize(b)' failed."
    assert plan.files["top.ys"] == ("read_rtlil top.il\nsynth_ecp5  -top top -run :map_luts\nabc -lut 4 -dress\n"
                                    "clean\nsynth_ecp5  -top top -run map_cells:\nwrite_json top.json")
    assert _abc_lut_fallback(plan, "top", tmp_path) is None  # a second failure is not retried


def test_icebreaker_build_maps_multipliers_into_dsps_like_the_flow():
    # the fit check counts SB_MAC16s (synth_ice40 -dsp); a build without -dsp puts the core's
    # multipliers in LUTs (the P = 2 spiking-MLP core then fails placement at 95 % of the LUTs)
    _, plan = board_plan("icebreaker", LIFSpec(n_neurons=8, lanes=2))
    assert "synth_ice40 -dsp -top spikeforge_lif" in plan.files["spikeforge_lif.ys"]
    _, plan = board_plan("ulx3s-85f", LIFSpec(n_neurons=8, lanes=2))
    assert "synth_ecp5  -top spikeforge_lif" in plan.files["spikeforge_lif.ys"]


def test_a_core_nextpnr_cannot_place_is_a_does_not_fit_report(tmp_path, monkeypatch, mlp):
    """Within the device by the counts, but no legal placement (the P = 2 MLP core on the UP5K)."""
    import synth.boards as boards
    import synth.core

    monkeypatch.setattr(synth.core, "synth_core", lambda cm, target, **kw: _fake_ok_report(target))

    class Plan:
        files = {"spikeforge_core.ys": "synth_ice40 -dsp -top spikeforge_core\n"}

        def execute_local(self, where):
            out = tmp_path / "b"
            out.mkdir(exist_ok=True)
            (out / "spikeforge_core.tim").write_text(
                "Info: Device utilisation:\nInfo: \t         ICESTORM_LC:    4514/   5280    85%\n"
                "Info: \t        ICESTORM_RAM:      30/     30   100%\n"
                "Info: \t               SB_IO:       3/     39     7%\n"
                "ERROR: Unable to find legal placement for all cells, design is probably at utilisation limit.\n")
            raise RuntimeError("build script failed")
    monkeypatch.setattr(boards, "board_plan", lambda *a, **k: (None, Plan()))
    with pytest.raises(ValueError) as exc:
        boards.board_build("icebreaker", tmp_path / "b", core=mlp)
    assert str(exc.value) == (f"the spiking-mlp core (P = 8) does not fit the icebreaker board: nextpnr found no legal "
                              f"placement (LC 4514/5280, RAM 30/30); see {tmp_path / 'b' / 'spikeforge_core.tim'}")


def _fake_ok_report(target):
    from synth.flow import SynthReport

    report = SynthReport.failed("core", {}, target, "")
    report.status = "ok"
    return report
