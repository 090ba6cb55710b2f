"""Default limits on what a peer may make us keep, in one place for the library and
the programs (which read them without loading the DIMSE codec)."""

#: The longest identifier kept (a query's or a response's data set): 1 MiB holds a
#: C-MOVE of 10,000 SOP Instance UIDs; a query has no business being larger.
DEFAULT_MAX_IDENTIFIER = 1 << 20
