"""What the project's two cffi build scripts share (``c_engine/_build.py``, ``hotpath/_build.py``).

Loaded by file path, not imported as ``c_engine._cffi_support``: setuptools runs the build scripts before the
package (and numpy, which the package needs) is installed. Standard library and cffi only.
"""

from __future__ import annotations

import re
from pathlib import Path

from cffi import FFI

__all__ = ["compile_in_place", "header_cdef", "source_path"]

ROOT = Path(__file__).resolve().parents[1]


def header_cdef(path: Path) -> str:
    """A public header as cffi's cdef accepts it: no includes, guards or static asserts, so the C API is
    declared once, in the header."""
    out = []
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith(("#include", "#ifndef", "#endif", "_Static_assert")):
            continue
        if re.match(r"#define\s+\w+_H\s*$", stripped):
            continue
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
