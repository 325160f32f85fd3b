"""The wheel holds every package and data file of the source tree. The suite runs on an editable install, where a
subpackage left out of the wheel still imports (its parent's folder is on the path), so a wheel is built here, from a
copy of the tree with a new subpackage and new data files added, and its contents are compared with the folders.
(scripts/test_wheel.sh installs the real wheel in fresh virtual environments and runs commands from it.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
MAPPING: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
SKIPPED = shutil.ignore_patterns("__pycache__", ".*", "*.pyc")


def _expected_files(tree: Path) -> set[str]:
    """What the wheel must hold, at its name under ``pushcut/``: every file (but bytecode and hidden ones) in a folder
    with an __init__.py under a mapped folder, and every non-Python file in the plain folders inside those."""
    expected = set()
    for name, folder in MAPPING.items():
        prefix = Path(*name.split("."))
        for here, dirs, files in os.walk(tree / folder):
            dirs[:] = [d for d in dirs if d != "__pycache__" and not d.startswith(".")]
            package = "__init__.py" in files
            for file in files:
                if file.startswith(".") or file.endswith(".pyc") or (not package and file.endswith(".py")):
                    continue
                expected.add((prefix / Path(here, file).relative_to(tree / folder)).as_posix())
    return expected


def _build_wheel(tree: Path, out: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(tree)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = out.glob("pushcut-*.whl")
    return zipfile.ZipFile(wheel).namelist()


def test_every_top_level_package_folder_is_mapped():
    folders = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    mapped = {folder for folder in MAPPING.values() if "/" not in folder}
    assert folders == mapped, (
        f"top-level folders with an __init__.py {sorted(folders - mapped)} are not mapped in pyproject.toml "
        f"[tool.setuptools.package-dir]; mapped folders without one: {sorted(mapped - folders)}"
    )


def test_the_wheel_holds_every_package_and_data_file_even_new_ones(tmp_path):
    tree = tmp_path / "src"
    tree.mkdir()
    for file in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / file, tree / file)
    for folder in {f.split("/")[0] for f in MAPPING.values()}:
        shutil.copytree(ROOT / folder, tree / folder, ignore=SKIPPED)
    # What a developer adds next: a subpackage, data files in a package and in a plain folder of one, a hidden file.
    (tree / "robot" / "new_tools" / "deeper").mkdir(parents=True)
    for init in ("robot/new_tools/__init__.py", "robot/new_tools/deeper/__init__.py"):
        (tree / init).write_text('"""new"""\n')
    (tree / "robot" / "new_tools" / "limits.json").write_text("{}\n")
    (tree / "sim" / "assets").mkdir()
    (tree / "sim" / "assets" / "table.xml").write_text("<mujoco/>\n")
    (tree / "robot" / "new_tools" / ".swp").write_text("editor junk\n")

    names = _build_wheel(tree, tmp_path / "wheel")
    packaged = {n for n in names if not n.split("/")[0].endswith(".dist-info")}
    expected = _expected_files(tree)
    assert {"pushcut/robot/tools/__init__.py", "pushcut/robot/tools/cli.py", "pushcut/dashboard/app.py",
            "pushcut/robot/new_tools/deeper/__init__.py", "pushcut/robot/new_tools/limits.json",
            "pushcut/sim/assets/table.xml"} <= expected  # fmt: skip
    assert not expected - packaged, f"missing from the wheel: {sorted(expected - packaged)}"
    assert not packaged - expected, f"in the wheel but not in a package folder: {sorted(packaged - expected)}"
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    wheel = next((tmp_path / "wheel").glob("*.whl"))
    assert "pushcut = pushcut.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
