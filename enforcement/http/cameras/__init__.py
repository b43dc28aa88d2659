"""Vendor camera formats: adapters in front of the same check, log and verdict.

One module per vendor (hikvision, axis, milesight, platerecognizer, rekor, dahua) parses its
payload into plate reads (`reads.py`), and has a fast path (`transit`) for its usual post,
straight to the transit; shared helpers read bodies under a cap and stream
multipart parts (`body.py`), parse XML safely by local names (`safexml.py`), normalise
confidences, countries and missing values (`values.py`) and local timestamps (`clock.py`),
and derive stable event ids (`ids.py`); `registry.py` says which camera is posting, and
`routes.py` registers the endpoints.

Payload structs are declared `gc=False`: decoded from a body, they cannot hold a reference
cycle, and untracked they neither trigger the garbage collector nor lengthen its walks.
"""
