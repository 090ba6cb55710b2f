"""dimse: DIMSE messages and the DICOM service classes (PS3.7, PS3.4), over `dul`.

The rooms, from the wire up:

- the protocol, free of I/O: `commands` (the command set, group 0000), `messages`
  (DIMSE-C, with `message_base` and `n_messages`), `fragments` and `reassembly` (PDVs
  cut and joined), `status` (the codes of each service), `engine`
  (one association's messages, operations, C-CANCEL, window and timeouts) with
  `operations` and `outgoing`; `errors`, `explain` (the debug log's words);
- exact data: `datasets`, `files`, `file_check`, `received`, `storage`, `transfer/`;
- the services, written once as flows of effects (`effects`): `scu` and `scu_store`
  (service user), `serve` and `serve_retrieve` (service provider, around the hooks
  of `handlers`), with `proposals`, `models`, `results`, `identity`, `opening`,
  `provider_options`, `get_store`, `storage_scp`;
- the drivers, the only modules with sockets, threads or asyncio: `drivers/`
  (`blocking`, `aio`), and the public faces on them: `client` and `scp` (blocking),
  `aio` (asyncio);
- `archive/`: the embedded archive of `dicomscp` (files, SQLite index, matching,
  worklist), a user of the service API like any other.
"""
