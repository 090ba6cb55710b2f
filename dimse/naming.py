"""File names for received instances, derived only from validated UIDs.

A UID that arrives over the network is text from a stranger: `../../etc/passwd`,
`/tmp/x` and `a;b` have all been sent as SOP Instance UIDs to DICOM servers. A name
is made from a UID only when it is a valid UID (PS3.5 9.1: at most 64 characters,
numeric components separated by periods, no leading zero in a component of more
than one digit); otherwise from a hash of it, which cannot name anything outside
the directory either.
"""

from __future__ import annotations

import re

_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


def is_valid_uid(text: str) -> bool:
    """Whether `text` is a UID of PS3.5 9.1 (padding already removed)."""
    return 0 < len(text) <= 64 and _UID.fullmatch(text) is not None


def instance_file_name(sop_instance_uid: str) -> str:
    """`<UID>.dcm` for a valid UID, else `invalid-uid-<sha256 prefix>.dcm`."""
    uid = sop_instance_uid.rstrip("\x00 ")
    if is_valid_uid(uid):
        return f"{uid}.dcm"
    import hashlib  # only for an invalid UID: not worth its import at every start

    digest = hashlib.sha256(sop_instance_uid.encode("utf-8", "surrogateescape")).hexdigest()
    return f"invalid-uid-{digest[:32]}.dcm"
