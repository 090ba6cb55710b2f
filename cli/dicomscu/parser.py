"""dicomscu's argument parser: every option of gdcmscu's manual page, same names.

The short and long names and the defaults are gdcmscu's; options of our own are
marked "dicomscu:" in their help. `parse_intermixed_args` on this parser lets options
stand anywhere among the positionals, as getopt_long does for gdcmscu. What the
parsed options mean is decided in `cli.dicomscu.options`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.dicomscu.charset import locale_charset, locale_codeset
from dimse.limits import DEFAULT_MAX_IDENTIFIER
from dimse.models import Root

PROG = "dicomscu"
DEFAULT_CALLING_AE = "GDCMSCU"
DEFAULT_CALLED_AE = "ANY-SCP"
DEFAULT_MAX_PDU = 16384
PRIORITIES = {"low": 2, "medium": 0, "high": 1}  # C-STORE/C-FIND Priority, PS3.7 9.3.1.1


def _whole(text: str, not_a_number: str) -> int:
    """`text` as a whole number; `not_a_number` is the message when it is none."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(not_a_number) from None


def port_number(text: str) -> int:
    port = _whole(text, f"a port is a number from 1 to 65535, not {text!r}")
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, not {port}")
    return port


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a time in seconds is a number, not {text!r}") from None
    if seconds < 0 or seconds != seconds:
        raise argparse.ArgumentTypeError(f"a time in seconds is 0 (no limit) or more, not {text}")
    return seconds


def _count(text: str) -> int:
    """A whole number from 1 to 64."""
    value = _whole(text, f"{text!r} is not a whole number")
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and 64")
    return value


def _byte_count(text: str) -> int:
    value = _whole(text, f"a size is a number of bytes, not {text!r}")
    if value < 0:
        raise argparse.ArgumentTypeError(f"a size is 0 (no limit) or more bytes, not {value}")
    return value


def _max_pdu(text: str) -> int:
    size = _whole(text, f"a PDU length is a number of bytes, not {text!r}")
    if size != 0 and not 1024 <= size <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError(
            f"{size}: the maximum PDU length is 0 (no limit) or 1024 to 4294967295 bytes"
        )
    return size


