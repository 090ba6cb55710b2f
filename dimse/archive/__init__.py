"""The embedded archive behind `dicomscp`: files on disk and an SQLite index.

- `archive`: storing instances (checked, made durable, then indexed) and finding
  their files; `handlers`: the `dimse.handlers.Handlers` that serve it;
- `index`: the SQLite index; `query` and `query_keys`: C-FIND on it (PS3.4 C.2.2);
  `matching`: the matching rules, in Python and as SQL; `response_charset`: the
  character set of a response;
- `instance_header` and `header_scan`: the attributes of a stored instance, read
  fast; `worklist`: Modality Worklist from a folder of files (PS3.4 K).
"""
