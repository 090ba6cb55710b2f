"""Mutation check of the robustness tests: each case of docs/robustness.md (1-58) must have
a test that fails when the protection it checks is removed.

`MUTATIONS` below is the data: for each case, one or more mutations of the library
(dul/, dimse/, cli/), each removing or weakening one protection (a length check, a
limit, a timeout, a refusal, a sanitizer) the way a plausible bug would, and the
tests that must notice. For each mutation the script

1. checks that its `old` text occurs exactly once in its file;
2. writes the mutated file (keeping a copy of the original next to it, named
   `<file>.mutation-backup`, until it is restored);
3. runs the tests in a subprocess (`pytest -x`, each test limited to --test-timeout
   seconds by pytest-timeout, the whole run to --run-timeout seconds);
4. restores the original file, always: on success, failure, Ctrl-C or SIGTERM. A
   backup left by a script that was killed (SIGKILL) is restored at the next start.

A mutation is KILLED when a test fails or hangs, SURVIVED when every test passes: a
protection that no test checks. Before any mutation, the unmutated tests are run
once; they must pass.

Run it from anywhere, with the interpreter that runs the tests:

    python scripts/mutation_check.py                      # every case (about 8 min)
    python scripts/mutation_check.py --case 7 --case 18   # some cases
    python scripts/mutation_check.py --list               # the mutations, nothing run

It prints one line per mutation as it goes (case, KILLED or SURVIVED, the mutation,
the test that failed and why), then one line per case. Exit status: 0 when every
mutation was killed, 1 when one survived, 2 when the check itself could not be made
(the unmutated tests fail, a mutation no longer applies to the source, or a mutated
module does not even load).

When the library changes, a mutation whose `old` text is gone stops the run before
anything is mutated (exit 2): update its `old` and `new` to the new source.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

REPOSITORY = Path(__file__).resolve().parent.parent
BACKUP_SUFFIX = ".mutation-backup"
LIBRARY_DIRS = ("dul", "dimse", "cli")

PDU = "tests/test_robustness_pdu.py::"
ROUND2 = "tests/test_robustness_round2.py::"
FIDELITY = "tests/test_fidelity_cases.py::"
COMMANDS = "tests/test_dimse_commands.py::"
DIMSE = "tests/test_robustness_dimse.py::"
SHARED = "tests/test_archive_shared.py::"
STORAGE = "tests/test_robustness_storage.py::"
ENGINE = "tests/test_engine.py::"
SERVICES = "tests/test_engine_services.py::"
TIMEOUTS = "tests/test_engine_timeouts.py::"
WORKERS = "tests/test_dicomscp_workers.py::"


@dataclass(frozen=True)
class Mutation:
    """Replace `old` (exactly once in `file`) by `new`; one of `tests` must then fail."""

    case: int
    file: str
    old: str
    new: str
    tests: Sequence[str]
    what: str = ""  # what the mutation removes, for the report


# One line each, for the report: the cases of docs/robustness.md.
CASES = {
    1: "silent connection closed at ARTIM",
    2: "hundreds of silent connections",
    3: "trickled A-ASSOCIATE-RQ, read deadline",
    4: "unknown PDU type: abort reason 1",
    5: "huge A-ASSOCIATE-RQ refused from header",
    6: "P-DATA-TF over our maximum: reason 6",
    7: "PDU cut short by end of stream",
    8: "item length past its parent",
    9: "unknown items skipped",
    10: "nonzero reserved bytes ignored",
    11: "protocol version without bit 0",
    12: "context ID 0, even or repeated",
    13: "more than 128 presentation contexts",
    14: "malformed contexts and sub-items",
    15: "hostile calling AE titles",
    16: "AE titles not allowed: RJ 1-1-3, 1-1-7",
    17: "over the association limit: RJ 2-3-2",
    18: "P-DATA-TF PDVs that do not fill the PDU",
    19: "PDV length near 2^32",
    20: "PDV on a wrong context",
    21: "fragments out of order",
    22: "command set without group length",
    23: "command element past the bytes left",
    24: "unknown command, contradicting data set type",
    25: "every fragment size reassembles",
    26: "sequences nested 1,000 deep",
    27: "deflate bomb refused at the cap",
    28: "data set UIDs differ from the command",
    29: "SOP Instance UIDs that are paths",
    30: "disk full: A700, nothing left behind",
    31: "server killed in the middle of a write",
    32: "same SOP Instance UID twice",
    33: "C-MOVE to unknown AE, or by a stranger",
    34: "C-MOVE destination that hangs",
    35: "C-CANCEL during C-FIND and C-MOVE",
    36: "release collision",
    37: "P-DATA after our A-RELEASE-RQ",
    38: "peer that never closes: ARTIM",
    39: "peer that stops reading our C-STORE",
    40: "malicious C-GET/C-MOVE answer with paths",
    41: "received data set checked before success",
    42: "file to send checked to its end",
    43: "peer's stray command element tolerated",
    44: "odd deflated data set padded",
    47: "descriptors exhausted: accept backs off",
    48: "idle connections capped and cheap",
    49: "identifier over the limit refused",
    51: "malformed response identifier reported",
    52: "DIMSE timeout bounds our own response",
    53: "unreadable folder said",
    54: "full output folder said",
    56: "a killed worker started again, nothing lost",
    57: "workers storing one UID take turns",
    58: "a node that never returns: its leftovers finished",
}

# fmt: off
MUTATIONS: tuple[Mutation, ...] = (
    # --- 1-3: silence and slowness
    Mutation(
        1, "dul/actions.py",
        "    return Step(State.Sta2, (), Timer.START)",
        "    return Step(State.Sta2, ())  # MUTATION: AE-5 does not start ARTIM",
        [PDU + "test_01_a_silent_connection_is_closed_when_artim_expires"],
        "AE-5 starts no ARTIM timer",
    ),
    Mutation(
        2, "dul/drivers/server.py",
        "        peer = address_text(address[0], address[1])\n        now = time.monotonic()\n",
        "        peer = address_text(address[0], address[1])\n"
        "        now = time.monotonic()\n"
        "        self.admission.active += 1  # MUTATION: every TCP connection takes a place\n",
        [PDU + "test_02_hundreds_of_silent_connections_leave_room_for_a_normal_one"],
        "the association limit counts TCP connections",
    ),
    Mutation(
        3, "dul/machine.py",
        "        self.framer.feed(data)\n        return self.receive_pending(now)",
        "        self.framer.feed(data)\n"
        "        if self.state is State.Sta2:  # MUTATION: each byte received restarts ARTIM\n"
        "            self._artim_deadline = now + self.artim_timeout\n"
        "        return self.receive_pending(now)",
        [PDU + "test_03_a_trickled_request_is_closed_at_the_read_deadline"],
        "bytes arriving restart ARTIM (an idle timeout, no deadline)",
    ),
    # --- 4-8: PDU headers and lengths
    Mutation(
        4, "dul/framing.py",
        "        if name is None:\n            raise PduError(",
        "        if False:  # MUTATION: any PDU-type\n            raise PduError(",
        [PDU + "test_04_an_unknown_pdu_type_is_aborted_reason_1"],
        "Framer: no PDU-type check",
    ),
    Mutation(
        5, "dul/framing.py",
        "            if length > self.max_association_length:",
        "            if False:  # MUTATION: no cap on an association PDU",
        [PDU + "test_05_a_huge_a_associate_rq_is_refused_from_its_header"],
        "Framer: no cap on the A-ASSOCIATE-RQ length",
    ),
    Mutation(
        5, "dul/drivers/server.py",
        "            max_association_length=self.max_association_length,\n"
        "            name=f\"acceptor {peer}\",\n",
        "            name=f\"acceptor {peer}\",\n",
        [PDU + "test_05_the_association_pdu_cap_is_configurable"],
        "Server ignores its max_association_length",
    ),
    Mutation(
        6, "dul/framing.py",
        "            if length > self.max_pdata_length:",
        "            if False:  # MUTATION: any P-DATA-TF length",
        [PDU + "test_06_a_p_data_tf_over_our_maximum_is_aborted_reason_6"],
        "Framer: no check against our Maximum Length",
    ),
    Mutation(
        7, "dul/drivers/sockets.py",
        "        if count == 0:\n            self._close_socket()",
        "        if False:  # MUTATION: recv() == 0 (end of stream) not noticed\n"
        "            self._close_socket()",
        [PDU + "test_07_a_pdu_cut_short_by_the_end_of_the_stream_is_a_clean_teardown"],
        "end of stream not turned into Evt17",
    ),
    Mutation(
        8, "dul/items.py",
        "        if stop > end:\n            raise invalid(",
        "        if False:  # MUTATION: an item may run past its parent\n            raise invalid(",
        [PDU + "test_08_an_item_length_past_its_parent_is_aborted"],
        "iter_items: no bound on an item's length",
    ),
    Mutation(
        8, "dul/items.py",
        "    if len(value) < 4:\n        raise invalid(f\"Presentation Context Item (20H)",
        "    if False:  # MUTATION\n        raise invalid(f\"Presentation Context Item (20H)",
        [PDU + "test_08_a_presentation_context_shorter_than_its_fixed_fields_is_aborted"],
        "presentation context shorter than its fixed fields",
    ),
    # --- 9-14: the content of the A-ASSOCIATE-RQ
    Mutation(
        9, "dul/items.py",
        "        else:\n            items.append(RawItem(item_type, bytes(value)))",
        "        else:  # MUTATION: an unknown item is an error\n"
        "            raise invalid(f\"{parent}: unknown item type {item_type:02X}H\")",
        [PDU + "test_09_unknown_items_are_skipped_and_the_association_succeeds"],
        "unknown items refused instead of skipped",
    ),
    Mutation(
        10, "dul/pdu.py",
        "    pdu_type, _, length = HEADER.unpack_from(view, 0)\n",
        "    pdu_type, reserved, length = HEADER.unpack_from(view, 0)\n"
        "    if reserved:  # MUTATION: the reserved byte is checked\n"
        "        raise PduError(AbortReason.INVALID_PDU_PARAMETER_VALUE, \"reserved byte set\")\n",
        [PDU + "test_10_nonzero_reserved_bytes_are_ignored"],
        "PDU header's reserved byte checked",
    ),
    Mutation(
        10, "dul/items.py",
        "        item_type, _reserved, length = ITEM_HEADER.unpack_from(data, offset)\n",
        "        item_type, _reserved, length = ITEM_HEADER.unpack_from(data, offset)\n"
        "        if _reserved:  # MUTATION: the reserved byte is checked\n"
        "            raise invalid(\"reserved byte set\")\n",
        [PDU + "test_10_nonzero_reserved_bytes_are_ignored"],
        "item header's reserved byte checked",
    ),
    Mutation(
        11, "dul/machine.py",
        "    if request.protocol_version & 1:",
        "    if True:  # MUTATION: any protocol version",
        [PDU + "test_11_a_protocol_version_without_bit_0_is_rejected"],
        "protocol version not checked",
    ),
    Mutation(
        12, "dul/negotiation.py",
        "    if pc.context_id == 0 or pc.context_id % 2 == 0:",
        "    if False:  # MUTATION: any context ID",
        [PDU + "test_12_presentation_context_ids_zero_even_or_repeated"],
        "context IDs 0 and even accepted",
    ),
    Mutation(
        12, "dul/negotiation.py",
        "        if pc.context_id in seen:\n            continue",
        "        if False:  # MUTATION: a repeated ID is answered again\n            continue",
        [PDU + "test_12_presentation_context_ids_zero_even_or_repeated"],
        "repeated context IDs answered each time",
    ),
    Mutation(
        13, "dul/negotiation.py",
        "MAX_PRESENTATION_CONTEXTS = 128",
        "MAX_PRESENTATION_CONTEXTS = 1 << 16  # MUTATION",
        [PDU + "test_13_too_many_presentation_contexts_are_refused_quickly"],
        "no limit of 128 presentation contexts",
    ),
    Mutation(
        14, "dul/negotiation.py",
        "            return offered_clean[0] if offered_clean else None",
        "            return offered_clean[0]  # MUTATION: assumes a transfer syntax",
        [PDU + "test_14_a_presentation_context_without_transfer_syntax_is_refused"],
        "'*' assumes a transfer syntax was offered",
    ),
    Mutation(
        14, "dul/user_information.py",
        "    if len(value) != 4:\n        raise invalid(f\"Maximum Length Sub-Item (51H)",
        "    if False:  # MUTATION\n        raise invalid(f\"Maximum Length Sub-Item (51H)",
        [PDU + "test_14_malformed_sub_items_are_aborted"],
        "maximum length sub-item of any length",
    ),
    Mutation(
        14, "dul/fields.py",
        "    if end > len(value):\n        raise invalid(",
        "    if False:  # MUTATION: a UID length may overrun its sub-item\n        raise invalid(",
        [PDU + "test_14_malformed_sub_items_are_aborted"],
        "get_field: no bound on a UID length",
    ),
    Mutation(
        14, "dul/user_information.py",
        "    if len(value) - offset != 2:",
        "    if False:  # MUTATION: whatever follows the UID",
        [PDU + "test_14_malformed_sub_items_are_aborted"],
        "role selection: bytes after the UID not checked",
    ),
    # --- 15-17: who may associate
    Mutation(
        15, "dul/negotiation.py",
        "    if not valid_ae_title(request.calling_ae_title):",
        "    if False:  # MUTATION: any calling AE title",
        [PDU + "test_15_without_an_allow_list_only_invalid_titles_are_rejected_and_none_is_a_path"],
        "calling AE title not validated (PS3.5 AE)",
    ),
    Mutation(
        15, "dul/drivers/server.py",
        "                    \"association from %s (%r -> %r) rejected: %s\",\n"
        "                    peer,\n"
        "                    request.calling_ae_title,",
        "                    \"association from %s (%s -> %s) rejected: %s\",  # MUTATION: raw\n"
        "                    peer,\n"
        "                    request.calling_ae_title,",
        [PDU + "test_15_hostile_calling_ae_titles_are_rejected_by_an_allow_list"],
        "rejected AE titles logged raw",
    ),
    Mutation(
        15, "dimse/serve.py",
        "            \"association from %s (%r -> %r)\",",
        "            \"association from %s (%s -> %s)\",  # MUTATION: raw",
        [PDU + "test_15_a_called_ae_title_with_control_bytes_is_logged_escaped"],
        "AE titles of an association logged raw",
    ),
    Mutation(
        16, "dul/negotiation.py",
        "    if policy.calling_ae_allowed is not None and not policy.calling_ae_allowed(request.calling_ae):",
        "    if False:  # MUTATION: no allow-list",
        [PDU + "test_16_ae_titles_not_allowed_are_rejected"],
        "calling AE allow-list not applied",
    ),
    Mutation(
        16, "dul/negotiation.py",
        "    if policy.check_called_ae and request.called_ae != policy.ae_title:",
        "    if False:  # MUTATION: called AE title not checked",
        [PDU + "test_16_ae_titles_not_allowed_are_rejected"],
        "called AE title not checked",
    ),
    Mutation(
        17, "dul/admission.py",
        "            elif self.active >= self.max_associations:",
        "            elif False:  # MUTATION: no association limit",
        [PDU + "test_17_over_the_association_limit_is_accepted_at_tcp_then_rejected"],
        "no association limit",
    ),
    Mutation(
        17, "dul/admission.py",
        "            if place.counted:\n",
        "            if False:  # MUTATION: the place is never given back\n",
        [PDU + "test_17_over_the_association_limit_is_accepted_at_tcp_then_rejected"],
        "an ended association keeps its place",
    ),
    # --- 18-21: PDVs
    Mutation(
        18, "dul/pdata.py",
        "    if end == 0:\n        raise PduError(",
        "    if False:  # MUTATION: a P-DATA-TF may hold no PDV\n        raise PduError(",
        [DIMSE + "test_18_each_layer_refuses_a_p_data_tf_without_pdv"],
        "decode_pdu: P-DATA-TF without PDV",
    ),
    Mutation(
        18, "dimse/reassembly.py",
        "        if not pdu.pdvs:\n            self._fail(",
        "        if False:  # MUTATION: a P-DATA-TF may hold no PDV\n            self._fail(",
        [DIMSE + "test_18_each_layer_refuses_a_p_data_tf_without_pdv"],
        "Reassembler: P-DATA-TF without PDV",
    ),
    Mutation(
        18, "dul/pdata.py",
        "        if length < 2:",
        "        if False:  # MUTATION: a PDV item-length under 2",
        [
            DIMSE + "test_18_pdvs_that_do_not_fill_the_pdu_are_aborted",
            DIMSE + "test_18_a_pdv_length_under_2_is_aborted_when_the_next_bytes_parse",
        ],
        "PDV item-length under 2 accepted",
    ),
    Mutation(
        18, "dul/pdata.py",
        "        if offset + 6 > end:",
        "        if False:  # MUTATION: stray bytes after the last PDV",
        [DIMSE + "test_18_pdvs_that_do_not_fill_the_pdu_are_aborted[stray-bytes]"],
        "stray bytes after the PDVs",
    ),
    Mutation(
        18, "dul/pdata.py",
        "        if stop > end:",
        "        if False:  # MUTATION: a PDV may run past the PDU",
        [DIMSE + "test_18_pdvs_that_do_not_fill_the_pdu_are_aborted[pdv-past-pdu]"],
        "a PDV running past the PDU is cut short",
    ),
    Mutation(
        19, "dul/pdata.py",
        "        if stop > end:",
        "        if False:  # MUTATION: a PDV may run past the PDU",
        [DIMSE + "test_19_a_pdv_length_near_2_to_the_32_is_aborted"],
        "a PDV length near 2^32 is cut short",
    ),
    Mutation(
        20, "dimse/reassembly.py",
        "        if context_id not in self.accepted_contexts:",
        "        if False:  # MUTATION: any context",
        [DIMSE + "test_20_a_pdv_on_a_context_not_accepted_is_aborted"],
        "PDV on a context not accepted",
    ),
    Mutation(
        20, "dimse/reassembly.py",
        "        elif context_id != self._context:",
        "        elif False:  # MUTATION: the context may change mid-message",
        [DIMSE + "test_20_a_context_that_changes_in_the_middle_of_a_message_is_aborted"],
        "context changes in the middle of a message",
    ),
    Mutation(
        21, "dimse/reassembly.py",
        "            if not is_command:\n"
        "                self._fail(\"data set fragment before the last fragment of the command",
        "            if False:  # MUTATION\n"
        "                self._fail(\"data set fragment before the last fragment of the command",
        [DIMSE + "test_21_a_data_set_fragment_before_the_command_is_complete_is_aborted"],
        "data set fragment inside the command",
    ),
    Mutation(
        21, "dimse/reassembly.py",
        "        if is_command:\n            self._fail(\n                \"command fragment before",
        "        if False:  # MUTATION\n            self._fail(\n                \"command fragment before",
        [DIMSE + "test_21_a_new_command_before_the_last_data_fragment_is_aborted"],
        "command fragment inside the data set",
    ),
    Mutation(
        21, "dimse/engine.py",
        "                self.connection.abort_invalid(\n"
        "                    AbortReason.INVALID_PDU_PARAMETER_VALUE, str(exc), now\n"
        "                )\n",
        "                log.warning(\"%s\", exc)  # MUTATION: no A-ABORT for PDVs that break PS3.8\n",
        [
            DIMSE + "test_21_a_bad_pdv_while_the_server_looks_for_a_c_cancel_is_aborted",
            ENGINE + "test_bad_pdvs_from_the_requestor_abort_with_source_2_reason_6",
        ],
        "Engine: bad PDVs are dropped without A-ABORT",
    ),
    # --- 22-24: command sets
    Mutation(
        22, "dimse/commands.py",
        "    return Command(values, stray)",
        "    if \"CommandGroupLength\" not in values:  # MUTATION: (0000,0000) required\n"
        "        raise DimseError(\"command set without (0000,0000)\")\n"
        "    return Command(values, stray)",
        [DIMSE + "test_22_a_command_set_without_group_length_is_accepted"],
        "(0000,0000) required",
    ),
    Mutation(
        22, "dimse/commands.py",
        "    return _GROUP_LENGTH_PREFIX + _UL.pack(len(body)) + body",
        "    return body  # MUTATION: sent without (0000,0000)",
        [DIMSE + "test_22_a_command_set_without_group_length_is_accepted"],
        "(0000,0000) not sent",
    ),
    Mutation(
        23, "dimse/commands.py",
        "        if length > end - offset:",
        "        if False:  # MUTATION: an element may run past the command set",
        [DIMSE + "test_23_a_command_element_longer_than_the_bytes_left_is_aborted"],
        "command element past the bytes left",
    ),
    Mutation(
        24, "dimse/engine.py",
        "            if exc.status is not None and exc.message_id is not None:",
        "            if False:  # MUTATION: no answer to an unknown command",
        [DIMSE + "test_24_an_unknown_command_field_is_answered_0211_and_the_association_goes_on"],
        "unknown command field not answered 0211",
    ),
    Mutation(
        24, "dimse/reassembly.py",
        "            if not is_command:\n                self._fail(\n"
        "                    f\"data set fragment on presentation context {context_id} with no \"\n"
        "                    \"command before it (PS3.7 6.3.1: a message starts with its command)\"\n"
        "                )",
        "            if not is_command:\n"
        "                return None  # MUTATION: a stray data set fragment is dropped",
        [DIMSE + "test_24_a_data_set_after_a_command_that_announced_none_is_aborted"],
        "a data set fragment with no command is dropped",
    ),
    Mutation(
        24, "dimse/reassembly.py",
        "        if is_command:\n            self._fail(\n                \"command fragment before",
        "        if False:  # MUTATION\n            self._fail(\n                \"command fragment before",
        [DIMSE + "test_24_a_command_after_one_that_announced_a_data_set_is_aborted"],
        "command where the announced data set should be",
    ),
    # --- 25: fragmentation
    Mutation(
        25, "dimse/reassembly.py",
        "        self._command_parts.append(data)",
        "        self._command_parts = [data]  # MUTATION: only the last fragment kept",
        [
            DIMSE + "test_25_every_fragment_size_reassembles_identically",
            DIMSE + "test_25_fragment_sizes_over_the_wire_store_the_same_bytes",
        ],
        "command fragments not joined",
    ),
    Mutation(
        25, "dimse/reassembly.py",
        "            self._chunks.append(data)",
        "            self._chunks = [data]  # MUTATION: only the last fragment kept",
        [DIMSE + "test_25_every_fragment_size_reassembles_identically"],
        "data set fragments not joined",
    ),
    # --- 26-28: data sets
    Mutation(
        26, "dimse/datasets.py",
        "    except RecursionError:\n"
        "        raise DimseError(\"the data set nests too deep to be read\", status=UNREADABLE) from None\n"
        "    except Exception as exc:  # pydicom raises many kinds; none may reach the peer's handler\n"
        "        raise DimseError(f\"the data set cannot be read: {exc}\", status=UNREADABLE) from None\n",
        "",
        [DIMSE + "test_26_a_query_nested_1000_deep_is_c000"],
        "decode_dataset lets pydicom's errors out",
    ),
    Mutation(
        26, "dimse/datasets.py",
        "MAX_DEPTH = 64",
        "MAX_DEPTH = 1 << 30  # MUTATION",
        [DIMSE + "test_26_a_query_nested_1000_deep_is_c000"],
        "no nesting limit on a decoded data set",
    ),
    Mutation(
        26, "dimse/archive/instance_header.py",
        "    except Exception as exc:  # pydicom raises many kinds for bad bytes; RecursionError too\n"
        "        raise UnreadableInstance(f\"{path.name}: the data set cannot be read: {exc}\") from None\n",
        "",
        [
            DIMSE + "test_26_a_c_store_nested_1000_deep_is_c000",
            DIMSE + "test_26_the_archive_header_reader_refuses_nesting_1000_deep",
        ],
        "read_header lets pydicom's errors out",
    ),
    Mutation(
        27, "dimse/datasets.py",
        "        out = inflater.decompress(data, limit + 1)",
        "        out = inflater.decompress(data)  # MUTATION: inflated whole, then checked",
        [DIMSE + "test_27_a_deflate_bomb_is_refused_at_the_cap"],
        "inflate not bounded while inflating",
    ),
    Mutation(
        27, "dimse/datasets.py",
        "    if len(out) > limit:",
        "    if False:  # MUTATION: the excess is dropped silently",
        [DIMSE + "test_27_a_deflate_bomb_is_refused_at_the_cap"],
        "inflating past the cap is not refused",
    ),
    Mutation(
        28, "dimse/archive/archive.py",
        "        if record.sop_class_uid != store.sop_class_uid:",
        "        if False:  # MUTATION",
        [DIMSE + "test_28_a_data_set_whose_uids_differ_from_the_command_is_a900[SOPClassUID]"],
        "SOP Class UID of the data set not compared",
    ),
    Mutation(
        28, "dimse/archive/archive.py",
        "        if record.sop_instance_uid != store.sop_instance_uid:",
        "        if False:  # MUTATION",
        [DIMSE + "test_28_a_data_set_whose_uids_differ_from_the_command_is_a900[SOPInstanceUID]"],
        "SOP Instance UID of the data set not compared",
    ),
    Mutation(
        28, "dimse/received.py",
        "        if found != expected:",
        "        if False:  # MUTATION",
        ["tests/test_received.py::test_a_data_set_of_another_instance_is_a900_naming_the_element"],
        "the first check before success (dimse/received.py) skips the UIDs",
    ),
    # --- 29-32: storing
    Mutation(
        29, "dimse/naming.py",
        "    if is_valid_uid(uid):",
        "    if True:  # MUTATION: the UID is the file name, whatever it holds",
        [STORAGE + "test_29_uids_that_are_paths_stay_inside_the_archive"],
        "file name from an unvalidated UID",
    ),
    Mutation(
        30, "dimse/archive/store.py",
        "_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})",
        "_NO_SPACE: frozenset[int] = frozenset()  # MUTATION",
        [STORAGE + "test_30_a_full_disk_is_a700_and_the_association_goes_on"],
        "a full disk is not A700",
    ),
    Mutation(
        30, "dimse/archive/store.py",
        "        self._state = _State.FAILED\n        self._drop()",
        "        self._state = _State.FAILED  # MUTATION: the temporary file is left",
        [STORAGE + "test_30_a_full_disk_is_a700_and_the_association_goes_on"],
        "a failed write leaves its temporary file",
    ),
    Mutation(
        31, "dimse/archive/folder.py",
        "                if not (name.startswith(TEMP_PREFIX) and name.endswith(\".part\")):",
        "                if True:  # MUTATION: temporary files kept at start",
        [STORAGE + "test_31_a_server_killed_in_the_middle_of_a_write_leaves_no_truncated_file"],
        "no clean-up of temporary files at start",
    ),
    Mutation(
        31, "dimse/archive/folder.py",
        "                    if not adopted[owner]:\n                        continue\n",
        "                    pass  # MUTATION: a node removes every node's temporary files\n",
        [SHARED + "test_a_node_removes_its_own_temporary_files_and_those_of_nodes_not_running"],
        "a node of a shared archive removes the others' files being received",
    ),
    Mutation(
        31, "dimse/archive/index_pg.py",
        "            \"SELECT id, path FROM journal WHERE node = ANY(%s) ORDER BY id\", (nodes,)",
        "            \"SELECT id, path FROM journal WHERE node <> ALL(%s) ORDER BY id\", (nodes,)  # MUTATION",
        [SHARED + "test_a_killed_node_is_rolled_forward_by_the_next_node_to_start_never_while_it_runs"],
        "a node rolls forward another node's journal entries, not its own",
    ),
    Mutation(
        31, "dimse/storage.py",
        "        self._fd, self._temp = _create_temp(str(directory), mode, owner)",
        "        self._temp = self._final  # MUTATION: written in place, under its final name\n"
        "        self._fd = os.open(self._final, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)",
        [STORAGE + "test_31_a_server_killed_in_the_middle_of_a_write_leaves_no_truncated_file"],
        "written under the final name, no temporary file",
    ),
    Mutation(
        32, "dimse/archive/archive.py",
        "        if self.duplicate_policy == \"reject\":",
        "        if False:  # MUTATION",
        [STORAGE + "test_32_the_same_uid_twice_follows_the_policy[sqlite-reject-273-1]"],
        "policy 'reject' not applied",
    ),
    Mutation(
        32, "dimse/archive/batch.py",
        "    replace = archive.duplicate_policy == \"replace\"",
        "    replace = True  # MUTATION",
        [STORAGE + "test_32_the_same_uid_twice_follows_the_policy[sqlite-keep-0-1]"],
        "policy 'keep' not applied",
    ),
    Mutation(
        32, "dimse/archive/archive.py",
        "        with self._commit_lock, contextlib.ExitStack() as locked:",
        "        with contextlib.ExitStack() as locked:  # MUTATION: no lock",
        [STORAGE + "test_32_concurrent_stores_of_one_uid_are_atomic"],
        "commits not serialized",
    ),
    Mutation(
        32, "dimse/archive/index_pg.py",
        "        conn.execute(\"SELECT pg_advisory_lock(%s::int4, %s::int4)\", (_FILE_LOCK, key))\n",
        "",  # MUTATION: nodes storing the same instance do not take turns
        [SHARED + "test_the_same_instance_stored_through_two_nodes_at_once_leaves_one_agreeing_copy"],
        "two nodes rename and index the same instance at once",
    ),
    Mutation(
        32, "dimse/archive/index_pg.py",
        "        self._writes = Writes(POSTGRESQL, cache=False, lock_parents=True)",
        "        self._writes = Writes(POSTGRESQL, cache=False, lock_parents=False)  # MUTATION",
        [SHARED + "test_a_series_emptied_by_one_node_while_the_other_stores_into_it_keeps_the_new_instance"],
        "a node deletes a series another node has just stored into",
    ),
    # --- 33-35: retrieve
    Mutation(
        33, "dimse/serve_retrieve.py",
        "            if address is None:\n                raise HandlerStatus(",
        "            if False:  # MUTATION\n                raise HandlerStatus(",
        [
            STORAGE + "test_33_c_move_to_an_unknown_destination_or_from_a_stranger_is_a801",
            SERVICES + "test_move_to_an_unknown_destination_is_a801",
        ],
        "unknown move destination not refused",
    ),
    Mutation(
        33, "dimse/archive/handlers.py",
        "        if self.move_allowed is not None and not self.move_allowed(caller.calling_ae):",
        "        if False:  # MUTATION: anyone may move",
        [STORAGE + "test_33_c_move_to_an_unknown_destination_or_from_a_stranger_is_a801"],
        "C-MOVE allowed to any caller",
    ),
    Mutation(
        34, "dimse/serve_retrieve.py",
        "                    \"timeouts\": settings.timeouts,\n",
        "",
        [STORAGE + "test_34_a_move_destination_that_hangs_is_bounded_by_the_timeouts"],
        "sub-association without the server's timeouts",
    ),
    Mutation(
        34, "dimse/serve_retrieve.py",
        "        if final and counts.failed_uids:",
        "        if False:  # MUTATION: no Failed SOP Instance UID List",
        [
            STORAGE + "test_34_a_move_destination_that_hangs_is_bounded_by_the_timeouts",
            SERVICES + "test_move_to_an_unreachable_destination_fails_every_instance",
        ],
        "final response without the failed UIDs",
    ),
    Mutation(
        35, "dimse/serve.py",
        "                        if served.cancelled or engine.over:\n",
        "                        if engine.over:  # MUTATION: C-CANCEL not looked for\n",
        [
            STORAGE + "test_35_c_cancel_during_c_find_ends_it_promptly_with_fe00",
            SERVICES + "test_leaving_a_find_early_cancels_it_between_responses",
        ],
        "C-FIND does not look for C-CANCEL",
    ),
    Mutation(
        35, "dimse/serve_retrieve.py",
        "                if served.cancelled:\n                    cancelled = True",
        "                if False:  # MUTATION: C-CANCEL not looked for\n"
        "                    cancelled = True",
        [
            STORAGE + "test_35_c_cancel_during_c_move_ends_it_with_fe00",
            SERVICES + "test_get_cancelled_in_the_middle_ends_with_fe00_and_its_counts",
        ],
        "C-MOVE and C-GET do not look for C-CANCEL",
    ),
    Mutation(
        35, "dul/machine.py",
        "deque(maxlen=history_size)",
        "deque()  # MUTATION: unbounded",
        [STORAGE + "test_35_a_flood_of_c_cancel_does_not_grow_memory"],
        "transition history unbounded",
    ),
    # --- 36-39: release and slow peers
    Mutation(
        36, "dul/fsm.py",
        "    Event.Evt12: (__,   AA_1, AA_8, __,   AA_8, AR_2, AR_8,",
        "    Event.Evt12: (__,   AA_1, AA_8, __,   AA_8, AR_2, AA_8,",
        [
            STORAGE + "test_36_release_collision_as_requestor_over_sockets",
            STORAGE + "test_36_release_collision_as_acceptor_over_sockets",
        ],
        "Table 9-10: A-RELEASE-RQ in Sta7 aborts",
    ),
    Mutation(
        36, "dul/actions.py",
        "State.Sta9 if ctx.requestor else State.Sta10",
        "State.Sta9",  # MUTATION: both sides answer first
        [STORAGE + "test_36_release_collision_as_acceptor_over_sockets"],
        "AR-8 ignores which side we are",
    ),
    Mutation(
        37, "dul/fsm.py",
        "    Event.Evt10: (__,   AA_1, AA_8, __,   AA_8, DT_2, AR_6,",
        "    Event.Evt10: (__,   AA_1, AA_8, __,   AA_8, DT_2, AA_8,",
        [STORAGE + "test_37_p_data_after_our_a_release_rq_is_delivered_not_aborted"],
        "Table 9-10: P-DATA-TF in Sta7 aborts",
    ),
    Mutation(
        37, "dul/connection.py",
        "            elif type(output) is PDataIndication:\n"
        "                self.received.append(output.pdu)\n",
        "            elif type(output) is PDataIndication:\n"
        "                if self.machine.state is State.Sta6:  # MUTATION: data only while established\n"
        "                    self.received.append(output.pdu)\n",
        [STORAGE + "test_37_p_data_after_our_a_release_rq_is_delivered_not_aborted"],
        "Connection drops a P-DATA that comes while releasing",
    ),
    Mutation(
        38, "dul/fsm.py",
        "    Event.Evt18: (__,   AA_2, __,   __,   __,   __,   __,   __,   __,   __,    __,   __,   AA_2),",
        "    Event.Evt18: (__,   AA_2, __,   __,   __,   __,   __,   __,   __,   __,    __,   __,   __  ),",
        [STORAGE + "test_38_a_peer_that_never_closes_is_closed_when_artim_expires"],
        "Table 9-10: ARTIM expiry ignored in Sta13",
    ),
    Mutation(
        38, "dul/actions.py",
        "    return Step(State.Sta13, (_send(A_RELEASE_RP()),), Timer.START)",
        "    return Step(State.Sta13, (_send(A_RELEASE_RP()),))  # MUTATION: no ARTIM",
        [STORAGE + "test_38_a_peer_that_never_closes_is_closed_when_artim_expires[release-rp]"],
        "AR-4 starts no ARTIM timer",
    ),
    Mutation(
        39, "dul/drivers/sockets.py",
        "            set_timeout(sock, ABORT_WRITE if quick else self.timeouts.dimse)\n"
        "            send_all(sock, send.data)",
        "            set_timeout(sock, None)  # MUTATION: a send may block for ever\n"
        "            send_all(sock, send.data)",
        [STORAGE + "test_39_a_peer_that_stops_reading_during_our_c_store_is_aborted"],
        "sending has no timeout",
    ),
    Mutation(
        39, "dul/drivers/sockets.py",
        "            self._close_socket()\n"
        "            self.endpoint.receive_closed(self.clock(), error=error)",
        "            raise  # MUTATION: the socket error escapes, nothing closed",
        [STORAGE + "test_39_a_peer_that_stops_reading_during_our_c_store_is_aborted"],
        "a failed send neither aborts nor closes",
    ),
    # --- 40: a malicious server's paths. The mutant keeps names relative (a leading
    # "/" is stripped), so that "/etc/x" cannot write outside the test's directory.
    Mutation(
        40, "dimse/storage.py",
        "            self.directory, instance_file_name(sop_instance_uid), header, self.fsync",
        "            self.directory, sop_instance_uid.lstrip(\"/\") + \".dcm\", header, self.fsync"
        "  # MUTATION: naive sanitizer",
        [
            STORAGE + "test_40_a_c_get_answered_with_path_uids_writes_inside_the_output_dir",
            STORAGE + "test_40_a_c_move_answered_with_path_uids_writes_inside_the_output_dir",
        ],
        "InstanceWriter names files from the raw UID",
    ),
    # --- 41-46: exact data (issue 11)
    Mutation(
        41, "dimse/archive/archive.py",
        "        refusal = self._check(store, pending)\n        if refusal is not None:",
        "        refusal = self._check(store, pending)\n        if False:  # MUTATION: no check",
        [FIDELITY + "test_case2_a_truncated_instance_is_refused_and_the_good_copy_kept"],
        "the archive acknowledges a data set it did not check",
    ),
    Mutation(
        42, "dimse/transfer/walk.py",
        "                if pos > limit:\n",
        "                if False:  # MUTATION: a value may run past its parent\n",
        [FIDELITY + "test_case3_a_truncated_file_is_named_and_not_sent_and_the_rest_go"],
        "the walk lets a value run past the end",
    ),
    Mutation(
        43, "dimse/commands.py",
        "            stray[tag] = raw\n",
        "            raise DimseError(\"outside group 0000\")  # MUTATION: a peer's stray element aborts\n",
        [COMMANDS + "test_elements_outside_group_0000_are_skipped_with_one_warning"],
        "a stray element of another group aborts the association",
    ),
    Mutation(
        44, "dimse/transfer/convert.py",
        " or _odd_deflate(info)",
        "  # MUTATION: an odd deflated data set goes as it is",
        [FIDELITY + "test_case5_get_brings_back_each_compressed_instance_as_stored"],
        "a deflated data set of odd length is sent unpadded",
    ),
    # --- 47-55: hostile peers, round 2 (issue 12)
    Mutation(
        47, "dul/drivers/accepting.py",
        "                    self.resume_at = time.monotonic() + self._backoff\n",
        "                    pass  # MUTATION: accept is retried at once, for ever\n",
        [ROUND2 + "test_47_out_of_descriptors_the_server_backs_off_logs_once_and_recovers"],
        "accept retried in a tight loop when descriptors run out",
    ),
    Mutation(
        48, "dul/admission.py",
        "        if waiting >= self.max_pending:\n",
        "        if False:  # MUTATION: no limit on connections waiting\n",
        [ROUND2 + "test_48_past_max_pending_the_longest_waiting_is_closed"],
        "connections waiting for their A-ASSOCIATE-RQ are not capped",
    ),
    Mutation(
        48, "dimse/engine.py",
        "                if self._heard or self._silent is None\n",
        "                if True  # MUTATION: no silent timeout, the idle one from the start\n",
        [
            ROUND2 + "test_48_an_association_that_says_nothing_goes_at_the_silent_timeout",
            TIMEOUTS + "test_silent_timeout_before_the_first_message",
        ],
        "an association that says nothing holds its place for the idle timeout",
    ),
    Mutation(
        49, "dimse/reassembly.py",
        "            None if command.command_field == CommandField.C_STORE_RQ else self.max_identifier",
        "            None  # MUTATION: an identifier of any size is kept",
        [ROUND2 + "test_49_an_identifier_over_the_limit_is_refused_and_not_spooled"],
        "request identifiers kept whatever their size",
    ),
    Mutation(
        51, "dimse/datasets.py",
        "        walk(raw, implicit=implicit, little=little)\n",
        "        pass  # MUTATION: pydicom reads what it can\n",
        [ROUND2 + "test_50_51_a_malformed_response_identifier_is_one_line_and_exit_1"],
        "identifiers not walked before pydicom reads them",
    ),
    Mutation(
        52, "dimse/engine.py",
        "        if operation is None or not isinstance(message, operation.kind):\n",
        "        if operation is None or not isinstance(message, operation.kind):\n"
        "            return  # MUTATION: another message's response is let pass\n",
        [
            ROUND2 + "test_52_responses_to_other_messages_end_the_association_at_once",
            ENGINE + "test_a_response_to_no_request_of_ours_aborts",
        ],
        "responses to other messages dropped, the wait goes on",
    ),
    Mutation(
        53, "cli/dicomscu/store.py",
        "os.walk(path, onerror=unreadable):",
        "os.walk(path):  # MUTATION: a folder that cannot be read is skipped in silence",
        [ROUND2 + "test_53_a_folder_that_cannot_be_read_is_said_and_fails_the_run"],
        "unreadable folders skipped in silence",
    ),
    Mutation(
        54, "dimse/get_store.py",
        "            self.refused.append((uid, why))\n",
        "            pass  # MUTATION: the reason stays in the library's log\n",
        [ROUND2 + "test_54_a_full_output_folder_is_said_as_such"],
        "a full output folder is not said",
    ),
    # --- 56-57: dicomscp --workers (issue 15)
    Mutation(
        56, "dul/drivers/prefork.py",
        "        worker.restart_at = time.monotonic() + delay",
        "        return  # MUTATION: a worker that died is not started again",
        [WORKERS + "test_a_worker_killed_is_started_again_and_nothing_acknowledged_is_lost"],
        "a dead worker not replaced",
    ),
    Mutation(
        57, "dimse/archive/index.py",
        "(its `.lock`).\"\"\"\n        return self._writer_lock()",
        "(its `.lock`).\"\"\"\n        return contextlib.nullcontext()  # MUTATION: no lock on the path",
        [WORKERS + "test_two_workers_storing_one_uid_leave_one_consistent_copy"],
        "two workers store one instance without taking turns",
    ),
    Mutation(
        58, "dimse/archive/index_pg.py",
        "        if not (row and row[0]):\n            return False\n",
        "        pass  # MUTATION: a running node's leftovers taken too\n",
        [SHARED + "test_a_killed_node_is_rolled_forward_by_the_next_node_to_start_never_while_it_runs"],
        "a running node's journal entries taken over",
    ),
)
# fmt: on


# --------------------------------------------------------------------------------------
# Applying and undoing a mutation


class MutationError(Exception):
    """A mutation does not apply to the source as it is."""


def _drop_bytecode(path: Path) -> None:
    """Remove the cached bytecode of `path`: a mutant written in the same second as
    the original, with the same size, could otherwise run the original's .pyc."""
    cached = Path(importlib.util.cache_from_source(str(path)))
    cached.unlink(missing_ok=True)


