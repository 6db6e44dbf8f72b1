"""Bad input to every ``spikeforge`` subcommand (issue 16, part 4).

Every subcommand -- enumerated from the argparse parser, so a new one is not forgotten -- given a
bad value, a missing or corrupt file, a directory where a file belongs or a file where a folder
belongs, must exit != 0 with ONE line on stderr that names the offending option or value, with no
Python traceback and no hang. Every input here is refused before any heavy work (training,
synthesis, Verilator), so the whole file runs in seconds, in process (``main``) but for two
end-to-end checks through a real interpreter.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from spikeforge.blocks import block_names, get_block
from spikeforge.cli import build_parser, main


def leaf_commands(parser: argparse.ArgumentParser, prefix: tuple = ()) -> dict[tuple, argparse.ArgumentParser]:
    """Every runnable command path: ('verilog', 'lif'), ('train',), ... A parser whose subcommand is
    optional (``synth``, which also runs as ``synth --all``) is a leaf itself too."""
    out = {}
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs or not subs[0].required:
        out[prefix] = parser
    for sub in subs:
        for name, child in sub.choices.items():
            out.update(leaf_commands(child, prefix + (name,)))
    return out


LEAVES = leaf_commands(build_parser())


def run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.err


def assert_refused(argv: list[str], code, err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code not in (0, None), f"{argv}: exit status {code} (accepted)"
    assert "Traceback" not in err, f"{argv}: traceback\n{err}"
    assert len(lines) == 1, f"{argv}: {len(lines)} lines on stderr:\n{err}"
    assert "error" in lines[0]
    for needle in needles:
        assert needle in lines[0], f"{argv}: {needle!r} not in {lines[0]!r}"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A regular file, a folder, a corrupt checkpoint, a corrupt vector folder, a good LIF vector folder."""
    root = tmp_path_factory.mktemp("bad")
    (root / "file.txt").write_text("not json, not a checkpoint\n")
    (root / "dir").mkdir()
    (root / "bad.pt").write_bytes(b"\x80\x02garbage" * 10)
    bad = root / "badvec"
    bad.mkdir()
    (bad / "manifest.json").write_text("{ not json")
    assert main(["vectors", "lif", "--n-neurons", "8", "--lanes", "2", "--sequences", "1", "--steps", "2",
                 "-o", str(root / "vec")]) == 0
    return {"file": str(root / "file.txt"), "dir": str(root / "dir"), "bad_pt": str(root / "bad.pt"),
            "badvec": str(bad), "vec": str(root / "vec"), "under_file": str(root / "file.txt" / "x"),
            "missing": str(root / "missing" / "nothing.pt"), "root": str(root)}


# ---- generic: every option of every subcommand that takes a number, or a fixed choice -------------------

def _generic_cases():
    cases = []
    for path, parser in LEAVES.items():
        required = [a for a in parser._actions if a.required and not isinstance(a, argparse._SubParsersAction)]
        if not required:  # argparse reports missing required arguments before unknown ones
            cases.append((path, ["--no-such-option"], "--no-such-option"))
        for action in parser._actions:
            if not action.option_strings or action.nargs == 0:
                continue
            opt = action.option_strings[-1]
            if action.type in (int, float) or getattr(action.type, "__name__", "") in ("integer", "number"):
                cases.append((path, [opt, "abc"], opt))
            elif action.choices:
                cases.append((path, [opt, "no-such-choice"], "no-such-choice"))
        for action in parser._actions:  # a positional with fixed choices
            if not action.option_strings and action.choices and not isinstance(action, argparse._SubParsersAction):
                cases.append((path, ["no-such-choice"], "no-such-choice"))
    return cases


GENERIC = _generic_cases()


@pytest.mark.parametrize("path, extra, needle", GENERIC, ids=[f"{' '.join(p) or '-'} {' '.join(e)}"
                                                              for p, e, _ in GENERIC])
def test_every_option_refuses_a_malformed_value(path, extra, needle, capsys):
    argv = [*path, *extra]
    code, err = run(argv, capsys)
    assert_refused(argv, code, err, needle)


