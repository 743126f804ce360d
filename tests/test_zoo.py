"""Every bundled model loads, has a card, and restores a photograph better than its input."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from conftest import run_cli
from jsnet_edge.degradations import add_gaussian_noise, bicubic_downscale, imresize, jpeg_compress
from jsnet_edge.metrics import psnr
from jsnet_edge.restorer import Restorer
from jsnet_edge.zoo import DEFAULT_FOR_TASK, ZOO


def test_task_defaults_point_at_zoo_models_of_that_task():
    assert "denoise" in DEFAULT_FOR_TASK
    for task, name in DEFAULT_FOR_TASK.items():
        assert ZOO[name].task == task


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_model_restores_a_photograph(name):
    entry = ZOO[name]
    assert entry.path.stat().st_size <= 3_000_000
    card = entry.card()
    for word in ("task", "data", "steps", "machine", "Command"):
        assert word in card
    r = Restorer.from_pretrained(name, color_order="rgb")
    assert r.task == entry.task
    clean = data.coffee()[100:228, 200:328]
    if r.colors == 1:
        clean = data.camera()[200:328, 200:328]
    if entry.task == "denoise":
        noisy = add_gaussian_noise(clean, 25, seed=1)
        out = r(noisy / 255.0) * 255.0
        assert psnr(out, clean, mode="rgb") > psnr(np.clip(noisy, 0, 255), clean, mode="rgb") + 3
    elif entry.task == "jpeg":
        jpg = jpeg_compress(clean, 10)
        assert psnr(r(jpg), clean, mode="rgb") > psnr(jpg, clean, mode="rgb") + 0.5
    else:
        s = r.scale
        lr = bicubic_downscale(clean, s)
        assert psnr(r(lr), clean, shave=s) > psnr(imresize(lr, s), clean, shave=s) + 0.5


def test_models_command_lists_cards():
    out = run_cli("models").stdout
    assert all(name in out for name in ZOO)
    assert "Command" in run_cli("models", "denoise").stdout
