"""Command-line programs, a room each:

- `cli.dicomscu`: the client with the options of GDCM's gdcmscu. The command line is
  parsed in `parser` and interpreted in `options`; the query is built in `keys` and
  `query`; each operation lives in a module (`echo`, `store`, `find`, `retrieve`);
  what reaches a person is written by `printing` (C-FIND responses, stdout) and
  `failures` (what went wrong and what to try, stderr).
- `cli.dicomscp`: the server with its embedded archive; `config` reads its settings.
- `cli.demo`: the README's demonstration; `cli.logs`: logging for both programs.

`python -m cli` runs dicomscu. The programs speak to `dimse` only.
"""
