"""The real `jsnet-edge` command, end to end, on scikit-image photographs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from skimage import data

from conftest import official_checkpoint, run_cli
from jsnet_edge import __version__
from jsnet_edge.images import load_image
from jsnet_edge.models import Genotype, JSNet, save_model

TINY = Genotype(ops=("srb",), attentions=("cea",), width=8, cells=1, nodes=1)


def write_png(path, rgb):
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    write_png(d / "astronaut.png", data.astronaut()[100:196, 150:270])
    write_png(d / "coffee.png", data.coffee()[100:180, 200:300])
    write_png(d / "camera.png", data.camera()[200:264, 200:280])
    return d


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {
        task: save_model(JSNet(TINY, task=task), d / f"{task}.safetensors")
        for task in ("sr-x2", "denoise", "jpeg")
    }


@pytest.fixture(scope="module")
def x2_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("x2") / "x2.safetensors"
    run_cli("convert-official", official_checkpoint(2), "--scale", "2", "-o", out)
    return out


def test_version():
    assert run_cli("--version").stdout.strip() == f"jsnet-edge {__version__}"


def test_help_names_the_extras_it_needs():
    # typer renders help as rich markup, where a bare [qat] is a tag and vanishes
    for command in ("calibrate", "profile", "search"):
        assert "[qat]" in run_cli(command, "--help").stdout, command


def test_convert_info_and_restore_a_photograph(x2_model, photos, tmp_path):
    out = run_cli("info", x2_model).stdout
    assert "476,443" in out and "sr-x2" in out
    facts = json.loads(run_cli("info", x2_model, "--json").stdout)
    assert facts["parameters"] == 476_443 and 100e9 < facts["macs_720p"] < 110e9
    dst = tmp_path / "astronaut_x2.png"
    run_cli("image", photos / "astronaut.png", "-o", dst, "--model", x2_model)
    sr, lr = load_image(dst), load_image(photos / "astronaut.png")
    assert sr.shape == (2 * lr.shape[0], 2 * lr.shape[1], 3)
    # Sanity: downscaling the SR output gives back (nearly) the input.
    back = cv2.resize(sr, (lr.shape[1], lr.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(back.astype(int) - lr.astype(int)).mean() < 4


def test_folder_in_folder_out(tiny_models, photos, tmp_path):
    out = tmp_path / "restored"
    proc = run_cli("image", photos, "-o", out, "--model", tiny_models["denoise"])
    assert "3 done, 0 skipped" in proc.stdout
    for name in ("astronaut.png", "coffee.png", "camera.png"):
        assert load_image(out / name).shape == load_image(photos / name).shape
    # A re-run skips what is done (existing outputs are kept unless --overwrite).
    before = (out / "coffee.png").stat().st_mtime_ns
    proc = run_cli("image", photos, "-o", out, "--model", tiny_models["denoise"])
    assert "0 done, 3 skipped" in proc.stdout
    assert (out / "coffee.png").stat().st_mtime_ns == before
    proc = run_cli("image", photos, "-o", out, "--model", tiny_models["denoise"], "--overwrite")
    assert "3 done, 0 skipped" in proc.stdout


def test_eval_json(tiny_models, photos):
    rep = json.loads(
        run_cli(
            "eval", "--model", tiny_models["jpeg"], "--data", photos, "--quality", "20", "--json"
        ).stdout
    )
    assert len(rep["rows"]) == 3 and rep["degradation"] == "JPEG quality 20"
    assert all(np.isfinite(r["psnr"]) and 0 < r["ssim"] <= 1 for r in rep["rows"])
    table = run_cli("eval", "--model", tiny_models["sr-x2"], "--data", photos).stdout
    assert "bicubic PSNR" in table and "mean" in table


def error_of(*args):
    proc = run_cli(*args, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_bad_images(tiny_models, photos, tmp_path):
    m = tiny_models["denoise"]
    assert "does not exist" in error_of(
        "image", tmp_path / "nope.png", "-o", tmp_path / "o.png", "--model", m
    )
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes((photos / "coffee.png").read_bytes()[:200])
    assert "corrupt" in error_of("image", corrupt, "-o", tmp_path / "o.png", "--model", m)
    text = tmp_path / "notes.txt"  # a list of paths, one of which is missing
    text.write_text("hello")
    assert "(listed in" in error_of("image", text, "-o", tmp_path / "out", "--model", m)
    doc = tmp_path / "notes.doc"
    doc.write_text("hello")
    assert "unsupported image type" in error_of(
        "image", doc, "-o", tmp_path / "o.png", "--model", m
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no images" in error_of("image", empty, "-o", tmp_path / "out", "--model", m)
    assert "is one of the inputs" in error_of(
        "image", photos / "coffee.png", "-o", photos / "coffee.png", "--model", m, "--overwrite"
    )


def test_bad_checkpoints_and_models(tiny_models, photos, tmp_path):
    ckpt = official_checkpoint(2)
    assert "x2 checkpoint, not x3" in error_of(
        "convert-official", ckpt, "--scale", "3", "-o", tmp_path / "m.safetensors"
    )
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    assert "cannot read" in error_of(
        "convert-official", junk, "--scale", "2", "-o", tmp_path / "m.safetensors"
    )
    other = tmp_path / "other.pt"
    import torch

    torch.save({"body.0.weight": torch.zeros(4, 3, 3, 3)}, other)
    assert "not a JSNet checkpoint" in error_of(
        "convert-official", other, "--scale", "2", "-o", tmp_path / "m.safetensors"
    )
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(tiny_models["sr-x2"].read_bytes()[:300])
    assert "corrupt" in error_of("info", trunc)
    assert "convert it with" in error_of(
        "image", photos / "coffee.png", "-o", tmp_path / "o.png", "--model", ckpt
    )
    # A model used for the wrong task.
    msg = error_of(
        "image",
        photos / "coffee.png",
        "-o",
        tmp_path / "o.png",
        "--model",
        tiny_models["sr-x2"],
        "--task",
        "denoise",
    )
    assert "is for sr-x2, not denoise" in msg
    assert "applies to denoising" in error_of(
        "eval", "--model", tiny_models["sr-x2"], "--data", photos, "--sigma", "25"
    )
    assert "unknown task" in error_of(
        "image", photos / "coffee.png", "-o", tmp_path / "o.png", "--task", "deblur"
    )
