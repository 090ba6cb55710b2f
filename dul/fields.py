"""What the items of the association PDUs are built from (PS3.8 9.3.1-9.3.4, Annex D;
PS3.7 D.3.3): the item header, text and length-prefixed fields, the item kept raw,
and the codec that pairs an item class with its value's decoder and encoder.

Every item and sub-item starts with the same 4-byte header:

    item-type (1) | reserved (1) | item-length (2, big endian) | value

Text fields (UIDs, names) are decoded as Latin-1, which cannot fail, and kept exactly
as received, padding included, so that `encode(decode(b)) == b`. Whoever compares a
UID strips the padding (`uid_text`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeAlias, TypeVar

from dul.errors import AbortReason, PduError

#: Bytes as the codecs read them: a received buffer is never copied to be parsed.
Buffer: TypeAlias = bytes | bytearray | memoryview

ITEM_HEADER = struct.Struct(">BBH")
_U16 = struct.Struct(">H")


class Typed(Protocol):
    """An item class of PS3.8 or PS3.7 D.3.3: it knows its item-type."""

    ITEM_TYPE: ClassVar[int]


_T = TypeVar("_T", bound=Typed)


@dataclass(frozen=True, slots=True)
class RawItem:
    """An item whose type is not known where it was found: kept to be logged and
    re-encoded unchanged; the negotiation ignores it (PS3.8 9.3.1: unknown items are
    skipped)."""

    item_type: int
    value: bytes

    def __repr__(self) -> str:  # its bytes may be a misplaced passcode: never print them
        return f"RawItem(item_type=0x{self.item_type:02X}, value=<{len(self.value)} bytes>)"


def uid_text(raw: str) -> str:
    """A UID as compared: without the NUL or space padding some peers add."""
    return raw.rstrip("\x00 ")


def text_of(data: Buffer) -> str:
    """A text field as received (Latin-1: every byte is a character)."""
    return bytes(data).decode("latin-1")


def text_bytes(text: str, what: str) -> bytes:
    """A text field to send; ValueError naming `what` when it is not Latin-1."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{what} {text!r} has characters outside Latin-1") from None


def invalid(what: str) -> PduError:
    """The error for a received item that breaks PS3.8 (A-ABORT reason 6)."""
    return PduError(AbortReason.INVALID_PDU_PARAMETER_VALUE, what)


def get_field(value: Buffer, offset: int, what: str) -> tuple[bytes, int]:
    """A field with a 16-bit length before it (the UIDs of PS3.7 D.3.3.4-D.3.3.7):
    (its bytes, the offset after it)."""
    if offset + 2 > len(value):
        raise invalid(f"{what} length is cut short")
    length = _U16.unpack_from(value, offset)[0]
    offset += 2
    end = offset + length
    if end > len(value):
        raise invalid(
            f"{what} length {length} runs past its sub-item ({len(value) - offset} bytes left)"
        )
    return bytes(value[offset:end]), end


def put_field(data: bytes, what: str) -> bytes:
    """`data` with its 16-bit length before it."""
    if len(data) > 0xFFFF:
        raise ValueError(f"{what} is {len(data)} bytes; at most 65535 fit")
    return _U16.pack(len(data)) + data


@dataclass(frozen=True, slots=True)
class Codec(Generic[_T]):
    """An item class with the decoder and the encoder of its value (the bytes after
    the item header)."""

    cls: type[_T]
    decode: Callable[[Buffer], _T]
    encode: Callable[[_T], bytes]

    @property
    def item_type(self) -> int:
        return self.cls.ITEM_TYPE


#: A codec of any item class, as the registries hold them.
AnyCodec: TypeAlias = Codec[Any]
