"""`dicomscu --find` and `--worklist`: C-FIND, each match printed as it arrives.

Matches go to stdout (`cli.printing`); a final failure status is explained on
stderr and gives exit status 1. With -V the number of matches is said at the end
("Find was successful.", as gdcmscu says it).
"""

from __future__ import annotations

import logging
import sys

from cli.association import implicit_only, open_association
from cli.failures import Context, explain_exception, explain_status
from cli.options import Settings
from cli.printing import ResponsePrinter
from cli.query import Query
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
    try:
        with open_association(settings, contexts) as association:
            try:
                for response in association.find(
                    query.identifier, query.root, priority=settings.priority
                ):
                    if response.status.is_pending:
                        if response.identifier is not None:
                            printer.response(response.identifier)
                    else:
                        final = response.status
            except client.NoPresentationContext as exc:
                refused = exc  # the association is released normally
    finally:
        printer.finish()
    if refused is not None:
        log.error("%s", explain_exception(refused, context))
        return 1
    assert final is not None
    if final.is_success or final.is_warning:
        if final.is_warning:
            log.warning("C-FIND ended with a warning: %s", final)
        log.info("Find was successful: %d match(es).", printer.count)
        return 0
    log.error("%s", explain_status(final, context))
    return 1
