"""The cocotb test every single-stream block runs under Verilator.

Driver + monitor + model + in-order checker (``sim.streams``): the model is the
golden vector file, turned into the exact input and expected output words by the
launcher (``sim.harness.cosim``) through the block's own stream layouts. The test
ends with one assertion on the error count.
"""

import cocotb

from sim.streams import BenchConfig, load_stimulus, run_stream_bench


@cocotb.test()
async def stream_matches_golden(dut):
    config = BenchConfig.from_env()
    words_in, expected = load_stimulus(config.stimulus)
    result = await run_stream_bench(dut, config, words_in, expected)
    assert result.mismatches == 0, f"{result.mismatches} mismatching or missing beats: {result.first_errors}"
