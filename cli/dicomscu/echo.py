"""`dicomscu --echo`: C-ECHO (PS3.7 9.1.5). Silent on success unless -V, as gdcmscu;
exit status 0 only for status Success (0000H)."""

from __future__ import annotations

import logging

from cli.dicomscu.association import implicit_only, open_association
from cli.dicomscu.failures import Context, explain_status
from cli.dicomscu.options import Settings
from dimse.models import VERIFICATION

log = logging.getLogger("dicomscu")


def run_echo(settings: Settings, context: Context) -> int:
    with open_association(settings, implicit_only(VERIFICATION)) as association:
        status = association.echo()
    if status.is_success:
        log.info("C-ECHO to %s:%d succeeded (%s)", settings.host, settings.port, status)
        return 0
    log.error("%s", explain_status(status, context))
    return 1
