"""Command-line programs: `dicomscu`, a client with the options of GDCM's gdcmscu.

`python -m cli` runs dicomscu. The command line is parsed in `cli.parser` and
interpreted in `cli.options`; the query is built in `cli.keys` and `cli.query`; the
operations live in one module each (`cli.echo`, `cli.store`, `cli.find`,
`cli.retrieve`); what reaches a person is written by `cli.printing` (C-FIND
responses, stdout) and `cli.failures` (what went wrong and what to try, stderr).
"""
