"""Builds the optional C lookup kernel; everything else is in pyproject.toml.

`optional=True`: on a machine without a C compiler the install still succeeds and the index
uses its pure-Python lookups (slower; `/readyz` reports `lookup_kernel`).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "enforcement.core._lookup",
            [
                "enforcement/core/_lookup.c",
                "enforcement/core/_judge.c",
                "enforcement/core/_judging.c",
            ],
            depends=[
                "enforcement/core/_lookup.h",
                "enforcement/core/_judge.h",
                "enforcement/core/_answer.h",
            ],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
