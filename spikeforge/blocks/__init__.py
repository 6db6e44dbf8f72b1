"""The registry of hardware blocks the command line, the demo and synthesis know about.

Each block module (``spikeforge/blocks/<name>.py``) describes one block with a
``Block`` record: its spec class, how to build its Amaranth component, how to make
golden reference vectors, and how to turn a vector file into stream beats.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from golden.vectors import VectorSet

#: the most elements one array of a vector set may hold (int64: 512 MiB)
MAX_VECTOR_ELEMENTS = 1 << 26

#: block modules, in the order the demo runs them
BLOCK_MODULES = ("lif", "synapse", "mac", "topk", "wta", "mtts", "window", "alif", "sdsa", "layernorm")


@dataclass(frozen=True)
class VectorOption:
    """A block-specific option of ``spikeforge vectors`` (e.g. number of time steps)."""

    type: type
    default: Any
    help: str
    #: the allowed range (inclusive; None: open); counts start at 1
    low: Any = 1
    high: Any = None


@dataclass(frozen=True)
class Block:
    name: str
    summary: str
    spec_cls: type
    toplevel: str
    component: Callable[[Any], Any]
    #: (spec, seed, **vector options) -> dict of named integer arrays (golden)
    make_vectors: Callable[..., dict]
    #: VectorSet -> (spec, input beats, expected output beats)
    stream_from_vectors: Callable[[VectorSet], tuple]
    #: VectorSet -> (count, unit), e.g. (10240, "neuron updates")
    work_done: Callable[[VectorSet], tuple[int, str]]
    vector_options: dict[str, VectorOption] = field(default_factory=dict)
    #: options the demo uses (a default run checks a useful amount of work)
    demo_vector_options: dict[str, Any] = field(default_factory=dict)
    in_name: str = "i_stream"
    out_name: str = "o_stream"
    #: larger configurations ``spikeforge synth --all`` sweeps besides the default spec:
    #: each a dict of spec-field overrides (empty: derived by ``synth_specs``)
    synth_configs: tuple = ()
    #: (spec, **vector options) -> elements of the largest array ``make_vectors`` would make, so that
    #: ``spikeforge vectors`` refuses a request over ``MAX_VECTOR_ELEMENTS`` before allocating anything
    vector_size: Callable[..., int] | None = None
    #: spec -> the most cycles the block takes per output beat without stalls, for a block that
    #: takes many (the layer norm: a division per channel); None: a few, the benches' default
    cycles_per_output: Callable[[Any], int] | None = None

    def default_spec(self):
        return self.spec_cls()

    def cosim_timeout(self, spec, n_in: int, n_out: int, valid_prob: float, ready_prob: float) -> int | None:
        """The per-cycle bench's timeout for this block's stream (None: the bench's default,
        ``4 gaps (n_in + n_out) + 1000``); a slow block's outputs count ``cycles_per_output`` each."""
        if self.cycles_per_output is None:
            return None
        gaps = 1.0 / max(1e-3, min(valid_prob, ready_prob))
        return int(4 * gaps * (n_in + n_out * self.cycles_per_output(spec))) + 1000


_REGISTRY: dict[str, Block] = {}


def _load() -> dict[str, Block]:
    if not _REGISTRY:
        for module in BLOCK_MODULES:
            block = importlib.import_module(f"{__name__}.{module}").BLOCK
            _REGISTRY[block.name] = block
    return _REGISTRY


def block_names() -> list[str]:
    return list(_load())


def get_block(name: str) -> Block:
    blocks = _load()
    if name not in blocks:
        raise KeyError(f"unknown block {name!r}; known blocks: {', '.join(blocks)}")
    return blocks[name]