# ---- semantic: values of the right type but out of range, files that are wrong ---------------------------

def _block_cases(block: str) -> list[tuple[tuple, list[str], tuple]]:
    b = get_block(block)
    cases = [
        (("verilog", block), ["--spec", "{file}", "-o", "{root}/x.v"], ("not valid JSON",)),
        (("verilog", block), ["--spec", "{dir}", "-o", "{root}/x.v"], ("{dir}",)),
        (("verilog", block), ["--spec", "{missing}", "-o", "{root}/x.v"], ("cannot read spec file",)),
        (("verilog", block), ["-o", "{dir}"], ("-o", "is a directory")),
        (("verilog", block), ["-o", "{under_file}"], ("-o", "is a file")),
        (("vectors", block), ["-o", "{file}"], ("-o", "is a file")),
        (("vectors", block), ["--seed", "-1", "-o", "{root}/v"], ("--seed", "-1")),
        (("synth", block), ["--target", "ecp5", "-o", "{dir}"], ("-o", "is a directory")),
        (("synth", block), ["--target", "ecp5", "--keep", "{file}"], ("--keep", "is a file")),
        (("synth", block), ["--target", "ecp5", "--spec", "{file}", "-o", "{root}/r.json"], ("not valid JSON",)),
    ]
    for opt, info in b.vector_options.items():
        flag = "--" + opt.replace("_", "-")
        if info.type is int:
            cases.append((("vectors", block), [flag, "0", "-o", "{root}/v"], (flag, "0", ">= 1")))
            # refused up front by the size limit, never allocated
            cases.append((("vectors", block), [flag, str(10 ** 12), "-o", "{root}/v"], (flag, "limit")))
        else:
            cases.append((("vectors", block), [flag, "1.5", "-o", "{root}/v"], (flag, "1.5")))
    return cases


