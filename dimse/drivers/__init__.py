"""DIMSE's I/O: the runners that perform the effects of the flows of `dimse.scu` and
`dimse.serve` (`dimse.effects`): `blocking` with sockets and threads, `aio` with
asyncio. Nothing about DIMSE is decided here.
"""
