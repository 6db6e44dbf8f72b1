"""What a model costs: exact cycle counts and event-based energy, validated against simulation.

* ``estimate.blocks``: per-block cycle estimators (``lif_timing``, ``synapse_timing``,
  ``mac_timing``, ``topk_timing``, ``wta_timing``, ``mtts_timing``, ``window_timing``, and
  ``block_timing`` from a block's golden vector arrays): the cycle of every input and output
  handshake with no stalls, equal to the RTL's in Amaranth's simulator (``tests/test_estimate.py``).
* ``estimate.core``: a compiled model on the neuromorphic core -- per layer and in total, the
  cycles (the core's formula, ``golden/core/cycles.py``, equal to its RTL counter), latency and
  throughput at an Fmax, the counts of every event (synaptic operations, weight / bias /
  accumulator / LIF-state / activation-buffer accesses, neuron updates, WTA scores and top-k
  comparisons) and the energy ``sum of count x energy per event``.
* ``estimate.energy``: the per-event energies of each technology from cited tables (45 nm
  Horowitz ISSCC 2014, 7 nm Jouppi et al. ISCA 2021) and the stated rules that map the core's
  widths and memory sizes onto them.

Depends on ``golden`` only (no Amaranth): ``spikeforge estimate`` runs without building RTL.
"""

from .blocks import (BlockTiming, block_timing, lif_timing, mac_timing, mtts_timing, synapse_timing, topk_timing,
                     window_timing, wta_timing)
from .core import CoreEstimate, LayerEstimate, estimate_core, synthesized_fmax
from .energy import TECHNOLOGIES, Technology, get_technology

__all__ = ["BlockTiming", "CoreEstimate", "LayerEstimate", "TECHNOLOGIES", "Technology", "block_timing",
           "estimate_core", "get_technology", "lif_timing", "mac_timing", "mtts_timing", "synapse_timing",
           "synthesized_fmax", "topk_timing", "window_timing", "wta_timing"]
