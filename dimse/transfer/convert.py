"""Sending an instance in a transfer syntax the peer accepted (PS3.4 B.4.1, PS3.5 A).

A storage SCU may send an instance in another syntax than it holds it in, provided
nothing of it changes (or, for lossy compression, the user allowed it). `choose`
picks the syntax among those the peer accepted for the instance's SOP class:

1. the instance's own syntax, when accepted: it goes as it is (recoded only if its
   bytes are in the other VR form than its syntax says, `Part10Info.encoding`);
2. else, for uncompressed or deflated data: Explicit VR Little Endian, Implicit VR
   Little Endian, Deflated Explicit VR Little Endian, Explicit VR Big Endian, the
   first accepted. Deflate <-> uncompressed and the byte orders are exact (`recode`);
3. else, for compressed data: the same list, if `Decompress` allows it: `LOSSLESS`
   (the default) decompresses the lossless syntaxes, `LOSSY` all, `NEVER` none;
4. else `Unconvertible`, whose message says what the peer accepted and what to do.
   We do not compress: a peer that takes only compressed syntaxes gets compressed
   instances as they are, or none.

`convert` then writes the data set in the chosen syntax to a spool (memory, then a
temporary file in `spool_dir` past `SPOOL_IN_MEMORY` bytes) for the sender to stream.
"""

from __future__ import annotations

import enum
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dimse.datasets import inflate
from dimse.errors import DimseError
from dimse.files import Part10Info, mapped
from dimse.transfer.pixels import CannotDecompress, decoder_available, decompress
from dimse.transfer.recode import Encoding, recode, recode_bytes
from dimse.transfer.syntaxes import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    TransferSyntax,
    lookup,
    name_of,
)
from dimse.transfer.walk import MalformedDataSet

#: Uncompressed targets, best first (a deflated data set must be inflated to be read).
TARGETS = (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
)
#: A converted data set is kept in memory up to this size, then in a temporary file.
SPOOL_IN_MEMORY = 16 << 20
_EXPLICIT_LE = Encoding(implicit=False, little=True)


class Decompress(enum.Enum):
    """Which compressed instances may be decompressed for a peer (DCMTK's +dls/+dly)."""

    NEVER = "never"
    LOSSLESS = "lossless"
    LOSSY = "lossy"


class Unconvertible(Exception):
    """The instance cannot go in any syntax the peer accepted; `str()` says why, and
    `brief` in a few words (an Error Comment holds 64 characters)."""

    def __init__(self, reason: str, brief: str = "") -> None:
        super().__init__(reason)
        self.brief = brief or reason


def _encoding(syntax: TransferSyntax) -> Encoding:
    return Encoding(syntax.implicit, syntax.little)


def decompression_refused(syntax: TransferSyntax, policy: Decompress) -> str | None:
    """None when `policy` allows decompressing `syntax` and a decoder is installed."""
    if policy is Decompress.NEVER:
        return "decompression is off (--decompress never)"
    if syntax.lossy and policy is not Decompress.LOSSY:
        return (
            f"{syntax.name} may be lossy, and decompressing it needs leave "
            '(dicomscu --decompress lossy; dicomscp decompress = "lossy")'
        )
    return decoder_available(syntax)


def choose(
    source: str, encoding: str, accepted: Sequence[str], policy: Decompress = Decompress.LOSSLESS
) -> str:
    """The syntax to send an instance held in `source` in, among `accepted` (the
    syntaxes of the peer's accepted contexts for its SOP class); `Unconvertible`."""
    syntax = lookup(source)
    if syntax is None:
        raise Unconvertible(
            f"its transfer syntax {source} is not one we know", "unknown transfer syntax"
        )
    if source in accepted:
        return source
    targets = [uid for uid in TARGETS if uid in accepted]
    offered = ", ".join(name_of(uid) for uid in accepted) or "nothing"
    if not targets:
        raise Unconvertible(
            f"it is {name_of(source)}, and the peer accepted its SOP class only in {offered}; "
            "we convert to uncompressed syntaxes and do not compress",
            f"{syntax.name} not accepted, and we do not compress",
        )
    if syntax.encapsulated:
        refused = decompression_refused(syntax, policy)
        if refused is not None:
            raise Unconvertible(
                f"it is {name_of(source)}, the peer accepted its SOP class only in {offered}, "
                f"and {refused}",
                f"{syntax.name} not accepted; "
                + (
                    "lossy, not decompressed"
                    if syntax.lossy and policy is not Decompress.NEVER
                    else "not decompressed"
                ),
            )
    del encoding  # any uncompressed encoding converts to any other
    return targets[0]


