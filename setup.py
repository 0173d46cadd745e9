"""Builds the optional C fast path of the flattener; everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "jit_audit._speedups",
            sources=["include/jit_audit/_speedups.c"],
            # -Werror: a warning is a bug in a parser that reads raw buffers (gcc's -Warray-bounds
            # found an over-read here once), so the fast path is not built with one.
            extra_compile_args=["-O3", "-std=c99", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"],
            # Without a compiler (or when the build fails) the package still installs and works on its
            # exact Python path, only slower; tests/core/test_speedups_build.py fails the test run then.
            optional=True,
        )
    ]
)
