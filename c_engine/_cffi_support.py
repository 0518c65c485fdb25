"""What the project's cffi build scripts share (``c_engine/_build.py``, ``hotpath/_build.py``,
``hotpath/_build_loop.py``), and the build of the one C library they all link.

**libptcore.so**: the engine (``c_engine/src/*.c``, its Python glue ``py_glue.c`` included), the SPSC and
broadcast rings, the journal, the engine loop and the rings' Python glue (``hotpath/src/*.c``), compiled once.
It lives beside ``c_engine._cengine`` (``c_engine/libptcore.so``); each extension links it with an rpath
relative to itself (``$ORIGIN``, ``$ORIGIN/../c_engine``), so it is found wherever the packages sit: an in-place
``make build``, ``pip install -e .`` or an installed wheel. Every extension is a thin cffi wrapper over it, so
a ``pt_engine_t *`` made through ``c_engine._cengine`` is run by ``hotpath._cloop``'s loop with the very same
code (tests/c_engine/test_one_library.py). ``python c_engine/_cffi_support.py`` builds it (``make build``);
setup.py's ``build_ext`` builds it before the extensions (``pip install``).

Loaded by file path, not imported as ``c_engine._cffi_support``: setuptools runs the build scripts before the
package (and numpy, which the package needs) is installed. Standard library and cffi only.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from cffi import FFI

__all__ = [
    "CORE_DIR",
    "CORE_FILE",
    "build_core",
    "compile_in_place",
    "core_link_kwargs",
    "header_cdef",
    "source_path",
]

ROOT = Path(__file__).resolve().parents[1]

#: Where libptcore.so is built and found: beside c_engine._cengine.
CORE_DIR = ROOT / "c_engine"
CORE_FILE = "libptcore.so"
#: Every C source of the platform but the tests and benchmarks.
CORE_SOURCES = [*sorted((ROOT / "c_engine" / "src").glob("*.c")), *sorted((ROOT / "hotpath" / "src").glob("*.c"))]
CORE_INCLUDES = [ROOT / "c_engine" / "include", ROOT / "c_engine" / "src", ROOT / "hotpath" / "include"]
# -flto lets the compiler inline across the engine's files (about 10% fewer instructions per op, callgrind), and
# across the library's boundary between the glue, the loop and the engine. -fno-semantic-interposition: a call
# inside the library to one of its exported functions (py_new_limit -> pt_engine_submit, the loop ->
# pt_engine_submit) is direct and may be inlined, as if no other library could replace the function.
CORE_CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-flto", "-fno-semantic-interposition"]
# Exported: the public C API (pt_*, the headers of c_engine/include and hotpath/include) and the Python glue
# (py_*); everything else is local to the library (the engine's internal.h functions, emit_*, index_*...), so
# LTO treats it as static and nothing clashes with another library. A version script rather than
# -fvisibility=hidden, which would need an export attribute on every declaration of the public headers.
CORE_EXPORTS = "{ global: pt_*; py_*; local: *; };\n"
# -z defs: a symbol the library needs and nothing defines fails the link instead of the import.
CORE_LDFLAGS = ["-shared", "-Wl,-soname," + CORE_FILE, "-Wl,-z,defs", "-Wl,-O1", "-lm"]


def build_core(verbose: bool = False) -> Path:
    """Compiles libptcore.so into CORE_DIR (one compiler call: LTO over all of it) and returns its path. The
    new file replaces the old one by rename, so a process that has the old one mapped keeps running it."""
    build_dir = ROOT / "build" / "ptcore"
    build_dir.mkdir(parents=True, exist_ok=True)
    exports = build_dir / "exports.map"
    exports.write_text(CORE_EXPORTS)
    target = CORE_DIR / CORE_FILE
    tmp = build_dir / f"{CORE_FILE}.{os.getpid()}"
    cc = shlex.split(os.environ.get("CC", "cc"))
    cmd = [
        *cc,
        *CORE_CFLAGS,
        *(f"-I{p}" for p in CORE_INCLUDES),
        "-o",
        str(tmp),
        *(str(p) for p in CORE_SOURCES),
        *CORE_LDFLAGS,
        f"-Wl,--version-script={exports}",
    ]
    if verbose:
        print(" ".join(cmd))
    subprocess.run(cmd, check=True)
    tmp.replace(target)
    return target


def core_link_kwargs(package_dir: Path, standalone: bool) -> dict[str, list[str]]:
    """``ffi.set_source`` arguments that link an extension of package_dir with libptcore.so and find it at run
    time relative to the extension, wherever the package is installed."""
    rel = os.path.relpath(CORE_DIR, package_dir)
    origin = "$ORIGIN" if rel == "." else f"$ORIGIN/{rel}"
    return {
        "libraries": ["ptcore"],
        "library_dirs": [source_path(CORE_DIR, standalone)],
        "extra_link_args": [f"-Wl,-rpath,{origin}"],
    }


def header_cdef(path: Path) -> str:
    """A public header as cffi's cdef accepts it: no includes, guards or static asserts, so the C API is
    declared once, in the header. A ``#define NAME (expression)`` becomes ``#define NAME ...`` (cffi takes
    only plain numbers; ``...`` asks the compiler for the value). An ``#ifdef Py_PYTHON_H`` block is left out:
    it is code for the extension itself (``c_engine/src/py_glue.h``), not a declaration."""
    out = []
    in_python_block = False
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if in_python_block:
            in_python_block = not stripped.startswith("#endif")
            continue
        if stripped.startswith("#ifdef Py_PYTHON_H"):
            in_python_block = True
            continue
        if stripped.startswith(("#include", "#ifndef", "#endif", "_Static_assert")):
            continue
        if re.match(r"#define\s+\w+_H\s*$", stripped):
            continue
        define = re.match(r"(#define\s+\w+)\s+\(.*\)\s*(/\*.*\*/)?$", stripped)
        if define:
            line = f"{define.group(1)} ..."
        out.append(line)
    return "\n".join(out)


def source_path(path: Path, standalone: bool) -> str:
    """setuptools (``pip install -e .``) runs from the project root and insists on relative paths;
    ``python X/_build.py`` (``standalone``) compiles inside a scratch folder and needs absolute ones."""
    return str(path if standalone else path.relative_to(ROOT))


def compile_in_place(ffi: FFI, package_dir: Path, stem: str, verbose: bool) -> Path:
    """Compiles ``ffi`` and moves the extension next to the package's sources, replacing any older build of
    it (an editable install imports it from there)."""
    import os

    os.chdir(ROOT)
    build_dir = ROOT / "build" / f"cffi-{package_dir.name}"
    build_dir.mkdir(parents=True, exist_ok=True)
    so = Path(ffi.compile(tmpdir=str(build_dir), verbose=verbose))
    for stale in package_dir.glob(f"{stem}*.so"):
        stale.unlink()
    target = package_dir / so.name
    so.replace(target)
    return target


if __name__ == "__main__":
    built = build_core(verbose="-v" in sys.argv)
    print(f"built {built.relative_to(ROOT)}")