SEMANTIC = [
    (("blocks",), ["extra"], ("extra",)),
    (("check",), ["lif", "--vectors", "{vec}", "--valid-prob", "0"], ("--valid-prob", "0", "(0.0, 1.0]")),
    (("check",), ["lif", "--vectors", "{vec}", "--valid-prob", "2.0"], ("--valid-prob", "2.0")),
    (("check",), ["lif", "--vectors", "{vec}", "--ready-prob", "-1"], ("--ready-prob", "-1")),
    (("check",), ["lif", "--vectors", "{vec}", "--ready-prob", "nan"], ("--ready-prob", "nan")),
    (("check",), ["lif", "--vectors", "{missing}"], ("no such vector directory",)),
    (("check",), ["lif", "--vectors", "{file}"], ("is a file",)),
    (("check",), ["lif", "--vectors", "{badvec}"], ("not valid JSON",)),
    (("check",), ["mtts", "--vectors", "{vec}"], ("'lif'", "'mtts'")),
    (("train",), ["spiking-mlp", "--set", "hidden=abc"], ("hidden=abc", "integer")),
    (("train",), ["spiking-mlp", "--set", "hidden=1.5"], ("hidden=1.5", "integer")),
    (("train",), ["spiking-mlp", "--set", "beta=true"], ("beta=true", "number")),
    (("train",), ["spiking-mlp", "--set", "nosuch=1"], ("nosuch", "settings:")),
    (("train",), ["spiking-mlp", "--set", "hidden"], ("--set", "'hidden'")),
    (("train",), ["matterhorn", "--set", "mask=1"], ("mask=1", "true or false")),
    (("train",), ["lsformer", "--set", "head_dilations=[1.5]"], ("head_dilations", "list")),
    (("train",), ["spiking-mlp", "--max-minutes", "-1"], ("--max-minutes", "-1", "> 0")),
    (("train",), ["spiking-mlp", "--max-minutes", "0"], ("--max-minutes", "0")),
    (("train",), ["spiking-mlp", "--epochs", "0"], ("--epochs", "0")),
    (("train",), ["spiking-mlp", "--lr", "0"], ("--lr", "0")),
    (("train",), ["spiking-mlp", "--out", "{dir}"], ("--out", "is a directory")),
    (("train",), ["spiking-mlp", "--out", "{under_file}"], ("--out", "is a file")),
    (("train",), ["wta", "--variant", "bidirectional"], ("--variant", "'bidirectional'", "causal", "mlm")),
    (("train",), ["spiking-mlp", "--variant", "mlm"], ("--variant", "spiking-mlp")),
    (("train",), ["wta-mlm", "--variant", "causal"], ("--variant", "wta-mlm")),
    (("train",), ["wta", "--set", "seq_len=0", "--out", "{root}/w.pt"], ("seq_len", "0")),
    (("recommend",), ["--task", "speech", "--hardware", "gpu", "--priority", "accuracy"], ("'speech'", "nlp")),
    (("recommend",), ["--task", "nlp", "--hardware", "fpga", "--priority", "efficiency"], ("'fpga'", "edge")),
    (("recommend",), ["--task", "nlp", "--hardware", "gpu", "--priority", "speed"], ("'speed'", "balanced")),
    (("recommend",), ["--task", "classification", "--hardware", "neuromorphic", "--priority", "energy"],
     ("'neuromorphic'", "neuromorphic_chip")),
    (("recommend",), ["--task", "nlp", "--hardware", "gpu"], ("--priority",)),
    (("energy",), ["nosuch"], ("'nosuch'",)),
    (("energy",), ["wta-mlm"], ("'wta-mlm'", "digits")),
    (("energy",), ["spiking-mlp", "--samples", "0"], ("--samples", "0")),
    (("energy",), ["spiking-mlp", "--e-ac", "-1"], ("--e-ac", "-1")),
    (("energy",), ["spiking-mlp", "--checkpoint", "{missing}"], ("does not exist",)),
    (("energy",), ["spiking-mlp", "--checkpoint", "{dir}"], ("is a directory",)),
    (("energy",), ["spiking-mlp", "--checkpoint", "{bad_pt}"], ("cannot be read",)),
    (("energy",), ["spiking-mlp", "--set", "hidden=abc"], ("hidden=abc",)),
    (("compare",), ["--embed-dim", "0"], ("--embed-dim", "0", ">= 1")),
    (("compare",), ["--embed-dim", "-4"], ("--embed-dim", "-4")),
    (("compare",), ["--heads", "0"], ("--heads", "0")),
    (("compare",), ["--depth", "0"], ("--depth", "0")),
    (("compare",), ["--time-steps", "0"], ("--time-steps", "0")),
    (("compare",), ["--epochs", "0"], ("--epochs", "0")),
    (("compare",), ["--models", "nosuch"], ("nosuch", "digits models")),
    (("compare",), ["--models", "wta-mlm"], ("wta-mlm", "digits")),
    (("compare",), ["--out-dir", "{file}"], ("--out-dir", "is a file")),
    (("compare",), ["--checkpoint-dir", "{under_file}"], ("--checkpoint-dir",)),
    (("demo",), ["--core", "nosuch"], ("'nosuch'", "spiking-mlp")),
    (("demo",), ["--core-samples", "0"], ("--core-samples", "0")),
    (("demo",), ["--workdir", "{file}"], ("--workdir", "is a file")),
    (("demo",), ["--blocks", "softmax"], ("'softmax'",)),
    (("synth",), [], ("BLOCK",)),
    (("synth",), ["--all", "--results", "{file}"], ("--results", "is a file")),
    (("synth",), ["--update"], ("--update",)),
    (("synth", "core"), ["--model", "nosuch", "--target", "ecp5"], ("nosuch",)),
    (("synth", "core"), ["--model", "{bad_pt}", "--target", "ecp5"], ("cannot be read",)),
    (("synth", "core"), ["--model", "spiking-mlp", "--target", "ecp5", "-o", "{dir}"], ("-o", "is a directory")),
    (("synth", "core"), ["--model", "spiking-mlp", "--target", "ecp5", "--lanes", "0"], ("lanes = 0",)),
    (("board", "build"), ["--board", "ulx3s-85f", "-o", "{file}"], ("-o", "is a file")),
    (("board", "build"), ["--board", "ulx3s-85f", "-o", "{root}/b", "--baud", "0"], ("--baud", "0")),
    (("board", "build"), ["--board", "ulx3s-85f", "-o", "{root}/b", "--core", "nosuch"], ("nosuch",)),
    (("board", "build"), ["--board", "ulx3s-85f", "-o", "{root}/b", "--core-lanes", "4"], ("--core-lanes",)),
    (("board", "run"), ["--port", "/dev/null", "--vectors", "{vec}"], ("--port", "/dev/null", "serial port")),
    (("board", "run"), ["--port", "{dir}", "--vectors", "{vec}"], ("--port", "is a directory")),
    (("board", "run"), ["--port", "{missing}", "--vectors", "{vec}"], ("--port", "no such device")),
    (("board", "run"), ["--port", "/dev/null", "--vectors", "{vec}", "--baud", "0"], ("--baud", "0")),
    (("board", "run"), ["--port", "/dev/null", "--vectors", "{vec}", "--baud", "12345"], ("--baud", "12345")),
    (("board", "run"), ["--port", "/dev/null", "--vectors", "{vec}", "--timeout", "0"], ("--timeout", "0")),
    (("board", "run"), ["--port", "/dev/null", "--core", "spiking-mlp", "--samples", "0"], ("--samples", "0")),
    (("core", "build"), ["nosuch", "-o", "{root}/c"], ("nosuch",)),
    (("core", "build"), ["{bad_pt}", "-o", "{root}/c"], ("cannot be read",)),
    (("core", "build"), ["{dir}", "-o", "{root}/c"], ("is a directory",)),
    (("core", "build"), ["spiking-mlp", "-o", "{file}"], ("-o", "is a file")),
    (("core", "build"), ["spiking-mlp", "-o", "{root}/c", "--lanes", "0"], ("lanes = 0",)),
    (("core", "run"), ["spiking-mlp", "--samples", "0"], ("--samples", "0")),
    (("core", "run"), ["spiking-mlp", "--valid-prob", "0"], ("--valid-prob", "0")),
    (("core", "run"), ["spiking-mlp", "--offset", "-1"], ("--offset", "-1")),
    (("core", "run"), ["nosuch"], ("nosuch",)),
    (("core", "report"), ["-o", "{dir}"], ("-o", "is a directory")),
    (("core", "report"), ["--samples", "0"], ("--samples", "0")),
    (("core", "report"), ["--reuse-cosim", "-o", "{root}/none/core.md"], ("--reuse-cosim", "cannot read")),
    (("estimate",), ["nosuch"], ("nosuch",)),
    (("estimate",), ["spiking-mlp", "--samples", "0"], ("--samples", "0")),
    (("estimate",), ["spiking-mlp", "--fmax", "0"], ("--fmax", "0")),
    (("estimate",), ["spiking-mlp", "--fmax", "-5"], ("--fmax", "-5")),
    (("estimate",), ["spiking-mlp", "--tech", "3nm"], ("'3nm'", "45nm")),
    (("estimate",), ["spiking-mlp", "-o", "{root}/e.txt"], ("-o", ".csv or .json")),
    (("estimate",), ["spiking-mlp", "-o", "{under_file}.csv"], ("-o", "is a file")),
    (("estimate",), ["spiking-mlp", "--checkpoint", "{bad_pt}"], ("cannot be read",)),
    # NIR import / export (unsupported nodes and wrong shapes: tests/test_nir.py, which writes such graphs)
    (("nir", "import"), ["{file}", "-o", "{root}/n.pt"], ("cannot be read",)),
    (("nir", "import"), ["{missing}", "-o", "{root}/n.pt"], ("does not exist",)),
    (("nir", "import"), ["{dir}", "-o", "{root}/n.pt"], ("is a directory",)),
    (("nir", "import"), ["{file}", "-o", "{dir}"], ("-o", "is a directory")),
    (("nir", "import"), ["{file}", "-o", "{under_file}"], ("-o", "is a file")),
    (("nir", "import"), ["{file}", "-o", "{root}/n.pt", "--dt", "0"], ("--dt", "0")),
    (("nir", "import"), ["{file}", "-o", "{root}/n.pt", "--time-steps", "0"], ("--time-steps", "0")),
    (("nir", "export"), ["{bad_pt}", "-o", "{root}/n.nir"], ("cannot be read",)),
    (("nir", "export"), ["nosuch", "-o", "{root}/n.nir"], ("nosuch",)),
    (("nir", "export"), ["spiking-mlp", "-o", "{root}/n.nir"], ("'subtract'", "reset_mode=zero")),
    (("nir", "export"), ["spiking-mlp", "-o", "{dir}"], ("-o", "is a directory")),
    (("nir", "export"), ["spiking-mlp", "-o", "{root}/n.nir", "--dt", "-1"], ("--dt", "-1")),
    # the sweep subcommand (another change in flight): refused by argparse, no cluster is started;
    # its range checks (--workers 0, an unknown study) belong with it
    (("sweep", "list"), ["extra"], ("extra",)),
    (("sweep", "run"), ["no-such-study", "--workers", "abc"], ("--workers", "abc")),
    (("sweep", "report"), ["--samples", "abc"], ("--samples", "abc")),
    *[case for block in block_names() for case in _block_cases(block)],
    # the golden-only vector sets
    (("vectors", "logquant"), ["--count", "0", "-o", "{root}/v"], ("--count", "0")),
    (("vectors", "logquant"), ["--count", str(10 ** 9), "-o", "{root}/v"], ("--count", "limit")),
    (("vectors", "logquant"), ["--levels", "9", "-o", "{root}/v"], ("levels = 9",)),
    (("vectors", "logquant"), ["-o", "{file}"], ("-o", "is a file")),
    (("vectors", "mtts-decode"), ["--beats", "0", "-o", "{root}/v"], ("--beats", "0")),
    (("vectors", "mtts-decode"), ["--beats", str(10 ** 9), "-o", "{root}/v"], ("--beats", "limit")),
    (("vectors", "mtts-decode"), ["--lo", "5", "-o", "{root}/v"], ("mask_value",)),
    # the adaptive-threshold LIF array's own spec fields
    (("vectors", "alif"), ["--lanes", "3", "-o", "{root}/v"], ("n_neurons = 16", "lanes = 3")),
    (("vectors", "alif"), ["--noise-width", "41", "-o", "{root}/v"], ("noise_width = 41", "0 .. 40")),
    (("verilog", "alif"), ["--adapt-increment", "-1", "-o", "{root}/x.v"], ("adapt_increment = -1",)),
    (("check",), ["alif", "--vectors", "{vec}"], ("'lif'", "'alif'")),
    # check --count N (issue 15, part 2): refused before any vector is generated or built
    (("check",), ["lif", "--count", "0"], ("--count", "0", ">= 1")),
    (("check",), ["lif", "--count", "-5"], ("--count", "-5", ">= 1")),
    (("check",), ["lif", "--count", "10", "--vectors", "{vec}"], ("--vectors", "--count", "not both")),
    (("check",), ["lif"], ("--vectors", "--count")),
    (("check",), ["lif", "--count", str(10 ** 9)], ("--count", "limit")),
    (("check",), ["lif", "--vectors", "{vec}", "--spec", "{file}"], ("--spec", "goes with --count")),
    (("check",), ["lif", "--count", "10", "--spec", "{file}"], ("not valid JSON",)),
    (("check",), ["lif", "--count", "10", "--spec", "{missing}"], ("cannot read spec file",)),
    (("check",), ["lif", "--count", "10", "--waves", "{dir}"], ("--waves", "is a directory")),
    (("check",), ["lif", "--count", "10", "--waves", "{under_file}"], ("--waves", "is a file")),
    (("check",), ["lif", "--count", "10", "--waves-window", "-1"], ("--waves-window", "-1")),
]


