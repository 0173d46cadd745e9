"""Builds the optional C fast path of the flattener; everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "jit_audit._speedups",
            sources=["include/jit_audit/_speedups.c"],
            extra_compile_args=["-O3", "-std=c99", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            # Without a compiler the package still works on its exact Python path, only slower.
            optional=True,
        )
    ]
)
