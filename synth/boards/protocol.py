"""The host <-> board framing (pure Python: used by the host driver and the co-simulation).

Every frame is a sync byte, a body and a checksum byte chosen so that the body
bytes plus the checksum sum to 0 modulo 256::

    host -> board   request  0x55 | n | n beats of BI bytes | chk      (1 <= n <= 255)
    board -> host   ack      0xAC | status | chk                      (status 0 = accepted,
                                                                       1 = bad checksum: dropped)
    board -> host   output   0x5A | BO bytes | chk                    (one frame per output beat)

A beat is the block's packed stream payload (``rtl.streams.pack``), little
endian, BI = ceil(input bits / 8) and BO = ceil(output bits / 8) bytes. The
board answers a request with its ack, then (if accepted) feeds the n beats to
the block and sends one output frame per output beat -- as many as the block
makes, which need not be one per input beat (the core answers a 64-pixel digit
with its logits beats and one status beat). The host waits for the answer to a
request before sending the next one (the board has no receive buffer while it
feeds the block), so a request carries whole samples (``plan_requests``).
"""

from __future__ import annotations

from dataclasses import dataclass

REQUEST_SYNC = 0x55
ACK_SYNC = 0xAC
OUTPUT_SYNC = 0x5A
MAX_BEATS = 255
ACK_FRAME_BYTES = 3


class ProtocolError(ValueError):
    """A reply that does not follow the framing (bad sync byte, bad checksum, wrong count)."""


def nbytes(bits: int) -> int:
    return (bits + 7) // 8


def checksum(body: bytes) -> int:
    """The byte that makes ``sum(body) + checksum`` a multiple of 256."""
    return (-sum(body)) & 0xFF


def encode_request(words: list[int], in_bits: int) -> bytes:
    """One request frame carrying ``words`` (packed input beats of ``in_bits`` bits)."""
    if not 1 <= len(words) <= MAX_BEATS:
        raise ValueError(f"a request carries 1 .. {MAX_BEATS} beats, got {len(words)}")
    body = bytearray([len(words)])
    for w in words:
        if not 0 <= w < (1 << in_bits):
            raise ValueError(f"input word {w:#x} does not fit {in_bits} bits")
        body += w.to_bytes(nbytes(in_bits), "little")
    return bytes([REQUEST_SYNC]) + bytes(body) + bytes([checksum(body)])


def output_frame_bytes(out_bits: int) -> int:
    return 2 + nbytes(out_bits)


@dataclass
class Reply:
    status: int          # the ack's status byte (0 = accepted)
    outputs: list[int]   # packed output beats, in order


def decode_reply(data: bytes, out_bits: int, n_outputs: int) -> Reply:
    """Decode an ack followed by ``n_outputs`` output frames (no output frames if rejected)."""
    if len(data) < ACK_FRAME_BYTES:
        raise ProtocolError(f"reply too short: {len(data)} bytes, an ack alone is {ACK_FRAME_BYTES}")
    if data[0] != ACK_SYNC:
        raise ProtocolError(f"reply starts with {data[0]:#04x}, expected the ack sync {ACK_SYNC:#04x}")
    if (data[1] + data[2]) & 0xFF:
        raise ProtocolError("ack checksum mismatch")
    status = data[1]
    if status != 0:
        if len(data) != ACK_FRAME_BYTES:
            raise ProtocolError(f"rejected request (status {status}) followed by {len(data) - 3} more bytes")
        return Reply(status, [])
    size = output_frame_bytes(out_bits)
    want = ACK_FRAME_BYTES + n_outputs * size
    if len(data) != want:
        raise ProtocolError(f"reply has {len(data)} bytes, expected {want} (ack + {n_outputs} x {size})")
    outputs = []
    for k in range(n_outputs):
        frame = data[ACK_FRAME_BYTES + k * size: ACK_FRAME_BYTES + (k + 1) * size]
        if frame[0] != OUTPUT_SYNC:
            raise ProtocolError(f"output frame {k} starts with {frame[0]:#04x}, expected {OUTPUT_SYNC:#04x}")
        if sum(frame[1:]) & 0xFF:
            raise ProtocolError(f"output frame {k}: checksum mismatch")
        word = int.from_bytes(frame[1:-1], "little")
        if word >> out_bits:
            raise ProtocolError(f"output frame {k}: {word:#x} has bits above the {out_bits}-bit payload")
        outputs.append(word)
    return Reply(0, outputs)


def plan_requests(words: list[int], in_bits: int, out_bits: int, beats_per_request: int = MAX_BEATS, *,
                  beats_per_sample: int = 1, outputs_per_sample: int = 1) -> list[tuple[bytes, int, int]]:
    """Split ``words`` into requests: [(frame bytes, beats sent, reply length in bytes)].

    A sample is ``beats_per_sample`` input beats that make ``outputs_per_sample`` output beats
    (the LIF array: 1 and 1; the core: the 64 pixels of a digit and its logits + status beats).
    A request carries whole samples only -- as many as ``beats_per_request`` allows -- so each
    reply holds exactly the outputs of its own samples.
    """
    if not 1 <= beats_per_request <= MAX_BEATS:
        raise ValueError(f"beats_per_request must be 1 .. {MAX_BEATS}, got {beats_per_request}")
    if beats_per_sample < 1 or outputs_per_sample < 0:
        raise ValueError(f"a sample needs >= 1 input beats and >= 0 output beats, got {beats_per_sample} "
                         f"and {outputs_per_sample}")
    if beats_per_sample > beats_per_request:
        raise ValueError(f"a sample of {beats_per_sample} beats does not fit one request of at most "
                         f"{beats_per_request} beats")
    if len(words) % beats_per_sample:
        raise ValueError(f"{len(words)} input beats are not a whole number of {beats_per_sample}-beat samples")
    step = beats_per_request // beats_per_sample * beats_per_sample
    plan = []
    for start in range(0, len(words), step):
        chunk = words[start:start + step]
        outputs = len(chunk) // beats_per_sample * outputs_per_sample
        reply = ACK_FRAME_BYTES + outputs * output_frame_bytes(out_bits)
        plan.append((encode_request(chunk, in_bits), len(chunk), reply))
    return plan


def reply_outputs(reply_len: int, out_bits: int) -> int:
    """The number of output frames in an accepted reply of ``reply_len`` bytes (``plan_requests``)."""
    return (reply_len - ACK_FRAME_BYTES) // output_frame_bytes(out_bits)