def check_applies(mutation: Mutation) -> str:
    """The mutated text of the file; MutationError if `old` is not there exactly once."""
    path = REPOSITORY / mutation.file
    text = path.read_text(encoding="utf-8")
    count = text.count(mutation.old)
    if count != 1:
        raise MutationError(
            f"case {mutation.case}: {mutation.file}: the text to mutate occurs {count} times, "
            f"not once: {mutation.old.splitlines()[0].strip()!r}"
        )
    mutated = text.replace(mutation.old, mutation.new)
    try:
        compile(mutated, str(path), "exec")
    except SyntaxError as exc:
        raise MutationError(
            f"case {mutation.case}: {mutation.file}: mutant does not compile: {exc}"
        ) from exc
    return mutated


def restore_leftovers() -> None:
    """Put back any original left by a run that was killed before it could restore it."""
    for directory in LIBRARY_DIRS:
        for backup in (REPOSITORY / directory).rglob(f"*{BACKUP_SUFFIX}"):
            original = backup.with_name(backup.name.removesuffix(BACKUP_SUFFIX))
            print(f"restoring {original.relative_to(REPOSITORY)} from a previous run's backup")
            os.replace(backup, original)
            _drop_bytecode(original)


@contextmanager
def mutated(mutation: Mutation) -> Iterator[None]:
    """The file mutated for the duration of the block; the original always comes back
    (the backup copy covers a kill in between)."""
    path = REPOSITORY / mutation.file
    mutant = check_applies(mutation)
    original = path.read_bytes()
    stat = path.stat()
    backup = path.with_name(path.name + BACKUP_SUFFIX)
    backup.write_bytes(original)
    try:
        path.write_text(mutant, encoding="utf-8")
        _drop_bytecode(path)
        yield
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        _drop_bytecode(path)
        backup.unlink(missing_ok=True)


