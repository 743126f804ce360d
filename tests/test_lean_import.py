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
