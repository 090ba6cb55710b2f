"""atheris target: `dul.framing.Framer` on an arbitrary stream cut in arbitrary chunks.

    python fuzz/fuzz_framing.py CORPUS_DIR [libFuzzer flags]

Input layout: `k | k chunk-size bytes | stream`. The stream is fed in chunks whose
sizes cycle through the k sizes (a size byte 0 means 256; k = 0 feeds it whole), and
after every chunk `next_pdu()` is drained until it returns None or raises.

A finding is any exception other than `PduError`; a framer that does not stay spent
after an error (it must raise again and hold no bytes); or a chunking whose PDUs, or
whose error reason, differ from those of the same stream fed in one piece.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports():
    from dul import PduError
    from dul.framing import Framer

MAX_PDATA = 16384
MAX_ASSOCIATION = 1 << 16


def frame(stream: bytes, sizes: list[int]) -> tuple[list[object], int | None]:
    """The PDUs the framer gives out, and the error reason it ends on (or None)."""
    framer = Framer(MAX_PDATA, MAX_ASSOCIATION)
    pdus: list[object] = []
    offset = 0
    turn = 0
    while offset < len(stream):
        size = sizes[turn % len(sizes)] if sizes else len(stream)
        turn += 1
        framer.feed(stream[offset : offset + size])
        offset += size
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
            framer.feed(b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00")
            if framer.buffered != 0:
                raise AssertionError(f"a spent framer holds {framer.buffered} bytes") from exc
            return pdus, int(exc.reason)
    if framer.buffered > len(stream):
        raise AssertionError("the framer holds more bytes than it was fed")
    return pdus, None


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    k = data[0] % 16
    sizes = [b or 256 for b in data[1 : 1 + k]]
    stream = data[1 + k :]
    chunked = frame(stream, sizes)
    whole = frame(stream, [])
    if chunked != whole:
        raise AssertionError(f"chunks {sizes} frame differently from the whole stream")


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