def _line_of(mutation: Mutation) -> int:
    text = (REPOSITORY / mutation.file).read_text(encoding="utf-8")
    return text[: max(text.find(mutation.old), 0)].count("\n") + 1


# --------------------------------------------------------------------------------------
# Running the tests


@dataclass(frozen=True)
class Outcome:
    exit_code: int | None  # None: the run was stopped at the time limit
    failed: tuple[str, ...]  # "test - why" of each test pytest reported failed or in error
    output: str

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def killed(self) -> bool:
        """A test failed (exit 1) or the run hung: what a mutation should cause."""
        return self.exit_code in (1, None)


def _has_pytest_timeout() -> bool:
    return importlib.util.find_spec("pytest_timeout") is not None


def run_tests(tests: Sequence[str], test_timeout: float, run_timeout: float) -> Outcome:
    """pytest on `tests` in a new process group; stopped (and counted as a hang)
    after `run_timeout` seconds."""
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-rfE"]
    if _has_pytest_timeout():
        command.append(f"--timeout={test_timeout:g}")
    else:  # at least a traceback of where it hangs
        command += ["-o", f"faulthandler_timeout={test_timeout:g}"]
    # No bytecode written for mutants: nothing stale is left behind.
    # Wide lines: pytest puts why a test failed in its summary only if the line fits.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "250"}
    process = subprocess.Popen(
        [*command, *tests],
        cwd=REPOSITORY,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,  # so that the whole group can be stopped
    )
    try:
        output, _ = process.communicate(timeout=run_timeout)
        code: int | None = process.returncode
    except subprocess.TimeoutExpired:
        _kill_group(process)
        output, _ = process.communicate()
        code = None
    except BaseException:  # Ctrl-C, SIGTERM: stop the tests before the file is restored
        _kill_group(process)
        process.wait()
        raise
    # The summary of -rfE, after the captured logs (whose lines may start "ERROR " too):
    # "FAILED tests/x.py::test_y[id] - AssertionError: ..."
    lines = output.splitlines()
    start = max((i for i, line in enumerate(lines) if "short test summary info" in line), default=0)
    failed = tuple(
        line.split(" ", 1)[1] for line in lines[start:] if line.startswith(("FAILED ", "ERROR "))
    )
    return Outcome(code, failed, output)


