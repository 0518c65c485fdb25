"""Only here because cffi hooks into setuptools through ``setup(cffi_modules=...)``; metadata is in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["c_engine/_build.py:ffi", "hotpath/_build.py:ffi", "hotpath/_build_loop.py:ffi"])
