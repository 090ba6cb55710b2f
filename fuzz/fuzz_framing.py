"""atheris target: `dul.framing.Framer` on an arbitrary stream cut in arbitrary chunks.

    python fuzz/fuzz_framing.py CORPUS_DIR [libFuzzer flags]

Input layout: `k | k chunk-size bytes | stream`, k = first byte % 32. The stream is
fed as k chunks of those sizes (0 feeds an empty chunk), then whatever is left in
one piece; after every chunk `next_pdu()` is drained until it returns None or
raises. So at most 32 feeds per input, each cut placed by its own byte: the fuzzer
moves one cut without moving the others, and the work per input stays bounded.
(The first version cycled through the sizes over the whole stream: a size of 1 cost
one feed and one `next_pdu` per byte, and ran at 300-400 inputs/s.)

A finding is any exception other than `PduError`; a framer that does not stay spent
after an error (it must raise again and hold no bytes); or a chunking whose PDUs, or
whose error reason, differ from those of the same stream fed in one piece.

The framer's `decode_pdu` is wrapped in a cache that lives for one input: the whole
stream's framing then decodes nothing that the chunked one decoded already (what
`decode_pdu` does with bytes is `fuzz_pdu.py`'s business), and the two lists of PDUs
compare mostly by identity. Decoding twice was half of the time per input.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Only the framer is instrumented: the PDU codec it calls is fuzz_pdu.py's business.
with atheris.instrument_imports(
    include=["dul"],
    exclude=["dul.pdu", "dul.pdata", "dul.items", "dul.user_information", "dul.fields"],
):
    import dul.framing
    from dul import PduError
    from dul.framing import Framer
    from dul.pdu import decode_pdu

MAX_PDATA = 16384
MAX_ASSOCIATION = 1 << 16
MAX_CUTS = 32
_NOTHING = b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00"


_decoded: dict[bytes, object] = {}


def _decode_once(raw: bytes) -> object:
    """`decode_pdu`, remembered for the current input (a PduError raised anew)."""
    result = _decoded.get(raw)
    if result is None:
        try:
            result = decode_pdu(raw)
        except PduError as exc:
            result = exc
        _decoded[raw] = result
    if isinstance(result, PduError):
        raise PduError(result.reason, result.message)
    return result


dul.framing.decode_pdu = _decode_once  # type: ignore[assignment,attr-defined]


def frame(chunks: list[bytes]) -> tuple[list[object], int | None]:
    """The PDUs the framer gives out, and the error reason it ends on (or None)."""
    framer = Framer(MAX_PDATA, MAX_ASSOCIATION)
    pdus: list[object] = []
    fed = 0
    for chunk in chunks:
        framer.feed(chunk)
        fed += len(chunk)
        try:
            while (pdu := framer.next_pdu()) is not None:
                pdus.append(pdu)
        except PduError as exc:
            for again in (framer.next_pdu, framer.next_raw):
                try:
                    again()
                except PduError as exc2:
                    if exc2.reason != exc.reason:
                        raise AssertionError("a spent framer changed its error") from exc2
                else:
                    raise AssertionError("a framer gave out data after an error") from exc
            framer.feed(_NOTHING)
            if framer.buffered != 0:
                raise AssertionError(f"a spent framer holds {framer.buffered} bytes") from exc
            return pdus, int(exc.reason)
    if framer.buffered > fed:
        raise AssertionError("the framer holds more bytes than it was fed")
    return pdus, None


def cut(data: bytes) -> tuple[list[bytes], bytes]:
    """(the chunks, the whole stream) of an input."""
    if not data:
        return [], b""
    k = data[0] % MAX_CUTS
    sizes = data[1 : 1 + k]
    stream = data[1 + k :]
    chunks = []
    offset = 0
    for size in sizes:
        chunks.append(stream[offset : offset + size])
        offset += size
    if offset < len(stream):
        chunks.append(stream[offset:])
    return chunks, stream


def TestOneInput(data: bytes) -> None:
    chunks, stream = cut(data)
    if not stream:
        return
    _decoded.clear()
    chunked = frame(chunks)
    if len(chunks) == 1:
        return  # the whole stream in one piece: nothing to compare with
    whole = frame([stream])
    if chunked != whole:
        raise AssertionError(
            f"chunks of {[len(c) for c in chunks]} frame differently from the whole stream"
        )


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
