"""dimse: DIMSE messages and the DICOM service classes (PS3.7, PS3.4), over `dul`.

`dimse.client` is the service user (echo, store, find, move, get); `dimse.scp` the
service provider with its hook API; `dimse.archive` the embedded archive of
`dicomscp`.
"""