def _kill_group(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM and SIGHUP take the same path as Ctrl-C, so the file is restored.
    raise KeyboardInterrupt(f"signal {signum}")


# --------------------------------------------------------------------------------------
# The report


def _describe(mutation: Mutation) -> str:
    return f"{mutation.file}:{_line_of(mutation)} {mutation.what}"


def _short(test: str, width: int = 150) -> str:
    """A test's name without its file, and why it failed if known, in `width` characters."""
    text = test.split("::", 1)[-1]
    return text if len(text) <= width else text[: width - 3] + "..."


def list_mutations(mutations: Sequence[Mutation]) -> None:
    for mutation in mutations:
        print(f"{mutation.case:>2}  {_describe(mutation)}")
        for line in mutation.new.splitlines() or ["(deleted)"]:
            print(f"      new: {line.strip()}")
        for test in mutation.tests:
            print(f"      test: {test}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--case", type=int, action="append", choices=sorted(CASES), metavar="N",
        help="run only case N (repeatable)",
    )  # fmt: skip
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument(
        "--test-timeout", type=float, default=30.0, metavar="S",
        help="seconds a test may take before it counts as hung (default 30)",
    )  # fmt: skip
    parser.add_argument(
        "--run-timeout", type=float, default=120.0, metavar="S",
        help="seconds a mutant's whole test run may take (default 120)",
    )  # fmt: skip
    args = parser.parse_args(argv)

    cases = sorted(set(args.case or CASES))
    mutations = [m for m in MUTATIONS if m.case in cases]
    if args.list:
        list_mutations(mutations)
        return 0

    signal.signal(signal.SIGTERM, _terminate)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # respect nohup
        signal.signal(signal.SIGHUP, _terminate)
    restore_leftovers()
    try:
        for mutation in mutations:  # all of them must apply before anything is run
            check_applies(mutation)
    except MutationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    missing = [case for case in cases if not any(m.case == case for m in mutations)]
    if missing:
        print(f"error: no mutation for case(s) {missing}", file=sys.stderr)
        return 2

    start = time.monotonic()
    tests = list(dict.fromkeys(t for m in mutations for t in m.tests))
    print(f"unmutated: {len(tests)} tests of {len(cases)} case(s) ...", flush=True)
    baseline = run_tests(tests, args.test_timeout, args.run_timeout + 20 * len(tests))
    if not baseline.passed:
        print(baseline.output[-5000:])
        print("error: the unmutated tests do not pass; no mutation can be judged", file=sys.stderr)
        return 2
    summary = baseline.output.strip().splitlines()[-1] if baseline.output.strip() else ""
    print(f"unmutated: {summary} ({time.monotonic() - start:.0f} s)\n", flush=True)

    results: list[tuple[Mutation, str]] = []
    broken = False
    for mutation in mutations:
        began = time.monotonic()
        with mutated(mutation):
            outcome = run_tests(mutation.tests, args.test_timeout, args.run_timeout)
        seconds = time.monotonic() - began
        if outcome.killed:
            verdict = "KILLED"
            test = (
                _short(outcome.failed[0]) if outcome.failed else "(hung: stopped at the time limit)"
            )
        elif outcome.passed:
            verdict = "SURVIVED"
            test = ", ".join(_short(t) for t in mutation.tests)
        else:  # collection error, usage error: the mutant or the table is wrong
            verdict = "BROKEN"
            test = f"pytest exit status {outcome.exit_code}"
            broken = True
            print(outcome.output[-3000:])
        results.append((mutation, verdict))
        # One line per mutation: case, verdict, the mutation, the test (and why it failed).
        print(
            f"case {mutation.case:>2}  {verdict:<8}  {_describe(mutation)}  --  {test} ({seconds:.0f} s)",
            flush=True,
        )

    print(f"\n{'case':>4}  {'':<44} {'killed':>7}  verdict")
    for case in cases:
        verdicts = [v for m, v in results if m.case == case]
        killed = verdicts.count("KILLED")
        verdict = "KILLED" if killed == len(verdicts) else "SURVIVED"
        if "BROKEN" in verdicts:
            verdict = "BROKEN"
        print(f"{case:>4}  {CASES[case]:<44} {killed:>3}/{len(verdicts):<3}  {verdict}")
    survived = sum(1 for _, v in results if v == "SURVIVED")
    print(
        f"\n{len(results)} mutations, {len(results) - survived} killed, {survived} survived; "
        f"{time.monotonic() - start:.0f} s"
    )
    if broken:
        return 2
    return 1 if survived else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: the files are restored
        why = str(exc) or "Ctrl-C"
        print(f"\ninterrupted ({why}); every mutated file was restored", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # `--list | head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
