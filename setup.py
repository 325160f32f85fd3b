"""What goes into pushcut's wheel is discovered, never listed by hand.

pyproject.toml maps the top-level folders to subpackages of the import root ``pushcut``
(``[tool.setuptools.package-dir]``). Below each mapped folder, every folder holding an ``__init__.py`` is a package
(named by its path), and every other file in a package folder (not Python source, not bytecode, not hidden) is its
package data. A new subpackage or data file therefore ships without editing anything; tests/test_packaging.py builds
a wheel to check it. Everything else (metadata, dependencies, the mapping itself) is in pyproject.toml.
"""

from __future__ import annotations

import sys
from pathlib import Path

from setuptools import setup

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (build-system requires tomli there)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent
SKIPPED = {"__pycache__"}
NOT_DATA = {".py", ".pyc", ".pyo"}


def package_folders(package_dir: dict[str, str]) -> dict[str, Path]:
    """Every package under the mapped folders, by dotted name -> folder."""
    found: dict[str, Path] = {}
    for name, folder in package_dir.items():
        base = ROOT / folder
        if not (base / "__init__.py").is_file():
            raise SystemExit(f"pyproject.toml maps {name!r} to {folder!r}, which holds no __init__.py")
        for init in sorted(base.rglob("__init__.py")):
            relative = init.parent.relative_to(base).parts
            if any(part in SKIPPED or part.startswith(".") for part in relative):
                continue
            found.setdefault(".".join((name, *relative)), init.parent)
    return found


def package_data(packages: dict[str, Path]) -> dict[str, list[str]]:
    """Non-Python files of each package folder (its subpackages' files belong to them), relative to the folder."""
    folders = set(packages.values())
    data: dict[str, list[str]] = {}
    for name, folder in packages.items():
        files = []
        for path in sorted(folder.rglob("*")):
            parts = path.relative_to(folder).parts
            if not path.is_file() or path.suffix in NOT_DATA or any(p in SKIPPED or p.startswith(".") for p in parts):
                continue
            if any(parent in folders for parent in path.parents if parent != folder and folder in parent.parents):
                continue  # inside a subpackage
            files.append(path.relative_to(folder).as_posix())
        if files:
            data[name] = files
    return data


MAPPING = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
PACKAGES = package_folders(MAPPING)
setup(packages=sorted(PACKAGES), package_data=package_data(PACKAGES))