@dataclass
class Converted:
    """A converted data set: `length` bytes to read from `stream` (then `close`)."""

    stream: tempfile.SpooledTemporaryFile[bytes]
    length: int

    def close(self) -> None:
        self.stream.close()


def _odd_deflate(info: Part10Info) -> bool:
    syntax = lookup(info.transfer_syntax)
    return syntax is not None and syntax.deflated and info.dataset_length % 2 == 1


def needs_conversion(info: Part10Info, target: str) -> bool:
    """Whether the file's data set cannot go as it is in `target`: another syntax, its
    bytes in the other VR form, or a deflated data set of odd length (DCMTK, and so
    Orthanc, abort on a data fragment of odd length: every data set is of even length
    but a deflated one, which is padded with a zero byte that inflating ignores)."""
    return target != info.transfer_syntax or bool(info.encoding) or _odd_deflate(info)


def _write_converted(
    data: bytes | memoryview,
    source: TransferSyntax,
    encoding: str,
    goal: TransferSyntax,
    write: Callable[[bytes | bytearray | memoryview], object],
) -> None:
    if source.deflated and goal.uid != source.uid:
        data = inflate(bytes(data))
    own = lookup(encoding) if encoding else source
    assert own is not None
    current = _encoding(own)
    if goal.uid == source.uid and not encoding:  # as it is (a deflated one to be padded)
        write(data)
        return
    if source.encapsulated:
        if goal.uid == source.uid:  # the same syntax, its VR form put right
            recode(data, current, _EXPLICIT_LE, write)
            return
        if current != _EXPLICIT_LE:
            data = recode_bytes(data, current, _EXPLICIT_LE)
        data = decompress(bytes(data), source).data
        current = _EXPLICIT_LE
    target = _encoding(goal)
    if goal.deflated:
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
        sink = write

        def write(chunk: bytes | bytearray | memoryview) -> object:
            return sink(compressor.compress(chunk))

        _recode_or_copy(data, current, target, write)
        sink(compressor.flush())
        return
    _recode_or_copy(data, current, target, write)


def _recode_or_copy(
    data: bytes | memoryview,
    source: Encoding,
    target: Encoding,
    write: Callable[[bytes | bytearray | memoryview], object],
) -> None:
    if source == target:
        write(data)
    else:
        recode(data, source, target, write)


def convert_bytes(data: bytes, source: str, target: str) -> bytes:
    """A data set held in memory, from `source` to `target` (a choice of `choose`)."""
    have, goal = lookup(source), lookup(target)
    if have is None or goal is None:
        raise Unconvertible(f"no conversion from {source} to {target}")
    parts: list[bytes] = []
    try:
        _write_converted(data, have, "", goal, lambda chunk: parts.append(bytes(chunk)))
    except (MalformedDataSet, CannotDecompress, DimseError) as exc:
        raise Unconvertible(f"cannot be converted from {have.name} to {goal.name}: {exc}") from None
    if goal.deflated and sum(map(len, parts)) % 2:
        parts.append(b"\x00")  # see needs_conversion
    return b"".join(parts)


def convert(info: Part10Info, target: str, *, spool_dir: Path | None = None) -> Converted:
    """The data set of `info`'s file in `target` (a choice of `choose`); raises
    `Unconvertible` naming the file and the reason."""
    source, goal = lookup(info.transfer_syntax), lookup(target)
    if source is None or goal is None:
        raise Unconvertible(f"{info.path}: no conversion from {info.transfer_syntax} to {target}")
    spool = tempfile.SpooledTemporaryFile(
        max_size=SPOOL_IN_MEMORY, dir=None if spool_dir is None else str(spool_dir)
    )
    try:
        with mapped(info.path, info.dataset_offset) as data:
            _write_converted(data, source, info.encoding, goal, spool.write)
        if goal.deflated and spool.tell() % 2:
            spool.write(b"\x00")
        length = spool.tell()
        spool.seek(0)
    except (MalformedDataSet, CannotDecompress, DimseError) as exc:
        spool.close()
        raise Unconvertible(
            f"{info.path}: cannot be converted from {source.name} to {goal.name}: {exc}"
        ) from None
    except BaseException:
        spool.close()
        raise
    return Converted(spool, length)
