"""Transfer syntaxes: what an instance's bytes mean, and changing them exactly.

Read beside PS3.5 (Data Structures and Encoding):

| Standard | What | Module |
|---|---|---|
| PS3.5 Annex A, PS3.6 Table A-1 | the transfer syntaxes and their encodings | `syntaxes.py` |
| PS3.5 6.2, Table 6.2-1, 7.1.2 | the VRs: header forms and word sizes | `vrs.py` |
| PS3.5 7.1, 7.5, A.4 | walking a data set's structure, checking every length | `walk.py` |
| PS3.5 7.3, A.1-A.3 | byte order and explicit/implicit VR conversion | `recode.py` |
| PS3.5 A.4-A.6, PS3.3 C.7.6.1.1.5 | decompressing encapsulated pixel data | `pixels.py` |
| PS3.5 A.5 | deflate and inflate | `recode.py` |
| PS3.4 B.4.1 (conversions a storage SCU may make) | choosing a syntax the peer accepted, converting a file | `convert.py` |

Nothing here touches a socket; everything takes bytes (or a file's bytes) and gives
bytes, or a reason naming the element that stops it.
"""
