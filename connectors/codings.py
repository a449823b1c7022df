"""Content-Encoding undone by hand, so that no step can produce more than a bounded amount.

httpx decodes a response chunk by chunk, but each chunk whole: ``Content-Encoding: gzip,
gzip`` of 24 KB on the wire inflates one 64 KB chunk of the outer layer into megabytes of the
inner one, and that into gigabytes, before anyone counts (10.5 GB of memory in 42 s, issue 12).
So the client reads the *raw* body (``iter_raw``) and decodes it here:

- every stage (gzip, deflate, br, zstd; repeated or mixed, in any order, at most
  ``MAX_CODINGS``) yields pieces of at most about ``STEP`` bytes and produces the next only
  when asked, so memory holds a few pieces per stage, whatever the ratio;
- the output of every stage, and the raw input, is counted against the size limit: a body
  whose decoded size, or any intermediate layer's, passes the limit stops there
  (:class:`BodyTooLarge`); a layer larger than the body it decodes to exists only to waste
  work;
- an unknown coding (``compress``, a typo, garbage) is refused before reading the body
  (:class:`CodingError`), and so is one the data does not match.

zstd frames may ask for a window of up to 2 GB; RFC 9659 limits HTTP's zstd to 8 MB, and so
does the decoder here. Data after the end of a gzip or deflate stream is ignored, as httpx did.
"""

from __future__ import annotations

import typing
import zlib
from collections.abc import Callable, Iterable, Iterator

import brotli
import zstandard

#: Output of one decoding step, in bytes.
STEP = 64 * 1024
#: More codings than this in one Content-Encoding is no real server's doing.
MAX_CODINGS = 4
ZSTD_MAX_WINDOW = 8 * 1024 * 1024
#: What the client announces: exactly the codings decoded below.
ACCEPT_ENCODING = "gzip, deflate, br, zstd"

Stage = Callable[[Iterable[bytes]], Iterator[bytes]]


class CodingError(Exception):
    """A Content-Encoding that cannot be decoded: ``unsupported`` when the coding is unknown
    (retrying will not help), else the data was corrupt."""

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported

    # Keyword state is not in ``args``: without this a pickled copy (a Beam worker's error)
    # is rebuilt from the message alone and fails or loses ``unsupported``.
    def __reduce__(self) -> tuple[typing.Any, ...]:
        return (_coding_error, (str(self), self.unsupported))


def _coding_error(message: str, unsupported: bool) -> CodingError:
    return CodingError(message, unsupported=unsupported)


class BodyTooLarge(Exception):
    """The body, or one of its encoded layers, passed the size limit."""


def _inflate(wbits: int, *, raw_fallback: bool = False) -> Stage:
    """gzip (``wbits`` 16 + 15) or zlib-wrapped deflate (15); with ``raw_fallback``, a
    stream whose first chunk is no zlib stream is read as raw deflate, as browsers and httpx
    do for servers that send raw deflate as "deflate"."""

    def stage(chunks: Iterable[bytes]) -> Iterator[bytes]:
        d = zlib.decompressobj(wbits)
        first = True
        for chunk in chunks:
            if d.eof:
                return  # trailing data after the stream: ignored
            data = chunk
            while True:
                try:
                    out = d.decompress(data, STEP)
                except zlib.error as exc:
                    if not (first and raw_fallback):
                        raise CodingError(f"invalid compressed data: {exc}") from exc
                    d, data, first = zlib.decompressobj(-zlib.MAX_WBITS), chunk, False
                    continue
                first = False
                if out:
                    yield out
                if d.eof:
                    break
                data = d.unconsumed_tail
                # A full step may leave output inside zlib even with all input consumed.
                if not data and len(out) < STEP:
                    break
        # No flush(): it would return everything left in one piece. Whatever is pending was
        # already produced by the loop above; a stream cut short simply ends here.

    return stage


def _brotli(chunks: Iterable[bytes]) -> Iterator[bytes]:
    d = brotli.Decompressor()
    try:
        for chunk in chunks:
            out = d.process(chunk, output_buffer_limit=STEP)
            if out:
                yield out
            while not d.can_accept_more_data():
                out = d.process(b"", output_buffer_limit=STEP)
                if out:
                    yield out
        # Output may still be pending from input already taken.
        while not d.is_finished():
            out = d.process(b"", output_buffer_limit=STEP)
            if not out:
                return  # cut short: what came is what there is
            yield out
    except brotli.error as exc:
        raise CodingError(f"invalid br data: {exc}") from exc


class _Chunks:
    """A file-like view of an iterator of byte strings, for zstandard's pull reader."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)

    def read(self, size: int = -1) -> bytes:
        for chunk in self._chunks:
            if chunk:
                return chunk  # at most one upstream piece (bounded) whatever ``size`` asks
        return b""


def _zstd(chunks: Iterable[bytes]) -> Iterator[bytes]:
    dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
    try:
        # zstandard only calls read(): the one method of IO[bytes] that _Chunks has.
        source = typing.cast(typing.IO[bytes], _Chunks(chunks))
        reader = dctx.stream_reader(source, read_size=STEP, read_across_frames=True)
        while out := reader.read(STEP):
            yield out
    except zstandard.ZstdError as exc:
        raise CodingError(f"invalid zstd data: {exc}") from exc


_STAGES: dict[str, Stage] = {
    "gzip": _inflate(16 + zlib.MAX_WBITS),
    "x-gzip": _inflate(16 + zlib.MAX_WBITS),
    "deflate": _inflate(zlib.MAX_WBITS, raw_fallback=True),
    "br": _brotli,
    "zstd": _zstd,
}


def stages(content_encoding: str | None) -> list[Stage]:
    """The decoders for a Content-Encoding value, in decoding order (the reverse of the
    order of application the header lists); raises :class:`CodingError` for an unknown
    coding or too many of them."""
    names = [n.strip().lower() for n in (content_encoding or "").split(",")]
    names = [n for n in names if n and n != "identity"]
    if len(names) > MAX_CODINGS:
        raise CodingError(f"{len(names)} content codings (at most {MAX_CODINGS})",
                          unsupported=True)
    unknown = [n for n in names if n not in _STAGES]
    if unknown:
        raise CodingError(f"unsupported Content-Encoding {unknown[0][:40]!r}", unsupported=True)
    return [_STAGES[n] for n in reversed(names)]


def _capped(pieces: Iterable[bytes], limit: int, what: str) -> Iterator[bytes]:
    total = 0
    for piece in pieces:
        total += len(piece)
        if total > limit:
            raise BodyTooLarge(f"{what} over {limit} bytes")
        yield piece


def decode(raw: Iterable[bytes], content_encoding: str | None, limit: int) -> Iterator[bytes]:
    """The decoded body as pieces of about ``STEP`` bytes at most. Raises
    :class:`CodingError` at once for an unknown coding; while iterating,
    :class:`BodyTooLarge` when the raw body, a layer or the result passes ``limit`` bytes,
    and :class:`CodingError` for corrupt data."""
    layers = stages(content_encoding)
    stream = _capped(raw, limit, "body" if not layers else "encoded body")
    for index, stage in enumerate(layers, start=1):
        what = "decoded body" if index == len(layers) else f"decoded layer {index}"
        stream = _capped(stage(stream), limit, what)
    return stream
