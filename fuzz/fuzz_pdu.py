"""atheris target: `dul.decode_pdu` on arbitrary bytes.

    python fuzz/fuzz_pdu.py CORPUS_DIR [libFuzzer flags, e.g. -runs=1000000]

A finding is any exception other than `PduError`, and, when the bytes decode, a PDU
that does not survive `decode_pdu(encode_pdu(pdu)) == pdu` (the encoder must accept
everything the decoder gives out, and give it back unchanged).
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports():
    from dul import PduError, decode_pdu, encode_pdu


def TestOneInput(data: bytes) -> None:
    try:
        pdu = decode_pdu(data)
    except PduError:
        return
    encoded = encode_pdu(pdu)
    again = decode_pdu(encoded)
    if again != pdu:
        raise AssertionError(f"decode(encode(p)) != p\n p     = {pdu!r}\n again = {again!r}")
    if encode_pdu(again) != encoded:
        raise AssertionError("encode is not stable over a second round trip")


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
