"""UIDs that dicomscu makes, and the root they grow from (`--root-uid`, GDCM_ROOT_UID).

The only UID the tool makes today is the SOP Instance UID in the file meta of a
`--store-query` file. Without a root it is a UUID-derived UID under 2.25 (PS3.5
B.2), which needs no registration; with one it is the root, a period and random
digits up to the 64 characters PS3.5 9.1 allows.
"""

from __future__ import annotations

import os
import re

ENVIRONMENT_VARIABLE = "GDCM_ROOT_UID"

#: The longest root we accept: the rest of the 64 characters must hold enough random
#: digits (15 or more) for the UIDs made from it to be unique.
MAX_ROOT_LENGTH = 48

_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


class InvalidRootUID(ValueError):
    """The root given is not a UID that other UIDs can be made from."""

    def __init__(self, root: str, why: str) -> None:
        super().__init__(f"specified Root UID is not valid: {root} ({why})")
        self.root = root


def check_root(root: str) -> str:
    """`root` if it can be the root of generated UIDs; else InvalidRootUID."""
    if not _UID.fullmatch(root):
        raise InvalidRootUID(
            root,
            "a UID is numbers separated by periods, with no leading zero in a number "
            "and no period at either end, e.g. 1.2.826.0.1.3680043.2.1125 (PS3.5 9.1)",
        )
    if len(root) > MAX_ROOT_LENGTH:
        raise InvalidRootUID(
            root,
            f"it has {len(root)} characters; a root may have at most {MAX_ROOT_LENGTH}, "
            "so that the UIDs made from it stay within 64 with enough random digits",
        )
    return root


def choose_root(option: str | None, environ: dict[str, str] | None = None) -> str | None:
    """The root UID in force: --root-uid, else $GDCM_ROOT_UID, else None; checked."""
    environment = os.environ if environ is None else environ
    root = option if option is not None else environment.get(ENVIRONMENT_VARIABLE)
    return None if root is None else check_root(root)


def make_uid(root: str | None) -> str:
    """A new UID under `root` (None: under 2.25, from a random UUID)."""
    from pydicom.uid import generate_uid  # not at import: dicomscu checks the root on every run

    return generate_uid(prefix=None if root is None else root + ".")