def _epilog() -> str:
    return f"""\
operations:
  One operation runs (--echo when none is given). If several are given, dicomscu
  runs the first in gdcmscu's order (echo, store, find, move, get, worklist) and says
  which on stderr.

positionals:
  HOSTNAME; HOSTNAME PORT; or HOSTNAME PORT FILE... (the files replace -i; a directory
  sends the files in it, -r its subdirectories too). They take precedence over -H and -p.

output:
  C-FIND responses go to stdout, in GDCM's layout (or a DICOM JSON array with --json);
  everything else (warnings, errors, progress, -V/-D logs) goes to stderr, or to the
  -L file. Exit status: 0 success; 1 a failure (no connection, association rejected
  or aborted, a failure status, a file not sent, a key that cannot be read, an invalid
  root UID); 2 a command line that cannot run as written.

queries:
  --find, --move and --get need a model, --patientroot or --studyroot; the level is
  --study unless --patient, --series or --image is given. dicomscu adds (0008,0005)
  Specific Character Set from the locale (here {locale_codeset()}: {locale_charset()}),
  (0008,0052) Query/Retrieve Level, and the unique keys of the levels above, empty.
  A --key with the same tag replaces an added one. --queryhelp lists the keys.

C-MOVE:
  The server sends the instances to the calling AE title (--aetitle, or
  --move-destination), so it must know that AE title at this host and --port-scp.
  dicomscu listens on --port-scp and writes OUTPUT/<SOP Instance UID>.dcm. When
  something fails: try --echo first, then the same keys with --find, then --move.

environment:
  GDCM_ROOT_UID      root of the UIDs dicomscu makes (as --root-uid, which wins)
  DICOMSCU_PASSWORD  the passcode sent with --username (as --password, which wins)

examples:
  dicomscu --echo --call PACS pacs.example.org 104
  dicomscu --store -r --call PACS pacs.example.org 104 /data/study
  dicomscu --find --patientroot --patient --key 10,10="DOE*" --key 10,20 pacs 104
  dicomscu --move --studyroot --key 20,d=1.2.3.4 --port-scp 11113 -o out pacs 104
  DICOMSCU_PASSWORD=... dicomscu --echo --tls-ca ca.pem --username alice pacs 2762
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage="%(prog)s [OPTION]... [OPERATION]... HOSTNAME [PORT] [FILE]...",
        description=(
            "Execute a DICOM operation (C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET) with "
            "HOSTNAME, on port PORT (104 when not given). The options are those of "
            "GDCM's gdcmscu."
        ),
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    parser.add_argument(
        "positionals", nargs="*", metavar="HOSTNAME [PORT] [FILE]", help=argparse.SUPPRESS
    )

    peer = parser.add_argument_group("connection")
    peer.add_argument("-H", "--hostname", metavar="HOST", help="host name or address of the server")
    peer.add_argument(
        "-p", "--port", type=port_number, metavar="PORT", help="port of the server (default 104)"
    )
    peer.add_argument(
        "--aetitle",
        default=DEFAULT_CALLING_AE,
        metavar="AE",
        help="calling AE title, ours (default GDCMSCU)",
    )
    peer.add_argument(
        "--call",
        default=DEFAULT_CALLED_AE,
        metavar="AE",
        help="called AE title, the server's (default ANY-SCP)",
    )

    modes = parser.add_argument_group("operations")
    for name, text in (
        ("echo", "C-ECHO (the default when none is given)"),
        ("store", "C-STORE the files"),
        ("find", "C-FIND"),
        ("move", "C-MOVE to ourselves (or --move-destination)"),
        ("get", "C-GET"),
        ("worklist", "C-FIND in the Modality Worklist Information Model"),
    ):
        modes.add_argument(
            f"--{name}", dest="operations", action="append_const", const=name, help=text
        )

    store = parser.add_argument_group("C-STORE")
    store.add_argument(
        "-i",
        "--input",
        action="append",
        default=[],
        metavar="FILE",
        help="DICOM file or directory to send (repeatable)",
    )
    store.add_argument(
        "-r", "--recursive", action="store_true", help="send the files of subdirectories too"
    )
    store.add_argument(
        "--decompress",
        choices=("never", "lossless", "lossy"),
        default="lossless",
        help="dicomscu: decompress a file the server does not take compressed: lossless "
        "compressions only (default), lossy ones too (marked Lossy Image Compression 01), "
        "or never (as DCMTK storescu +dls/+dly)",
    )

    query = parser.add_argument_group("C-FIND, C-MOVE, C-GET")
    query.add_argument(
        "--max-identifier",
        type=_byte_count,
        default=DEFAULT_MAX_IDENTIFIER,
        metavar="BYTES",
        help="dicomscu: the longest identifier a server's response may carry; a longer one "
        f"is refused, not kept (default {DEFAULT_MAX_IDENTIFIER}, as dicomscp; 0: no limit)",
    )
    query.add_argument(
        "--patientroot",
        dest="roots",
        action="append_const",
        const=Root.PATIENT,
        help="Patient Root information model",
    )
    query.add_argument(
        "--studyroot",
        dest="roots",
        action="append_const",
        const=Root.STUDY,
        help="Study Root information model",
    )
    for level in ("patient", "study", "series", "image"):
        query.add_argument(
            f"--{level}",
            dest="levels",
            action="append_const",
            const=level.upper(),
            help=f"query on {level} level"
            + (" (the default)" if level == "study" else "")
            + (" (not with --studyroot)" if level == "patient" else ""),
        )
    query.add_argument(
        "-k",
        "--key",
        dest="keys",
        action="append",
        default=[],
        metavar="GGGG,EEEE[=VALUE]",
        help='a key: 10,10="DOE*" matches, 10,20= (or 10,20) asks for the value; a key inside '
        "a sequence: 40,100[0].40,1=AA32 (the item is always [0]; it nests), and 40,100= asks "
        "for the whole sequence; --worklist puts the Scheduled Procedure Step's keys (40,1=AA32) "
        "in its sequence by itself; values are checked against their VR (dates YYYYMMDD, ranges "
        "A-B; * and ? only in text VRs); no wildcards for C-MOVE/C-GET; see --queryhelp",
    )
    query.add_argument(
        "--store-query", type=Path, metavar="FILE", help="write the query (a DICOM file) to FILE"
    )
    query.add_argument(
        "--queryhelp",
        action="store_true",
        help="list the keys of each level of each model, and exit",
    )
    query.add_argument(
        "--json", action="store_true", help="dicomscu: print C-FIND responses as a DICOM JSON array"
    )

    retrieve = parser.add_argument_group("C-MOVE, C-GET")
    retrieve.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="DIR",
        help="directory for the instances received (default: the current one; created if missing)",
    )
    retrieve.add_argument(
        "--port-scp",
        type=port_number,
        metavar="PORT",
        help="port we listen on for the C-MOVE's C-STORE sub-operations",
    )
    retrieve.add_argument(
        "--move-destination",
        metavar="AE",
        help="dicomscu: C-MOVE to this AE title instead of ourselves (no local listener)",
    )
    retrieve.add_argument(
        "--accept",
        choices=("any", "uncompressed"),
        default="any",
        help="dicomscu: transfer syntaxes we take the instances in: any we know, kept as "
        "they come (default), or uncompressed only (the server must decompress)",
    )

    network = parser.add_argument_group("network (dicomscu)")
    network.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="connect, association and DIMSE timeouts at once (0: none)",
    )
    network.add_argument(
        "--connect-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="TCP connect timeout (default 30)",
    )
    network.add_argument(
        "--acse-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="association request and release timeout (default 30)",
    )
    network.add_argument(
        "--dimse-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="timeout waiting for each DIMSE message (default 60)",
    )
    network.add_argument(
        "--max-pdu",
        type=_max_pdu,
        default=DEFAULT_MAX_PDU,
        metavar="BYTES",
        help="maximum PDU length we receive (default 16384, 0: no limit)",
    )
    network.add_argument(
        "--priority",
        choices=sorted(PRIORITIES),
        default="low",
        help="priority of the requests (default low, as gdcmscu)",
    )
    network.add_argument(
        "--async",
        dest="async_window",
        type=_count,
        default=None,
        metavar="N",
        help="--store: propose an asynchronous operations window of N (PS3.7 D.3.3.3) "
        "and keep up to what the server grants outstanding (default: none, as gdcmscu)",
    )
    network.add_argument(
        "--associations",
        type=_count,
        default=1,
        metavar="N",
        help="--store: send the files over N associations at once (default 1)",
    )

    security = parser.add_argument_group("security (dicomscu)")
    security.add_argument(
        "--tls",
        action="store_true",
        help="TLS 1.2 or newer (PS3.15 B.9); the port is then 2762 when not given. "
        "Any --tls-* option implies --tls",
    )
    security.add_argument(
        "--tls-ca", type=Path, metavar="FILE", help="CA certificate(s) that sign the server's (PEM)"
    )
    security.add_argument(
        "--tls-cert", type=Path, metavar="FILE", help="our certificate, for mutual TLS (PEM)"
    )
    security.add_argument(
        "--tls-key", type=Path, metavar="FILE", help="our private key (PEM, no password)"
    )
    security.add_argument(
        "--tls-no-verify",
        action="store_true",
        help="accept any server certificate (no protection against a man in the middle)",
    )
    security.add_argument(
        "--username", metavar="NAME", help="user identity (PS3.7 D.3.3.7): a username"
    )
    security.add_argument(
        "--password",
        metavar="TEXT",
        help="with --username: a passcode (better: the environment variable "
        "DICOMSCU_PASSWORD, which other users cannot see); use it with --tls",
    )
    security.add_argument(
        "--token-file", type=Path, metavar="FILE", help="user identity: a token read from FILE"
    )
    security.add_argument(
        "--token-type",
        choices=("jwt", "saml", "kerberos"),
        default="jwt",
        help="what --token-file holds (default jwt)",
    )
    security.add_argument(
        "--identity-response",
        action="store_true",
        help="ask the server to confirm the user identity, and fail if it does not",
    )

    general = parser.add_argument_group("general")
    general.add_argument(
        "--root-uid",
        metavar="UID",
        help="root of the UIDs dicomscu makes (default: $GDCM_ROOT_UID, else 2.25)",
    )
    general.add_argument(
        "-V",
        "--verbose",
        action="store_true",
        help="more verbose (warnings and errors, and what is done)",
    )
    general.add_argument("-W", "--warning", action="store_true", help="print warnings")
    general.add_argument("-E", "--error", action="store_true", help="print errors")
    general.add_argument(
        "-D",
        "--debug",
        action="store_true",
        help="print debug information: every PDU and state transition",
    )
    general.add_argument(
        "-L",
        "--log-file",
        type=Path,
        metavar="FILE",
        help="write the log to FILE instead of stderr",
    )
    general.add_argument(
        "--dump-pdus",
        type=Path,
        metavar="FILE",
        help="dicomscu: write every PDU of the association(s) we open, both ways, with its "
        "time, to FILE (binary, documented in dul/explain.py); print it with "
        "'python -m dimse.explain FILE'. FILE holds the bytes as sent: a --password is in "
        "it, readable (the printout never shows it); keep FILE as you would the password",
    )
    general.add_argument("-h", "--help", action="help", help="print this help and exit")
    general.add_argument("-v", "--version", action="store_true", help="print the version and exit")
    return parser
