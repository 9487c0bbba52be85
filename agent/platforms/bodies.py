"""Reading response bodies with the DECODED size bounded as it streams.

httpx undoes ``Content-Encoding`` one network chunk at a time with no output limit: 64 KB of a gzip bomb become
64 MB in one call, and ``gzip, gzip`` turns a 1 KB body into hundreds of MB before any size cap is looked at. Here
the raw bytes are read and inflated with ``zlib``'s ``max_length``, so no step ever holds more than ``STEP`` decoded
bytes beyond what the caller keeps, and the caller's cap is checked after every step.

Only ``gzip`` (``x-gzip``), ``deflate`` and ``identity`` are accepted (what we ask for), one layer of them: a
platform or an object store has no reason to send anything else, and a stacked encoding is a bomb.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import httpx

ACCEPT_ENCODING = "gzip, deflate"
STEP = 64 * 1024


class EncodingError(ValueError):
    """A Content-Encoding this client does not accept, or a body that does not decode."""


class BoundedDecoder:
    """One ``Content-Encoding`` undone in steps of at most ``step`` decoded bytes."""

    def __init__(self, encoding: str, step: int = STEP) -> None:
        layers = [e.strip().lower() for e in encoding.split(",") if e.strip().lower() not in ("", "identity")]
        if len(layers) > 1:
            raise EncodingError(f"stacked Content-Encoding {encoding!r} refused")
        self.encoding = layers[0] if layers else "identity"
        if self.encoding in ("gzip", "x-gzip"):
            self._wbits = 16 + zlib.MAX_WBITS
        elif self.encoding == "deflate":
            self._wbits = zlib.MAX_WBITS  # zlib-wrapped, as the RFC says; raw deflate is tried if that fails
        elif self.encoding != "identity":
            raise EncodingError(f"Content-Encoding {encoding!r} is not supported (only gzip and deflate)")
        self._step = step
        self._z = zlib.decompressobj(self._wbits) if self.encoding != "identity" else None
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of one raw chunk, in pieces of at most ``step`` bytes."""
        if self._z is None:
            for i in range(0, len(data), self._step):
                yield data[i : i + self._step]
            return
        pending = data
        while True:
            try:
                out = self._z.decompress(pending, self._step)
            except zlib.error as e:
                if self.encoding == "deflate" and not self._started:  # a raw deflate stream (common in practice)
                    self._wbits = -zlib.MAX_WBITS
                    self._z = zlib.decompressobj(self._wbits)
                    self._started = True
                    continue
                raise EncodingError(f"{self.encoding} body does not decode: {e}") from None
            self._started = True
            pending = self._z.unconsumed_tail
            if out:
                yield out
            if self._z.eof:
                rest = self._z.unused_data
                if not rest.strip(b"\x00"):
                    return  # trailing padding after the stream: ignored
                if self.encoding == "deflate":
                    raise EncodingError("data after the end of the deflate stream")
                self._z = zlib.decompressobj(self._wbits)  # gzip allows several members one after another
                pending = rest
            elif not pending and len(out) < self._step:
                return  # all this input yields has been returned (a full step may leave more inside zlib)


def iter_decoded(resp: httpx.Response, step: int = STEP) -> Iterator[bytes]:
    """The body of a streamed response, decoded in pieces of at most ``step`` bytes (EncodingError if it cannot be)."""
    decoder = BoundedDecoder(resp.headers.get("Content-Encoding", ""), step)
    for raw in resp.iter_raw():
        yield from decoder.feed(raw)


def read_capped(resp: httpx.Response, cap: int) -> bytes | None:
    """The decoded body, or None once it passes ``cap`` bytes (the rest is never read or inflated)."""
    body = bytearray()
    for piece in iter_decoded(resp):
        if len(body) + len(piece) > cap:
            return None
        body += piece
    return bytes(body)


def read_head(resp: httpx.Response, want: int) -> bytes:
    """The first ``want`` decoded bytes of a body at most (an error page to quote): b"" if it does not decode."""
    head = bytearray()
    try:
        for piece in iter_decoded(resp):
            head += piece
            if len(head) >= want:
                break
    except EncodingError:
        return b""
    return bytes(head[:want])
