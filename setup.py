"""Build script: only the package_dir mapping and the Cython extensions.

Metadata and build requirements live in pyproject.toml. ``agents/``, ``dashboards/`` and
``ext/`` install as ``twin.agents``, ``twin.dashboards`` and ``twin.ext`` so that ``twin``
stays the only top-level import name.
"""

from __future__ import annotations

import sys
from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).parent

PACKAGE_DIR = {
    "twin": "twin",
    "twin.agents": "agents",
    "twin.dashboards": "dashboards",
    "twin.ext": "ext",
}


def _packages() -> list[str]:
    """Every folder below the mapped ones, named by its import path: the packages, and the
    folders of package data (``twin.dashboards.assets``, ``twin.city.data``), which
    setuptools wants listed too."""
    found = []
    for name, folder in PACKAGE_DIR.items():
        root = HERE / folder
        for sub in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
            rel = sub.relative_to(root)
            if any(part.startswith((".", "_")) for part in rel.parts):
                continue  # __pycache__, hidden folders
            found.append(".".join((name, *rel.parts)))
    return sorted(set(found))


def _extensions() -> list[Extension]:
    """One extension per ``ext/*.pyx`` kernel, compiled against numpy."""
    sources = sorted((HERE / "ext").glob("*.pyx"))
    if not sources:  # a wheel without its kernels would fail at run time, far from here
        raise SystemExit("ext/*.pyx: the Cython kernels' sources are missing (see MANIFEST.in)")
    import numpy
    from Cython.Build import cythonize

    # OpenMP runs independent searches (one per source or target) on every core.
    openmp = ["-fopenmp"] if sys.platform.startswith("linux") else []
    exts = [
        Extension(
            f"twin.ext.{src.stem}",
            [str(src.relative_to(HERE))],
            include_dirs=[numpy.get_include()],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=["-O3", *openmp],
            extra_link_args=openmp,
        )
        for src in sources
    ]
    return cythonize(exts, language_level=3, compiler_directives={"embedsignature": True})


setup(package_dir=PACKAGE_DIR, packages=_packages(), ext_modules=_extensions())
