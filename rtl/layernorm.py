"""Integer layer norm unit: a token's D values in, its D normalised values out.

Hardware for ``golden.layernorm.layer_norm`` (equations and widths in ``golden/layernorm.py``
and ``docs/numeric-contract.md``), bit for bit: the mean and the variance by a sequential
restoring divider (one quotient bit a cycle), sigma by the digit-by-digit square root (one
root bit a cycle, no multiplier), each channel's ``floor(dev gamma / sigma)`` by the same
divider. One divider and one multiplier serve every step, so the unit is small (its cost is
time: ``token_cycles``); a unit with one divider per lane would trade area for throughput.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.layernorm import LayerNormSpec, check_inputs, check_params

KIND_DATA = 0      # a value u_i of the token being loaded (channel i = the count of data beats so far)
KIND_PARAM = 1     # gamma_j and beta_j of channel j = the count of parameter beats so far, modulo D


def layernorm_input_layout(spec: LayerNormSpec) -> data.StructLayout:
    """Input beat: ``kind`` (DATA or PARAM), ``u`` (DATA), ``gamma`` and ``beta`` (PARAM)."""
    return data.StructLayout({"kind": unsigned(1), "u": signed(spec.input_width),
                              "gamma": signed(spec.gamma_width), "beta": signed(spec.beta_width)})


def layernorm_output_layout(spec: LayerNormSpec) -> data.StructLayout:
    """Output beat: ``y`` (signed ``output_width``) and ``last`` (the token's channel D - 1)."""
    return data.StructLayout({"y": signed(spec.output_width), "last": unsigned(1)})


class LayerNorm(wiring.Component):
    """Integer layer norm over D channels, one value a beat in and out.

    A PARAM beat writes gamma and beta of channel j (j counts PARAM beats modulo D; D of them
    load the whole table, and a later D reload it). D DATA beats make a token (channel i =
    i-th DATA beat); it is normalised with the parameters written before its last DATA beat
    was accepted (PARAM beats are accepted only while loading, as DATA beats are). Then, with
    Ns = ``sum_width``, N2 = ``square_sum_width``, Nx = ``product_width``, K = Wi + 1::

        MEAN  1: the divider <= S1 < 0 ? (D - 1) - S1 : S1 (a negative numerator n is floored as
              -floor((|n| + d - 1) / d), so no remainder test follows); Ns cycles: the quotient
              q; 1: mu = S1 < 0 ? -q : q
        VAR   D reads of the buffered token, 3 pipeline cycles (dev, dev^2, S2 + dev^2), 1 load
        VDIV  N2 cycles: var = S2 / D, then 1: the root's register <= var + eps
        SQRT  K cycles: sigma = isqrt(var + eps), two bits of the radicand a cycle
        per channel i (Nx + 6 cycles): read u_i, gamma_i, beta_i; dev_i = u_i - mu;
              x = dev_i gamma_i; x < 0 ? (sigma - 1) - x : x into the divider; Nx cycles:
              the quotient q; y_i = x < 0 ? beta_i - q : beta_i + q into the output register;
              the output beat (one cycle when ``o_stream.ready`` is high)

    Latency and throughput (no back-pressure, DATA beats back to back)
    ------------------------------------------------------------------
    * The token whose last DATA beat is accepted in cycle c has channel i's output valid
      in cycle c + ``first_output_latency`` + i (Nx + 6), first_output_latency =
      Ns + D + N2 + K + Nx + 13.
    * The next token's first DATA beat is accepted at the earliest in the cycle after the
      last output's handshake; a token takes ``token_cycles`` = D (Nx + 8) + Ns + N2 + K + 7
      cycles from its first DATA beat's accept to the next token's first, and a PARAM beat
      one cycle.
    * Back-pressure: the unit waits in the output state; nothing is dropped or duplicated.
      ``i_stream.ready`` and ``o_stream.valid`` come from registers only.

    Members
    -------
    i_stream : In(stream.Signature(layernorm_input_layout(spec)))
    o_stream : Out(stream.Signature(layernorm_output_layout(spec)))
    """

    def __init__(self, spec: LayerNormSpec):
        if not isinstance(spec, LayerNormSpec):
            raise TypeError(f"LayerNorm needs a LayerNormSpec, got {type(spec).__name__}")
        self.spec = spec
        super().__init__({
            "i_stream": In(stream.Signature(layernorm_input_layout(spec))),
            "o_stream": Out(stream.Signature(layernorm_output_layout(spec))),
        })

    @staticmethod
    def first_output_latency(spec: LayerNormSpec) -> int:
        """Cycles from a token's last DATA accept to its channel 0 output (class docstring)."""
        return spec.sum_width + spec.dim + spec.square_sum_width + (spec.input_width + 1) + spec.product_width + 13

    @staticmethod
    def channel_cycles(spec: LayerNormSpec) -> int:
        """Cycles between two outputs of a token: Nx + 6."""
        return spec.product_width + 6

    @staticmethod
    def token_cycles(spec: LayerNormSpec) -> int:
        """Cycles of one token at full rate: D (Nx + 8) + Ns + N2 + K + 7 (class docstring)."""
        return (spec.dim * (spec.product_width + 8) + spec.sum_width + spec.square_sum_width
                + spec.input_width + 1 + 7)

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        d, wi = spec.dim, spec.input_width
        ns, n2, nx = spec.sum_width, spec.square_sum_width, spec.product_width
        k_root = wi + 1                                  # root bits: the radicand has < 2 K bits
        md = d.bit_length()                              # bits of the divisor D
        ms = spec.sigma_width                            # bits of the divisor sigma
        n_max, m_max = max(ns, n2, nx), max(md, ms)

        m.submodules.buffer = ubuf = memory.Memory(shape=signed(wi), depth=d, init=[])
        m.submodules.gammas = gmem = memory.Memory(shape=signed(spec.gamma_width), depth=d, init=[])
        m.submodules.betas = bmem = memory.Memory(shape=signed(spec.beta_width), depth=d, init=[])
        u_wr, u_rd = ubuf.write_port(), ubuf.read_port()
        g_wr, g_rd = gmem.write_port(), gmem.read_port()
        b_wr, b_rd = bmem.write_port(), bmem.read_port()

        payload = self.i_stream.payload
        accept = self.i_stream.valid & self.i_stream.ready
        is_data = accept & (payload.kind == KIND_DATA)
        is_param = accept & (payload.kind == KIND_PARAM)

        index = Signal(range(d))                 # channel being loaded / read / normalised
        pindex = Signal(range(d))                # channel the next PARAM beat writes
        s1 = Signal(signed(ns + 1))
        mu = Signal(signed(wi))
        s2 = Signal(unsigned(n2))
        count = Signal(range(n_max + 1))
        acc = Signal(unsigned(n_max + m_max + 1))   # the divider: remainder above, numerator / quotient below
        negative = Signal()                      # the sign of the numerator being divided
        sigma = Signal(unsigned(ms))
        sigma_less_one = Signal(unsigned(ms))
        root_rem = Signal(unsigned(k_root + 2))  # the square root's remainder (< 2 root + 1)
        radicand = Signal(unsigned(2 * k_root))  # shifted two bits a cycle, top first
        var_dev = Signal(signed(wi + 1))         # VAR pipeline: dev of the word read a cycle ago
        var_square = Signal(unsigned(2 * wi + 2))  # its square, registered: the multiplier and the
        var_valid1, var_valid2, var_valid3 = Signal(), Signal(), Signal()   # S2 adder in two stages
        n_dev = Signal(signed(wi + 1))
        n_gamma = Signal(signed(spec.gamma_width))
        n_beta = Signal(signed(spec.beta_width))
        n_prod = Signal(signed(wi + spec.gamma_width))

        m.d.comb += [u_wr.addr.eq(index), u_wr.data.eq(payload.u), u_wr.en.eq(is_data),
                     g_wr.addr.eq(pindex), g_wr.data.eq(payload.gamma), g_wr.en.eq(is_param),
                     b_wr.addr.eq(pindex), b_wr.data.eq(payload.beta), b_wr.en.eq(is_param),
                     u_rd.addr.eq(index), g_rd.addr.eq(index), b_rd.addr.eq(index)]
        with m.If(is_param):
            m.d.sync += pindex.eq(Mux(pindex == d - 1, 0, pindex + 1))

        def divide_step(n_bits: int, divisor):
            """One restoring step on the low n_bits + M + 1 bits of ``acc``."""
            shifted = Signal(unsigned(n_bits + m_max + 2), name=f"div_shifted{n_bits}")
            m.d.comb += shifted.eq(acc[:n_bits + m_max + 1] << 1)
            top = shifted[n_bits:]
            fits = top >= divisor
            m.d.sync += acc.eq(Mux(fits, Cat(shifted[0] | 1, shifted[1:n_bits], (top - divisor)[:m_max + 1]), shifted))


        def division(n_bits: int, divisor, then: str):
            """A division state: n_bits restoring steps, one a cycle, then state ``then``."""
            divide_step(n_bits, divisor)
            m.d.sync += count.eq(count + 1)
            with m.If(count == n_bits - 1):
                m.next = then

        with m.FSM(init="LOAD"):
            with m.State("LOAD"):
                m.d.comb += self.i_stream.ready.eq(1)
                with m.If(is_data):
                    total = Signal(signed(ns + 1))
                    m.d.comb += total.eq(Mux(index == 0, 0, s1) + payload.u)
                    m.d.sync += [s1.eq(total), index.eq(index + 1)]
                    with m.If(index == d - 1):
                        m.d.sync += index.eq(0)
                        m.next = "MEAN_LOAD"
            with m.State("MEAN_LOAD"):       # one subtraction: floor(n / D) = -floor(((D - 1) - n) / D) for n < 0
                m.d.sync += [acc.eq(Mux(s1 < 0, (d - 1) - s1, s1)), negative.eq(s1 < 0), count.eq(0)]
                m.next = "MEAN"
            with m.State("MEAN"):
                division(ns, d, "MEAN_FIX")
            with m.State("MEAN_FIX"):
                m.d.sync += [mu.eq(Mux(negative, -acc[:ns], acc[:ns])), s2.eq(0)]
                m.next = "VAR"
            with m.State("VAR"):
                m.d.sync += [index.eq(index + 1), var_valid1.eq(1)]
                with m.If(index == d - 1):
                    m.d.sync += [index.eq(0), count.eq(0)]
                    m.next = "VAR_TAIL"
            with m.State("VAR_TAIL"):
                m.d.sync += [var_valid1.eq(0), count.eq(count + 1)]
                with m.If(count == 2):
                    m.next = "VDIV_LOAD"
            with m.State("VDIV_LOAD"):
                m.d.sync += [acc.eq(s2), negative.eq(0), count.eq(0)]
                m.next = "VDIV"
            with m.State("VDIV"):
                division(n2, d, "VFIX")
            with m.State("VFIX"):
                m.d.sync += [radicand.eq(acc[:n2] + spec.eps), root_rem.eq(0), sigma.eq(0), count.eq(0)]
                m.next = "SQRT"
            with m.State("SQRT"):
                rem = Cat(radicand[-2:], root_rem)            # (remainder << 2) | next two radicand bits
                trial = Cat(1, 0, sigma)                      # (root << 2) | 1
                take = rem >= trial
                m.d.sync += [radicand.eq(radicand << 2), count.eq(count + 1),
                             root_rem.eq(Mux(take, rem - trial, rem)), sigma.eq(Cat(take, sigma))]
                with m.If(count == k_root - 1):
                    m.next = "READ"
            with m.State("READ"):                              # the read ports see ``index`` this cycle
                m.next = "DEV"
            with m.State("DEV"):
                m.d.sync += [n_dev.eq(u_rd.data - mu), n_gamma.eq(g_rd.data), n_beta.eq(b_rd.data),
                             sigma_less_one.eq(sigma - 1)]
                m.next = "MUL"
            with m.State("MUL"):
                m.d.sync += n_prod.eq(n_dev * n_gamma)
                m.next = "ABS"
            with m.State("ABS"):
                m.d.sync += [acc.eq(Mux(n_prod < 0, sigma_less_one - n_prod, n_prod)), negative.eq(n_prod < 0),
                             count.eq(0)]
                m.next = "NDIV"
            with m.State("NDIV"):
                division(nx, sigma, "NFIX")
            with m.State("NFIX"):
                quotient = acc[:nx]
                m.d.sync += [self.o_stream.payload.y.eq(Mux(negative, n_beta - quotient, n_beta + quotient)),
                             self.o_stream.payload.last.eq(index == d - 1), self.o_stream.valid.eq(1)]
                m.next = "OUT"
            with m.State("OUT"):
                with m.If(self.o_stream.ready):
                    m.d.sync += [self.o_stream.valid.eq(0), index.eq(Mux(index == d - 1, 0, index + 1))]
                    with m.If(index == d - 1):
                        m.next = "LOAD"
                    with m.Else():
                        m.next = "READ"

        # the VAR pipeline runs beside the FSM: dev of the word read last cycle, its square, S2 + square
        m.d.sync += [var_dev.eq(u_rd.data - mu), var_square.eq(var_dev * var_dev), var_valid2.eq(var_valid1),
                     var_valid3.eq(var_valid2)]
        with m.If(var_valid3):
            m.d.sync += s2.eq(s2 + var_square)
        return m


# ---------------------------------------------------------------------------
# Beats <-> golden arrays


def layernorm_param_beats(spec: LayerNormSpec, gamma, beta) -> list[dict]:
    """D PARAM beats loading gamma and beta (channel j in beat j)."""
    gamma, beta = check_params(spec, gamma, beta)
    return [{"kind": KIND_PARAM, "u": 0, "gamma": int(g), "beta": int(b)} for g, b in zip(gamma, beta)]


def layernorm_input_beats(spec: LayerNormSpec, u, gamma=None, beta=None) -> list[dict]:
    """(PARAM beats if gamma and beta are given, then) the DATA beats of tokens (tokens, D), row by row."""
    beats = [] if gamma is None else layernorm_param_beats(spec, gamma, beta)
    for row in check_inputs(spec, u).tolist():
        beats.extend({"kind": KIND_DATA, "u": int(x), "gamma": 0, "beta": 0} for x in row)
    return beats


def layernorm_expected_beats(spec: LayerNormSpec, y) -> list[dict]:
    """Golden outputs (tokens, D) -> the output beats the hardware must produce."""
    return [{"y": int(v), "last": int(i == spec.dim - 1)} for row in y.tolist() for i, v in enumerate(row)]
