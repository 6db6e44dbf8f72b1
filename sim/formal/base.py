"""``FormalBlock``: what the harness needs to know about one block.

A block's formal description gives its small default spec (so that a proof takes seconds),
the environment (``Assume``: the commands the golden model accepts), the beat relation
(``credit``: output beats an accepted input beat owes; ``capacity``: the most beats the block
can owe at once; ``drain``: cycles of ``o_stream.ready`` held high, with nothing accepted,
after which it owes none) and its list of properties: the four stream-contract ones of
``harness.stream_properties`` plus the block's latency / interval and datapath properties.
"""

from __future__ import annotations

from typing import Any

from amaranth import Value

from .harness import Ctx, Property, stream_properties


class FormalBlock:
    #: registry name (``spikeforge.blocks``)
    name: str = ""
    #: extra named configurations: name -> spec-field overrides of the default formal spec
    configs: dict[str, dict] = {}

    def default_spec(self):
        raise NotImplementedError

    def component(self, spec):
        from spikeforge.blocks import get_block

        return get_block(self.name).component(spec)

    def check_spec(self, spec) -> None:
        """Refuse a spec the harness cannot handle (a ``ValueError`` naming the field)."""

    # ---- beat relation
    def credit(self, ctx: Ctx):
        return Value.cast(1)

    def max_credit(self, spec) -> int:
        return 1

    def capacity(self, spec) -> int:
        raise NotImplementedError

    def drain(self, spec) -> int:
        raise NotImplementedError

    def drain_condition(self, ctx: Ctx):
        """Extra condition of the ``drains`` property (the window buffer: the map is complete)."""
        return Value.cast(1)

    # ---- environment and trackers
    def environment(self, ctx: Ctx) -> None:
        """``Assume`` statements: the input beats the block's contract allows."""

    def track(self, ctx: Ctx) -> None:
        """Shadow state the block's properties share (stored in ``ctx.extra``)."""

    # ---- properties
    def depth(self, spec) -> int:
        """The default BMC depth: the pipeline plus a few beats."""
        raise NotImplementedError

    def block_properties(self) -> list[Property]:
        return []

    def properties(self) -> list[Property]:
        return [*stream_properties(self, self.depth), *self.block_properties()]

    def property(self, name: str) -> Property:
        for prop in self.properties():
            if prop.name == name:
                return prop
        raise KeyError(f"block {self.name!r} has no property {name!r}; its properties: "
                       f"{', '.join(p.name for p in self.properties())}")


def describe(spec: Any) -> str:
    """The spec fields that differ from the block's full-size default, for report headers."""
    default = type(spec)()
    changed = {k: v for k, v in spec.to_dict().items() if default.to_dict().get(k) != v}
    return ", ".join(f"{k}={v}" for k, v in changed.items())
