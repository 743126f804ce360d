"""Training: loss goes down, runs resume after an interruption, the card is written."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import default_sigint, run_cli
from jsnet_edge.degradations import Degradation
from jsnet_edge.errors import OptionError
from jsnet_edge.models import load_model
from jsnet_edge.train.data import PatchSampler
from jsnet_edge.train.trainer import TrainConfig, train

TINY = "C8-L1-N1:srb:cea"


def read_log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_few_steps_lower_the_loss_and_write_a_card(photo_dir, tmp_path):
    cfg = TrainConfig(
        task="denoise",
        data=photo_dir,
        val=photo_dir,
        out=tmp_path / "m.safetensors",
        steps=60,
        genotype=TINY,
        batch=4,
        patch=32,
        sigma=(25.0, 25.0),
        lr=2e-3,
        val_every=60,
        val_crop=64,
        command="test",
    )
    result = train(cfg, progress=False)
    log = read_log(cfg.log_path)
    first = np.mean([e["loss"] for e in log[:10]])
    last = np.mean([e["loss"] for e in log[-10:]])
    assert last < 0.9 * first
    # The denoiser beats its noisy input on held-out crops after 60 steps.
    assert log[-1]["val_psnr"] > log[-1]["val_input_psnr"]
    model = load_model(result.out)
    assert model.task == "denoise" and model.genotype.to_string() == TINY
    assert model.provenance["steps"] == 60 and model.provenance["command"] == "test"
    card = result.card.read_text()
    assert "denoise" in card and "Gaussian noise, sigma 25" in card and "val_psnr" not in card
    assert f"{result.val_psnr:.2f} dB" in card


@pytest.mark.parametrize(
    "sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"]
)
def test_interrupted_run_resumes_from_its_checkpoint(photo_dir, tmp_path, sig, code):
    """Ctrl-C, or a scheduler's SIGTERM, leaves a checkpoint that --resume continues."""
    out = tmp_path / "sr.safetensors"
    args = [
        "-m",
        "jsnet_edge",
        "train",
        "--task",
        "sr-x2",
        "--data",
        photo_dir,
        "--genotype",
        TINY,
        "--steps",
        "100000",
        "--batch",
        "2",
        "--patch",
        "32",
        "--checkpoint-every",
        "5",
        "--out",
        out,
    ]
    # Ctrl-C as a terminal gives it, even where the test runner was started with SIGINT
    # ignored (a background job of a non-interactive shell).
    proc = subprocess.Popen(
        [sys.executable, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    ckpt = out.with_name("sr.ckpt.safetensors")
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code and ckpt.exists() and not out.exists()
    assert ("terminated" if sig == signal.SIGTERM else "interrupted") in err.splitlines()[-1]
    stopped_at = len(read_log(out.with_name("sr.train.jsonl")))
    assert 0 < stopped_at < 100000
    # Without --resume the run refuses to clobber the checkpoint.
    refused = run_cli(*args[2:], check=False)
    assert refused.returncode == 1 and "--resume" in refused.stderr
    # Continue, shortened to a few more steps.
    args[args.index("100000")] = str(stopped_at + 6)
    run_cli(*args[2:], "--resume")
    steps = [e["step"] for e in read_log(out.with_name("sr.train.jsonl"))]
    assert steps == list(range(1, stopped_at + 7))
    assert load_model(out).provenance["steps"] == stopped_at + 6


def test_init_from_compatible_weights(photo_dir, tmp_path):
    first = train(
        TrainConfig(
            task="sr-x2",
            data=photo_dir,
            out=tmp_path / "a.safetensors",
            steps=3,
            genotype=TINY,
            batch=2,
            patch=32,
        ),
        progress=False,
    )
    # A denoiser starts from the SR body: every tensor but the tail matches.
    cfg = TrainConfig(
        task="denoise",
        data=photo_dir,
        out=tmp_path / "b.safetensors",
        steps=1,
        genotype=TINY,
        batch=2,
        patch=32,
        init=str(first.out),
        lr=1e-9,
    )
    train(cfg, progress=False)
    a, b = load_model(first.out), load_model(cfg.out)
    assert np.allclose(a.head.weight.detach(), b.head.weight.detach(), atol=1e-4)


def test_patches_follow_the_eval_degradation(photo_dir):
    s = PatchSampler(photo_dir, Degradation("sr-x3"), colors=3, patch=48, seed=1)
    x, y = s.batch(4)
    assert x.shape == (4, 3, 16, 16) and y.shape == (4, 3, 48, 48)
    j = PatchSampler(photo_dir, Degradation("jpeg", quality=(10, 10)), colors=1, patch=32)
    x, y = j.batch(2)
    assert x.shape == y.shape == (2, 1, 32, 32) and not np.array_equal(x, y)


def test_bad_training_options(photo_dir, tmp_path):
    with pytest.raises(OptionError, match="multiple of 2"):
        TrainConfig(task="sr-x2", data=photo_dir, out=tmp_path / "m.safetensors", steps=1, patch=33)
    with pytest.raises(OptionError, match="does not exist"):  # checked when the run starts
        train(
            TrainConfig(
                task="denoise", data=tmp_path / "none", out=tmp_path / "m.safetensors", steps=1
            ),
            progress=False,
        )
    with pytest.raises(OptionError, match="sigma range"):
        TrainConfig(
            task="denoise",
            data=photo_dir,
            out=tmp_path / "m.safetensors",
            steps=1,
            sigma=(30.0, 10.0),
        )
    r = run_cli(
        "train",
        "--task",
        "sr-x2",
        "--data",
        photo_dir,
        "--steps",
        "1",
        "--sigma",
        "25",
        "--out",
        tmp_path / "m.safetensors",
        check=False,
    )
    assert r.returncode == 1 and "--sigma applies to --task denoise" in r.stderr


def test_resume_from_a_checkpoint_written_before_the_unshuffle_field(photo_dir, tmp_path):
    """Checkpoints of earlier versions store the genotype without `unshuffle`: they resume."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    cfg = TrainConfig(
        task="sr-x2",
        data=photo_dir,
        out=tmp_path / "m.safetensors",
        steps=2,
        genotype=TINY,
        batch=2,
        patch=32,
        checkpoint_every=2,
        val=photo_dir,
    )
    train(cfg, progress=False)
    ckpt = cfg.checkpoint_path
    with safe_open(str(ckpt), framework="pt") as f:
        header = f.metadata()
    meta = json.loads(header["meta"])
    del meta["config"]["genotype"]["unshuffle"]
    header["meta"] = json.dumps(meta)
    save_file(load_file(str(ckpt)), str(ckpt), metadata=header)
    cfg = dataclasses.replace(cfg, steps=4, resume=True)
    assert train(cfg, progress=False).steps == 4
    # A finished run resumed again (a resumable script run twice) rewrites its model.
    again = train(cfg, progress=False)
    assert again.steps == 4 and again.val_psnr is not None and again.card.is_file()
