"""What the test modules share: plain helpers, constants and client wrappers, one module per
area. Fixtures are not here: they live in the conftest.py of the directory whose tests use
them (tests/conftest.py for those used everywhere), and a conftest imports its helpers from
here. No test module imports from another test module or from a conftest.py.

- common.py: the repository's paths, ISO instants, demo permits and publishing them, polling,
  free ports
- core.py: the index builder and the small rules city (core and config tests)
- api.py: the HTTP API's client, credentials, permits and transits, and the replica helpers
- cameras.py: the camera service's client, keys and permits, and the vendor table
- payloads/: vendor payloads as the vendors document them (onboard cameras, software)
- store.py: permit rows and the permit-import CSV (permit database tests)
- feeds.py: the regional feed's CSV rows, and a scripted HTTP feed server
- audit.py: a service with its audit trail, `varco audit`, hand-made chains
"""
