"""The embedded archive behind `dicomscp`: files on disk and an SQLite index.

- `archive`: storing instances (checked, made durable, then indexed) and finding
  their files, with `store` (one instance being received); `handlers`: the
  `dimse.handlers.Handlers` that serve it;
- `index`: the SQLite index, `schema` its tables; `query`, `query_sql` and
  `query_keys`: C-FIND on it (PS3.4 C.2.2); `conditions`: the keys of an identifier
  compiled, `matching`: tested on stored values and answered; `response_charset`:
  the character set of a response;
- `instance_header` and `header_scan`: the attributes of a stored instance, read
  fast; `worklist`: Modality Worklist from a folder of files (PS3.4 K).
"""
