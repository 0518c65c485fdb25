"""Only here because cffi hooks into setuptools through ``setup(cffi_modules=...)``; metadata is in pyproject.toml.

The three extensions link one C library, libptcore.so (``c_engine/_cffi_support.py``), so ``build_ext`` builds it
first: into ``c_engine/``, where the extensions link it and where an in-place or editable build finds it, and for
a wheel also into the build tree's ``c_engine/``, beside ``c_engine._cengine``.
"""

import runpy
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

_support = runpy.run_path(str(Path(__file__).resolve().parent / "c_engine" / "_cffi_support.py"))


class BuildExtWithCore(build_ext):
    def run(self) -> None:
        core = _support["build_core"](verbose=bool(self.verbose))
        if not self.inplace:
            target = Path(self.build_lib) / "c_engine"
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(core, target / core.name)
        super().run()


setup(
    cmdclass={"build_ext": BuildExtWithCore},
    cffi_modules=["c_engine/_build.py:ffi", "hotpath/_build.py:ffi", "hotpath/_build_loop.py:ffi"],
)
