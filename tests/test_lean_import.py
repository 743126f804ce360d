"""`import jsnet_edge` must stay light: no runtime extras, no OpenCV, no GPU."""

from __future__ import annotations

import subprocess
import sys


def test_import_pulls_in_no_heavy_dependency():
    code = (
        "import sys, jsnet_edge, jsnet_edge.models;"
        "heavy = [m for m in ('cv2', 'onnxruntime', 'openvino', 'tensorrt', 'torch_tensorrt',"
        " 'av', 'onnx') if m in sys.modules];"
        "import torch;"
        "assert not torch.cuda.is_initialized();"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_zoo_video_model_opens_without_torch_or_onnx():
    """The video command's start: a shipped real-time ONNX on OpenVINO needs neither torch
    nor the onnx package (importing onnx alone takes about a second here, torch two)."""
    code = (
        "import sys; from jsnet_edge.restorer import Restorer;"
        "r = Restorer('denoise-rt', backend='openvino', precision='fp32');"
        "print(','.join(m for m in ('torch', 'onnx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
