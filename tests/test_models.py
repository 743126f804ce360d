"""The network: every block, the genotype, and parity with the authors' released outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import OFFICIAL, official_checkpoint
from jsnet_edge.errors import GenotypeError, ModelError
from jsnet_edge.metrics import psnr
from jsnet_edge.models import ATTENTIONS, OPS, PAPER, Genotype, JSNet, load_official
from jsnet_edge.models.complexity import count_macs, count_parameters
from jsnet_edge.models.fileinfo import size_problem
from jsnet_edge.models.genotype import resolve_genotype
from jsnet_edge.models.modelfile import load_model, save_model
from jsnet_edge.train.trainer import init_from

TINY = Genotype(ops=("srb",), attentions=("cea",), width=8, cells=1, nodes=1)


@pytest.mark.parametrize("name", list(OPS))
def test_operation_shape_and_gradient(name):
    block = OPS[name](8)
    x = torch.randn(2, 8, 20, 23, requires_grad=True)
    y = block(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    if name == "none":
        assert float(x.grad.abs().sum()) == 0.0
    else:
        assert float(x.grad.abs().sum()) > 0.0
        for p in block.parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all()


@pytest.mark.parametrize("name", list(ATTENTIONS))
def test_attention_shape_and_gradient(name):
    block = ATTENTIONS[name](32)
    x = torch.randn(2, 32, 21, 18, requires_grad=True)
    y = block(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    params = list(block.parameters())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)
    if name not in ("none", "skip_connect"):
        assert params and any(float(p.grad.abs().sum()) > 0 for p in params)


@pytest.mark.parametrize(
    "task,scale", [("sr-x2", 2), ("sr-x3", 3), ("sr-x4", 4), ("denoise", 1), ("jpeg", 1)]
)
@pytest.mark.parametrize("colors", [1, 3])
def test_network_shapes_every_task(task, scale, colors):
    net = JSNet(TINY, task=task, colors=colors)
    x = torch.rand(1, colors, 17, 19) * 255
    y = net(x)
    assert y.shape == (1, colors, 17 * scale, 19 * scale)
    y.mean().backward()
    assert net.head.weight.grad is not None


def test_x1_tail_is_a_residual():
    net = JSNet(TINY, task="denoise", colors=3)
    torch.nn.init.zeros_(net.tail[-1].weight)
    torch.nn.init.zeros_(net.tail[-1].bias)
    x = torch.rand(1, 3, 20, 20) * 255
    assert torch.equal(net(x), x)


def test_genotype_round_trips():
    g = Genotype(
        ops=("rb", "sep_conv_3x3", "dil", "lrb", "skip", "none"),
        attentions=("pa", "ca", "cca", "sa", "sa2", "esab"),
        width=12,
        cells=2,
    )
    assert Genotype.from_json(g.to_json()) == g
    assert Genotype.from_string(g.to_string()) == g
    assert Genotype.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    assert resolve_genotype("paper") == PAPER
    assert resolve_genotype(PAPER.to_string()) == PAPER
    assert PAPER.to_string() == "C16-L5-N3:rb,lrb,rb,rb,srb,rb:esab,cea,cea,esab,skip,cea"


def test_genotype_file(tmp_path):
    p = tmp_path / "g.json"
    p.write_text(json.dumps({"genotype": TINY.to_dict(), "note": "from a search run"}))
    assert resolve_genotype(p) == TINY


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(ops=("rb",) * 5, attentions=("cea",) * 6), "need 6 edges"),
        (dict(ops=("conv9",) + ("rb",) * 5, attentions=("cea",) * 6), "unknown op"),
        (dict(ops=("rb",) * 6, attentions=("cea",) * 6, width=10), "multiple of 4"),
        (dict(ops=("rb",) * 6, attentions=("cea",) * 6, cells=0), "cells"),
    ],
)
def test_genotype_rejects(bad, match):
    with pytest.raises(GenotypeError, match=match):
        Genotype(**bad)


def test_genotype_rejects_unknown_keys_and_strings():
    with pytest.raises(GenotypeError, match="unknown genotype keys"):
        Genotype.from_dict({**TINY.to_dict(), "depth": 3})
    with pytest.raises(GenotypeError, match="cannot read genotype string"):
        Genotype.from_string("C16:rb")
    with pytest.raises(GenotypeError, match="unknown genotype"):
        resolve_genotype("darts_v2")


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_parity_with_the_authors_outputs(scale):
    import cv2

    ckpt = official_checkpoint(scale)
    net = load_official(ckpt, scale)
    lr = cv2.cvtColor(cv2.imread(str(OFFICIAL / "parity_lr.png")), cv2.COLOR_BGR2RGB)
    x = torch.from_numpy(lr.astype(np.float32)).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = net(x)[0].permute(1, 2, 0).numpy()
    ref = np.load(OFFICIAL / f"parity_sr_x{scale}.npy")
    assert y.shape == ref.shape
    assert np.abs(y - ref).max() <= 1e-3


def test_parameter_counts_match_the_checkpoints(official_x2):
    assert count_parameters(official_x2) == 476_443
    # Same architecture, built from the genotype alone.
    assert count_parameters(JSNet(PAPER, task="sr-x4")) == 513_435
    assert count_parameters(JSNet(PAPER, task="sr-x3")) == 522_683
    macs = count_macs(official_x2, (720, 1280))
    assert 100e9 < macs < 110e9  # the paper reports 109 G for x2


def test_official_wrong_scale_and_wrong_file(tmp_path):
    ckpt = official_checkpoint(2)
    with pytest.raises(ModelError, match="x2 checkpoint, not x4"):
        load_official(ckpt, 4)
    bad = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, bad)
    with pytest.raises(ModelError, match="not a JSNet checkpoint"):
        load_official(bad, 2)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x80\x04 definitely not a checkpoint")
    with pytest.raises(ModelError, match="cannot read"):
        load_official(junk, 2)


def test_model_file_round_trip(tmp_path, official_x2, photo):
    path = save_model(official_x2, tmp_path / "x2.safetensors")
    again = load_model(path)
    assert again.genotype == PAPER and again.task == "sr-x2" and again.colors == 3
    assert again.provenance["checkpoint"] == "jsnet_sr_x2_official.pt"
    x = torch.rand(1, 3, 24, 24) * 255
    with torch.no_grad():
        assert torch.equal(again(x), official_x2(x))
    # fp16 storage (the zoo's) costs nothing visible on a photograph.
    half = load_model(save_model(official_x2, tmp_path / "half.safetensors", half=True))
    x = torch.from_numpy(photo[:64, :64].astype(np.float32)).permute(2, 0, 1)[None]
    with torch.no_grad():
        a, b = half(x)[0].permute(1, 2, 0).numpy(), official_x2(x)[0].permute(1, 2, 0).numpy()
    assert psnr(a, b, mode="rgb") > 50


def test_model_file_has_no_pickle(tmp_path):
    path = save_model(JSNet(TINY, task="denoise"), tmp_path / "m.safetensors")
    head = path.read_bytes()[:8]
    n = int.from_bytes(head, "little")
    header = json.loads(path.read_bytes()[8 : 8 + n])
    assert header["__metadata__"]["task"] == "denoise"
    assert b"\x80\x04" not in path.read_bytes()[: 8 + n]  # no pickle protocol marker


def test_model_file_rejects_bad_files(tmp_path):
    from safetensors.torch import save_file

    trunc = tmp_path / "trunc.safetensors"
    good = save_model(JSNet(TINY, task="denoise"), tmp_path / "ok.safetensors")
    trunc.write_bytes(good.read_bytes()[:100])
    with pytest.raises(ModelError, match="corrupt"):
        load_model(trunc)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(ModelError, match="not a jsnet-edge model"):
        load_model(foreign)
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "missing.safetensors")


@pytest.mark.parametrize("task,scale", [("denoise", 1), ("sr-x2", 2), ("sr-x3", 3), ("sr-x4", 4)])
def test_unshuffled_network_runs_its_body_at_half_resolution(task, scale):
    g = Genotype.from_string("C8-L1-N1-S2:srb:esab")
    assert g.unshuffle == 2 and Genotype.from_string(g.to_string()) == g
    assert Genotype.from_json(g.to_json()) == g
    net = JSNet(g, task=task)
    assert net.head.in_channels == 12 and net.size_multiple == 2 and net.min_size >= 30
    seen = []
    net.cells[0].register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[-2:])))
    y = net(torch.rand(1, 3, 33, 35) * 255)  # odd sides: padded, then cropped back
    assert y.shape == (1, 3, 33 * scale, 35 * scale) and seen == [(17, 18)]
    y.mean().backward()
    assert net.head.weight.grad is not None
    # Older genotype files (without the field) are the paper's layout.
    assert (
        Genotype.from_dict({k: v for k, v in TINY.to_dict().items() if k != "unshuffle"}).unshuffle
        == 1
    )


def test_unshuffled_sr_starts_as_a_bilinear_upscale():
    """Anchored SR: the tail learns a residual over a bilinear upscale of the input."""
    net = JSNet(Genotype.from_string("C8-L1-N1-S2:srb:cea"), task="sr-x3")
    x = torch.rand(1, 3, 20, 22) * 255
    up = torch.nn.functional.interpolate(x, scale_factor=3, mode="bilinear", align_corners=False)
    assert net.anchored and torch.allclose(net(x), up)


def test_a_plain_fusion_in_place_of_the_csfm_is_a_genotype_field(tmp_path):
    """`-P` (csfm false): a 1x1 convolution replaces the cross-scale fusion, for real-time
    budgets; the field round-trips, old files keep their form, and a CSFM model starts one
    with every tensor but the CSFM's."""
    full = "C8-L1-N2-S2:skip,rb,rb:skip,skip,skip"
    plain = "C8-L1-N2-S2-P:skip,rb,rb:skip,skip,skip"
    g = Genotype.from_string(plain)
    assert not g.csfm and g.to_string() == plain and Genotype.from_json(g.to_json()) == g
    assert g.to_dict()["csfm"] is False and "csfm" not in Genotype.from_string(full).to_dict()
    assert Genotype.from_string(plain.replace("-P:", "-P-R:")).recurrent
    with pytest.raises(GenotypeError, match="csfm must be true or false"):
        Genotype.from_dict({**g.to_dict(), "csfm": "no"})
    assert "csfm" in size_problem({**g.to_dict(), "csfm": 0})
    with pytest.raises(GenotypeError, match="-P for a plain fusion"):
        Genotype.from_string(plain.replace("-S2-P:", "-P-S2:"))

    torch.manual_seed(0)
    ref = JSNet(Genotype.from_string(full), task="denoise").eval()
    net = JSNet(g, task="denoise").eval()
    assert isinstance(net.csfm, torch.nn.Conv2d) and net.csfm.out_channels == 16
    assert count_macs(net) < 0.8 * count_macs(ref)
    copied = init_from(net, str(save_model(ref, tmp_path / "full.safetensors")))
    want = [k for k in ref.state_dict() if "_mean." not in k and not k.startswith("csfm.")]
    assert copied == len(want)
    with torch.no_grad():
        net.tail[0].weight.normal_(0, 0.05)
        x = torch.rand(1, 3, 40, 48) * 255
        again = load_model(save_model(net, tmp_path / "plain.safetensors")).eval()
        assert not again.genotype.csfm and torch.equal(again(x), net(x))