# spikeforge prove (issue 15, part 3): every refusal comes before any solver run
SEMANTIC += [
    (("prove",), [], ("BLOCK", "--all")),
    (("prove",), ["--all", "lif"], ("--all",)),
    (("prove",), ["lif", "--depth", "0"], ("--depth", "0")),
    (("prove",), ["lif", "--depth", "1000"], ("--depth", "1000")),
    (("prove",), ["lif", "--set", "nosuch=1"], ("nosuch",)),
    (("prove",), ["lif", "--set", "lanes"], ("FIELD=VALUE",)),
    (("prove",), ["lif", "--set", "lanes=3"], ("lanes",)),
    (("prove",), ["lif", "--set", "overflow=sideways"], ("overflow", "sideways")),
    (("prove",), ["lif", "--property", "nosuch"], ("nosuch", "valid_held")),
    (("prove",), ["lif", "--config", "nosuch"], ("nosuch",)),
    (("prove",), ["lif", "--out", "{file}"], ("--out",)),
    (("prove",), ["--all", "--set", "lanes=2"], ("--set",)),
    (("prove",), ["lif", "--timeout", "0"], ("--timeout", "0")),
]

SEMANTIC = [case for case in SEMANTIC if case[0] in LEAVES]   # cases of a subcommand not (yet) in this tree


