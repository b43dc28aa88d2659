"""The `varco` command: wires the service (`enforcement`) and the loader (`loader`) together.

The only package that imports both: the admin API (the permit database behind HTTP), the demo,
and the command line.
"""
