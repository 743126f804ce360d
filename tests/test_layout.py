"""The floor plan holds: layers import only downwards (import-linter), the code is
formatted and linted (ruff), library files stay small, and one module each exports ONNX
and builds TensorRT networks."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jsnet_edge"


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
    return found


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True)


def test_layers_import_only_downwards():
    r = run(tool("lint-imports"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def test_code_is_formatted_and_linted():
    fmt = run(tool("ruff"), "format", "--check", "jsnet_edge", "tests", "benchmarks")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    lint = run(tool("ruff"), "check", "jsnet_edge", "tests", "benchmarks")
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_no_library_file_over_500_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 500
    }
    assert not long, f"split these files: {long}"


@pytest.mark.parametrize(
    ("pattern", "home"),
    [
        (r"torch\.onnx\.export\(", "jsnet_edge/export/onnx.py"),
        (r"\.create_network\(", "jsnet_edge/export/tensorrt.py"),
        (r"\.build_serialized_network\(", "jsnet_edge/export/tensorrt.py"),
    ],
)
def test_one_exporter_and_one_engine_builder(pattern, home):
    users = sorted(
        str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if re.search(pattern, p.read_text())
    )
    assert users == [home]