@pytest.mark.parametrize("path, extra, needles", SEMANTIC,
                         ids=[f"{' '.join(p)} {' '.join(e)}" for p, e, _ in SEMANTIC])
def test_bad_input_is_refused_in_one_line(path, extra, needles, files, capsys):
    argv = [part.format(**files) for part in (*path, *extra)]
    code, err = run(argv, capsys)
    assert_refused(argv, code, err, *(n.format(**files) for n in needles))


def test_every_subcommand_has_semantic_cases():
    """A new subcommand (or block) must bring its own bad-input cases to SEMANTIC."""
    covered = {path for path, _, _ in SEMANTIC}
    missing = sorted(" ".join(p) or "(top level)" for p in LEAVES if p and p not in covered)
    assert not missing, f"subcommands without bad-input cases in tests/test_bad_input.py: {missing}"
    assert ("train",) in LEAVES and ("board", "run") in LEAVES and ("vectors", "lif") in LEAVES


def test_the_leaf_walk_finds_every_command():
    names = {p[0] for p in LEAVES if p}
    assert {"blocks", "verilog", "vectors", "check", "train", "recommend", "energy", "compare", "demo", "synth",
            "board", "core", "estimate"} <= names
    assert {("verilog", b) for b in block_names()} <= set(LEAVES)
    assert ("synth",) in LEAVES and ("synth", "core") in LEAVES   # synth also runs bare (--all)


# ---- end to end, through a real interpreter: the hang and the termios traceback of the issue ------------

@pytest.mark.parametrize("extra, needle", [
    (["check", "lif", "--vectors", "{vec}", "--valid-prob", "0"], "--valid-prob"),
    (["board", "run", "--port", "/dev/null", "--vectors", "{vec}"], "--port /dev/null"),
])
def test_end_to_end_no_hang_no_traceback(extra, needle, files):
    out = subprocess.run([sys.executable, "-m", "spikeforge", *(a.format(**files) for a in extra)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in out.stderr


def test_an_unexpected_exception_is_one_line_too(monkeypatch, capsys):
    """A bug (not a user error) still gives one line and a non-zero status; the traceback on request."""
    import spikeforge.cli as cli

    def boom(args):
        raise TypeError("something\nover two lines")
    monkeypatch.setitem(cli.COMMANDS, "blocks", boom)
    code, err = run(["blocks"], capsys)
    assert code == 1 and err.count("\n") == 1 and "TypeError: something; over two lines" in err
    monkeypatch.setenv("SPIKEFORGE_TRACEBACK", "1")
    with pytest.raises(TypeError):
        main(["blocks"])
