"""Matterhorn's log weight memory, the three mismatch implementations side by side, on the shipped model.

    python bench/bench_matterhorn_weights.py [--checkpoint matterhorn] [--lanes 8] [--synth xilinx7 ...]

For every block linear of the trained checkpoint (q, k, v, o, mlp1, mlp2: log-quantized weights with
the checkpoint's mismatch seed and sigmas, ``golden.models.matterhorn.LogWeights``) and each
``mismatch_impl`` of ``rtl.logmem.LogWeightMemory``:

* every cell read out of the memory in Amaranth's simulator (one read a cycle, P = ``--lanes``
  cells a word) is compared ``==`` with the integer model's weight, which is the core's weight
  memory image (the "precomputed" implementation the core runs; proven on 64 digits under
  Verilator by ``spikeforge core run matterhorn``). Equal cells -> equal MAC sums -> equal logits:
  the bench also runs the core's golden program on ``--samples`` held-out digits with the weights
  read from each memory and compares the logits ``==``;
* memory bits of the memories each implementation declares (``rtl.logmem.memory_bits``) and its
  read latency L (cycles from a read to its weights);
* with ``--synth TARGET ...``: LUT / FF / block RAM / DSP of each implementation's memory for the
  model's largest layer (Yosys; the synthesis cache makes a second run free).

Exit 1 when a cell or a logit differs.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="matterhorn", help="checkpoint file or shipped model name")
    parser.add_argument("--lanes", type=int, default=8, help="cells P of a memory word (the core's MAC lanes)")
    parser.add_argument("--samples", type=int, default=64, help="held-out digits for the logits check")
    parser.add_argument("--synth", nargs="*", default=[], metavar="TARGET", help="also synthesise (ecp5, xilinx7, ice40)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    from golden.core import run_program
    from golden.logquant import log_quantize
    from golden.synapse import MISMATCH_IMPLS
    from rtl.logmem import LogWeightMemory, memory_bits, read_latency
    from rtl.pysim import read_weight_memory
    from spikeforge.core import held_out_samples, load_core_model, resolve_checkpoint
    from spikeforge.training import load_checkpoint

    model, _ = load_checkpoint(resolve_checkpoint(args.checkpoint))
    lw = getattr(model, "weights", None)
    if lw is None or not lw.active:
        print(f"{args.checkpoint}: the checkpoint has no log-quantized weights (weight_levels = 0)", file=sys.stderr)
        return 2
    cm = load_core_model(args.checkpoint, debug_taps=False, lanes=args.lanes)
    units = [(f"block{i}.{name}", getattr(blk, name)) for i, blk in enumerate(model.blocks)
             for name in ("q", "k", "v", "o", "mlp1", "mlp2")]
    print(f"{args.checkpoint}: {lw.levels} levels, gain sd {lw.gain_sigma:.3f}, offset sd {lw.offset_sigma} LSB, "
          f"mismatch seed {lw.seed}; P = {args.lanes}; {len(units)} layers")

    # the core's program: which ops hold these layers' weights (op name == unit name)
    op_index = {op.name: i for i, op in enumerate(cm.program.ops)}
    x, _, _ = held_out_samples(cm, args.samples)
    reference = run_program(cm.program, x, current_width=cm.spec.current_width).logits
    rows, failed = [], False
    for impl in MISMATCH_IMPLS:
        bits, seconds, weights = {}, 0.0, {}
        latency = None
        for name, unit in units:
            n_out, n_in = unit.linear.weight.shape
            spec = lw.synapse_spec(unit.layer, n_in, n_out, args.lanes, impl)
            codes = log_quantize(lw.quant_spec, unit.linear.weight.detach().double()).codes.t()
            start = time.perf_counter()
            words = read_weight_memory(LogWeightMemory(spec, init_codes=codes), n_in, spec.groups)
            seconds += time.perf_counter() - start
            cells = torch.tensor([[w for g in range(spec.groups) for w in words[r][g]] for r in range(n_in)])
            want = unit.quantize(8).weight.t()
            if not torch.equal(cells, want):
                bad = int((cells != want).sum())
                print(f"  {impl}: {name}: {bad} cell(s) differ from the integer model", file=sys.stderr)
                failed = True
            weights[name] = cells
            for mem, b in memory_bits(spec).items():
                bits[mem] = bits.get(mem, 0) + b
            latency = read_latency(spec)
        # the program with each op's weights replaced by the cells this memory read
        prog = cm.program
        saved = {}
        for name, cells in weights.items():
            op = prog.ops[op_index[name]]
            saved[name] = op.weight
            op.weight = cells.to(op.weight.dtype)
        try:
            logits = run_program(prog, x, current_width=cm.spec.current_width).logits
        finally:
            for name, w in saved.items():
                prog.ops[op_index[name]].weight = w
        same = torch.equal(logits, reference)
        failed |= not same
        rows.append((impl, bits, latency, seconds, same))

    print(f"\n{'implementation':<13} {'memory bits (all 6 layers)':<44} {'total':>9} {'L':>3} {'read-out':>9} "
          f"logits ({args.samples} digits)")
    for impl, bits, latency, seconds, same in rows:
        parts = ", ".join(f"{k} {v:,}" for k, v in bits.items())
        print(f"{impl:<13} {parts:<44} {sum(bits.values()):>9,} {latency:>3} {seconds:>8.2f}s "
              f"{'== core' if same else 'DIFFER'}")
    base = sum(rows[0][1].values())
    for impl, bits, *_ in rows[1:]:
        print(f"  {impl}: {sum(bits.values()) / base:.2f}x the precomputed memory's bits")

    if args.synth:
        from rtl.emit import to_verilog
        from synth.flow import synthesize

        name, unit = max(units, key=lambda u: u[1].linear.weight.numel())
        n_out, n_in = unit.linear.weight.shape
        codes = log_quantize(lw.quant_spec, unit.linear.weight.detach().double()).codes.t()
        print(f"\nsynthesis of one layer's memory ({name}: {n_in} x {n_out}, P = {args.lanes})")
        print(f"{'implementation':<13} {'target':<8} {'LUT':>6} {'FF':>6} {'BRAM':>6} {'DSP':>4}")
        for impl in MISMATCH_IMPLS:
            spec = lw.synapse_spec(unit.layer, n_in, n_out, args.lanes, impl)
            verilog = to_verilog(LogWeightMemory(spec, init_codes=codes), "spikeforge_logmem")
            for target in args.synth:
                r = synthesize(verilog, "spikeforge_logmem", target, block="logmem", spec=spec.to_dict())
                print(f"{impl:<13} {target:<8} {r.luts:>6} {r.ffs:>6} {r.bram:>6g} {r.dsp:>4}")
    if failed:
        print("FAILED: a memory's cells or the logits differ from the core's", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
