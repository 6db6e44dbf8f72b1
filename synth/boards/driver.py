"""The host-side driver: speaks ``protocol`` to a board over a serial port.

No third-party serial library is needed: the port is opened with ``os.open``
and put into raw 8N1 mode at the requested baud rate with ``termios`` (POSIX).
``BoardClient`` only needs an object with ``write(bytes)`` and
``read(n, timeout) -> bytes``, so it runs unchanged against a real port or any
other byte transport.
"""

from __future__ import annotations

import os
import select
import time

from .protocol import ProtocolError, decode_reply, plan_requests, reply_outputs


class SerialPort:
    """A raw serial port (POSIX termios)."""

    def __init__(self, path: str, baud: int = 115200):
        import termios

        speed = getattr(termios, f"B{baud}", None)
        if speed is None:
            raise ValueError(f"baud rate {baud} is not supported by termios on this system")
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot open serial port {path}: {exc.strerror}") from None
        attrs = termios.tcgetattr(self.fd)
        attrs[0] = 0                                                       # iflag: raw input
        attrs[1] = 0                                                       # oflag: raw output
        attrs[2] = termios.CS8 | termios.CREAD | termios.CLOCAL            # cflag: 8N1
        attrs[3] = 0                                                       # lflag: no echo, no canon
        attrs[4] = attrs[5] = speed
        attrs[6][termios.VMIN] = 0
        attrs[6][termios.VTIME] = 0
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        termios.tcflush(self.fd, termios.TCIOFLUSH)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            _, ready, _ = select.select([], [self.fd], [], 5.0)
            if not ready:
                raise TimeoutError("serial port does not accept data")
            view = view[os.write(self.fd, view):]

    def read(self, n: int, timeout: float) -> bytes:
        out = bytearray()
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                out += os.read(self.fd, n - len(out))
        return bytes(out)

    def close(self) -> None:
        os.close(self.fd)


class BoardClient:
    """Streams packed input beats through a board and returns the packed output beats.

    ``beats_per_sample`` input beats make ``outputs_per_sample`` output beats (1 and 1 for the
    LIF array; a digit's 64 pixels and its logits + status beats for the core); requests
    carry whole samples.
    """

    def __init__(self, transport, in_bits: int, out_bits: int, *, beats_per_request: int = 255,
                 timeout: float = 5.0, beats_per_sample: int = 1, outputs_per_sample: int = 1):
        self.transport, self.in_bits, self.out_bits = transport, in_bits, out_bits
        self.beats_per_request, self.timeout = beats_per_request, timeout
        self.beats_per_sample, self.outputs_per_sample = beats_per_sample, outputs_per_sample

    def plan(self, words: list[int]):
        return plan_requests(words, self.in_bits, self.out_bits, self.beats_per_request,
                             beats_per_sample=self.beats_per_sample, outputs_per_sample=self.outputs_per_sample)

    def run(self, words: list[int]) -> list[int]:
        outputs = []
        for frame, _beats, reply_len in self.plan(words):
            self.transport.write(frame)
            data = self.transport.read(reply_len, self.timeout)
            if len(data) >= 2 and data[0] == 0xAC and data[1] != 0:
                raise ProtocolError(f"the board rejected a request (status {data[1]}: bad checksum on the line)")
            if len(data) < reply_len:
                raise ProtocolError(f"timed out: {len(data)} of {reply_len} reply bytes after {self.timeout} s")
            outputs += decode_reply(data, self.out_bits, reply_outputs(reply_len, self.out_bits)).outputs
        return outputs
