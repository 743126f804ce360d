"""`jsnet-edge doctor`: through the real command line, as JSON and as text, and with the
optional runtimes hidden (an install without the extras must still get its diagnosis)."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

from conftest import run_cli
from jsnet_edge._version import __version__
from jsnet_edge.doctor import CPU_FEATURES, cpu_flags

OPTIONAL = ("openvino", "tensorrt", "tensorrt_rtx", "av", "ray", "nncf")


def fill_cache(root: Path) -> None:
    """A cache as runs leave it: an auto choice, an exported graph, an authors' model."""
    (root / "auto").mkdir(parents=True)
    (root / "auto" / "abc.json").write_text(json.dumps({"choice": "onnxruntime", "ms": {}}))
    (root / "onnx").mkdir()
    (root / "onnx" / "abc.onnx").write_bytes(b"\0" * 1000)
    (root / "authors").mkdir()
    (root / "authors" / "authors-x2.safetensors").write_bytes(b"\0" * 10)


def test_doctor_json_says_what_is_here(tmp_path, monkeypatch):
    monkeypatch.setenv("JSNET_EDGE_CACHE", str(tmp_path / "cache"))
    fill_cache(tmp_path / "cache")
    facts = json.loads(run_cli("doctor", "--json").stdout)
    assert facts["jsnet_edge"] == __version__
    assert facts["python"].startswith(".".join(map(str, sys.version_info[:2])))
    assert facts["runtimes"]["torch"] == importlib.metadata.version("torch")
    assert facts["runtimes"]["onnxruntime"] is not None
    flags = cpu_flags()
    if flags:
        want = {k: any(f in flags for f in v) for k, v in CPU_FEATURES.items()}
        assert facts["cpu"]["features"] == want
    assert facts["threads"]["torch"] >= 1
    assert facts["gpu"]["count"] >= 0
    cache = facts["cache"]
    assert cache["path"] == str(tmp_path / "cache")
    assert cache["auto_choices"] == {"onnxruntime": 1} and cache["onnx"] == 1
    assert cache["authors_models"] == ["authors-x2"] and cache["bytes"] >= 1010
    assert facts["auto_on_cpu"]["backend"] in ("openvino", "onnxruntime")


def test_doctor_text_fits_one_screen():
    out = run_cli("doctor").stdout
    lines = out.splitlines()
    assert len(lines) <= 30 and max(map(len, lines)) <= 120
    for word in ("runtimes:", "torch", "cpu:", "features:", "gpu:", "tensorrt:", "cache:"):
        assert word in out


def test_doctor_works_without_the_optional_runtimes(tmp_path):
    hide = "".join(f"sys.modules[{m!r}] = None; " for m in OPTIONAL)
    code = f"import sys; {hide}from jsnet_edge.cli import main; main()"
    for args in (["doctor", "--json"], ["doctor"]):
        proc = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        if args[-1] == "--json":
            facts = json.loads(proc.stdout)
            assert all(facts["runtimes"][m] is None for m in OPTIONAL)
            assert facts["tensorrt"] == {"classic": None, "rtx": None}
            assert facts["auto_on_cpu"]["backend"] == "onnxruntime"
        else:
            assert "openvino     not installed (pip install 'jsnet-edge[openvino]')" in proc.stdout
