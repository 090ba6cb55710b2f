"""The upper layer's I/O: the only modules of `dul` that touch sockets, threads,
selectors, asyncio or clocks.

- `sockets`: the blocking driver of one association (`Channel`), and
  `request_association` to open one as requestor;
- `server`: the blocking acceptor (a selector loop for connections still waiting for
  their A-ASSOCIATE-RQ, then a thread per association);
- `aio`: the asyncio driver and acceptor, on the same `dul.connection.Connection`;
- `tls_socket`: TLS with one deadline for its handshake;
- `recorder`: the PDU dump of `dicomscu --dump-pdus`.

Each drives a pure `dul.connection.Connection` (or the DIMSE engine above one) and
decides nothing about the protocol.
"""
