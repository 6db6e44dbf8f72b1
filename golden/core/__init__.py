"""The neuromorphic core on the golden side: spec, layer program, compiler, golden execution, cycles.

Imports no Amaranth (``rtl/core/`` builds the hardware from these objects)."""

from .compile import compile_model, compile_spiking_mlp, compile_wta_spikingformer
from .execute import CoreMismatch, ProgramRun, check_against_model, run_program
from .program import AttentionOp, Buffer, CoreProgram, CoreSpec, LinearOp, check_fits, spec_for_program

__all__ = ["AttentionOp", "Buffer", "CoreMismatch", "CoreProgram", "CoreSpec", "LinearOp", "ProgramRun",
           "check_against_model", "check_fits", "compile_model", "compile_spiking_mlp",
           "compile_wta_spikingformer", "run_program", "spec_for_program"]
