"""`dicomscu --find` and `--worklist`: C-FIND, each match printed as it arrives.

Matches go to stdout (`cli.dicomscu.printing`); a final failure status is explained on
stderr and gives exit status 1. With -V the number of matches is said at the end
("Find was successful.", as gdcmscu says it). When the reader of stdout goes (`| head
-1`), the C-FIND is cancelled, the association released, and dicomscu ends without a
word, with exit status 141, as the standard Unix tools end. A response whose identifier cannot be
read exactly (a length past its end, an item never closed, over the size limit) is
not printed: one line on stderr names the response and the element, and the exit
status is 1 (ROBUSTNESS 50-51).
"""

from __future__ import annotations

import logging
import sys

from cli.dicomscu.association import implicit_only, open_association
from cli.dicomscu.failures import Context, explain_exception, explain_status
from cli.dicomscu.options import Settings
from cli.dicomscu.printing import EXIT_PIPE, ResponsePrinter, stdout_gone
from cli.dicomscu.query import Query
from dimse import client
from dimse.status import Status

log = logging.getLogger("dicomscu")


def run_find(settings: Settings, context: Context, query: Query) -> int:
    printer = ResponsePrinter(
        sys.stdout, as_json=settings.json, worklist=query.operation == "worklist"
    )
    contexts = implicit_only(query.sop_class_uid)
    final: Status | None = None
    refused: client.NoPresentationContext | None = None
    unreadable = 0
    reader_gone = False
    try:
        with open_association(settings, contexts) as association:
            try:
                for number, response in enumerate(
                    association.find(query.identifier, query.root, priority=settings.priority),
                    start=1,
                ):
                    if response.problem:
                        unreadable += 1
                        log.error(
                            "C-FIND response %d (%s): %s", number, response.status, response.problem
                        )
                    elif response.status.is_pending and response.identifier is not None:
                        printer.response(response.identifier)
                    if not response.status.is_pending:
                        final = response.status
            except client.NoPresentationContext as exc:
                refused = exc  # the association is released normally
            except BrokenPipeError:
                # The reader went (`| head -1`): leaving the loop cancels the C-FIND
                # (C-CANCEL), and the association is released as usual.
                reader_gone = True
    finally:
        if reader_gone:
            stdout_gone()
        else:
            try:
                printer.finish()
            except BrokenPipeError:
                reader_gone = True
                stdout_gone()
    if reader_gone:
        return EXIT_PIPE
    if refused is not None:
        log.error("%s", explain_exception(refused, context))
        return 1
    assert final is not None
    if unreadable and not final.is_failure:
        log.error(
            "%d C-FIND response(s) could not be read exactly, and were not printed; "
            "the server sent malformed identifiers",
            unreadable,
        )
        return 1
    if final.is_success or final.is_warning:
        if final.is_warning:
            log.warning("C-FIND ended with a warning: %s", final)
        log.info("Find was successful: %d match(es).", printer.count)
        return 0
    log.error("%s", explain_status(final, context))
    return 1
