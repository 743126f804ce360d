"""Search: supernet, latency table, expected latency, derivation, the budget promise, CLI.

Latencies here are real: a tiny table measured with onnxruntime (one thread, which keeps
the numbers steadier on a shared machine) at 32x32, and whole networks measured the same way.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import run_cli
from jsnet_edge.errors import OptionError
from jsnet_edge.models import JSNet
from jsnet_edge.models.genotype import Genotype
from jsnet_edge.search import (
    ExpectedLatency,
    LatencyTable,
    LatencyTableError,
    ProfileConfig,
    SearchSpace,
    SuperNet,
    TimingMethod,
    fit_to_budget,
    parse_budget,
    parse_budgets,
    time_network,
)
from jsnet_edge.search.budget import ArchWeights, Fit, give_ups, grow_within_budget
from jsnet_edge.search.config import SearchConfig
from jsnet_edge.search.latency import att_key, block_for, op_key, space_keys
from jsnet_edge.search.mixed import MaskBank, MixedOp
from jsnet_edge.search.profile import load_or_measure
from jsnet_edge.search.space import ATT_CHOICES, ATT_NAMES, OP_CHOICES, OP_NAMES, parse_csfm

# the fusion before the tail is searched too (CSFM or plain), so both have table entries
SPACE = SearchSpace(widths=(4, 8), max_cells=2, nodes=2, csfm=(True, False))
SIZE = (32, 32)
FAST = TimingMethod(warmup=2, repeats=10, min_repeats=5, min_seconds=0.1, max_seconds=0.5)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private latency cache for this module (the CLI runs inherit it)."""
    root = tmp_path_factory.mktemp("xdg")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(root))
        yield root / "jsnet-edge" / "latency"


@pytest.fixture(scope="module")
def profile_cfg(cache) -> ProfileConfig:
    return ProfileConfig(input_size=SIZE, task="sr-x2", space=SPACE, timing=FAST, threads=1)


@pytest.fixture(scope="module")
def table(profile_cfg) -> LatencyTable:
    result = load_or_measure(profile_cfg)
    assert result.source == "measured" and result.measured_blocks == len(result.table.entries)
    return result.table


def measure(g: Genotype) -> float:
    return time_network(g, "sr-x2", 3, SIZE, "onnxruntime", "cpu", "fp32", FAST, threads=1).ms


def largest(table: LatencyTable, space: SearchSpace) -> Genotype:
    """The most expensive network of the space according to the table."""
    w = max(space.widths)
    op = max((o for o in OP_CHOICES if o != "skip_connect"), key=lambda o: table.ms(op_key(o, w)))
    att = max(
        (a for a in ATT_CHOICES if a != "skip_connect"), key=lambda a: table.ms(att_key(a, w))
    )
    return Genotype((op,) * space.edges, (att,) * space.edges, w, space.max_cells, space.nodes)


# --- supernet ---------------------------------------------------------------------------------


@pytest.mark.parametrize("task,out", [("sr-x2", 48), ("sr-x3", 72), ("denoise", 24)])
def test_supernet_forward_and_backward_reach_weights_and_every_alpha(task, out):
    torch.manual_seed(0)
    net = SuperNet(SPACE, task)
    alphas, weights = net.alphas(), net.weights()
    assert {id(p) for p in alphas}.isdisjoint(id(p) for p in weights)
    trainable = {id(p) for p in net.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in alphas} | {id(p) for p in weights}
    if task == "denoise":  # the x1 tail starts at zero (identity network): make it live
        torch.nn.init.normal_(net.tail[-1].weight, std=0.01)
    x = torch.rand(2, 3, 24, 24) * 255
    y = net(x)
    assert y.shape == (2, 3, out, out) and torch.isfinite(y).all()
    y.mean().backward()
    for name, p in net.named_alphas().items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert sum(p.grad.abs().sum() for p in weights if p.grad is not None) > 0


def test_mixed_op_bypasses_three_quarters_of_the_channels():
    bank = MaskBank((8,))
    op = MixedOp(8, 4, offset=1, bank=bank)
    bank.set(torch.ones(1))
    x = torch.randn(1, 8, 10, 10)
    w = torch.softmax(torch.randn(len(OP_NAMES)), 0)
    y = op(x, w)
    through = [1, 5]  # offset 1, every 4th channel
    bypass = [c for c in range(8) if c not in through]
    assert torch.equal(y[:, bypass], x[:, bypass])
    assert not torch.allclose(y[:, through], x[:, through])


def test_width_masks_silence_the_channels_of_unchosen_widths():
    net = SuperNet(SPACE, "sr-x2")
    with torch.no_grad():
        net.alpha_width.copy_(torch.tensor([30.0, -30.0]))  # all on width 4 (16 features)
    seen = []
    net.cells[0].register_forward_hook(lambda m, i, o: seen.append(o))
    net.cells[0].ops[0].candidates[OP_NAMES.index("rb")].op1.register_forward_hook(
        lambda m, i, o: seen.append(o)
    )
    net(torch.rand(1, 3, 24, 24) * 255)
    cell_out, rb_inner = seen[1], seen[0]
    assert cell_out[:, 16:].abs().max() < 1e-6 < cell_out[:, :16].abs().max()
    # Inside a candidate (width 8 / 4 partial = 2 channels at width 4 -> 1 channel).
    assert rb_inner[:, 1:].abs().max() < 1e-6 < rb_inner[:, :1].abs().max()


def test_derive_gives_a_valid_genotype_that_builds_and_never_keeps_none():
    torch.manual_seed(0)
    net = SuperNet(SPACE, "sr-x2")
    with torch.no_grad():
        net.alpha_op.zero_()
        net.alpha_op[:, OP_NAMES.index("none")] = 9.0  # strongest, never kept
        net.alpha_op[:, OP_NAMES.index("lrb")] = 5.0
        net.alpha_op[2, OP_NAMES.index("srb")] = 6.0
        net.alpha_att.zero_()
        net.alpha_att[:, ATT_NAMES.index("none")] = 9.0
        net.alpha_att[:, ATT_NAMES.index("cea")] = 3.0
        net.alpha_depth.copy_(torch.tensor([0.0, 1.0]))
        net.alpha_width.copy_(torch.tensor([1.0, 0.0]))
    g = net.derive()
    assert g == Genotype(("lrb", "lrb", "srb"), ("cea",) * 3, width=4, cells=2, nodes=2)
    out = JSNet(g, "sr-x2")(torch.rand(1, 3, 20, 20) * 255)
    assert out.shape == (1, 3, 40, 40)


# --- latency table and expected latency -----------------------------------------------------


def test_expected_latency_is_differentiable_and_matches_the_table(table):
    net = SuperNet(SPACE, "sr-x2")
    expected = ExpectedLatency(table, SPACE)
    e = expected(net.alpha_op, net.alpha_att, net.alpha_depth, net.alpha_width, net.alpha_csfm)
    e.backward()
    for name in ("alpha_op", "alpha_att", "alpha_depth", "alpha_width", "alpha_csfm"):
        grad = getattr(net, name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    # beta does not enter (derivation keeps every edge whatever its beta): documented.
    assert net.beta.grad is None
    # With (almost) one-hot architecture weights the expectation is the table's prediction,
    # with the CSFM and with the plain fusion.
    paper = Genotype(
        ("rb", "skip_connect", "sep_conv_3x3"), ("esab", "cea", "skip_connect"), 8, 2, 2
    )
    for g in (paper, replace(paper, csfm=False)):
        names = ("alpha_op", "alpha_att", "alpha_depth", "alpha_width", "alpha_csfm")
        hot = {n: torch.full_like(getattr(net, n), -40.0) for n in names}
        for e_i, (o, a) in enumerate(zip(g.ops, g.attentions, strict=True)):
            hot["alpha_op"][e_i, OP_NAMES.index(o)] = 40.0
            hot["alpha_att"][e_i, ATT_NAMES.index(a)] = 40.0
        hot["alpha_depth"][g.cells - 1] = 40.0
        hot["alpha_width"][SPACE.widths.index(g.width)] = 40.0
        hot["alpha_csfm"][SPACE.csfm.index(g.csfm)] = 40.0
        value = float(expected(*(hot[n] for n in names)))
        assert math.isclose(value, table.predict(g), rel_tol=1e-4)
    assert table.predict(replace(paper, csfm=False)) != table.predict(paper)


def test_table_round_trips_and_is_reused_from_the_cache(table, profile_cfg, cache, tmp_path):
    again = LatencyTable.from_json(table.to_json())
    assert again.to_dict() == table.to_dict() and again.id == table.id
    assert table.method["statistic"].startswith("median")
    assert (cache / f"{table.id}.json").is_file()
    reused = load_or_measure(profile_cfg)
    assert reused.source == "cache" and reused.measured_blocks == 0
    assert reused.table.entries == table.entries
    # Another precision or input size is another table.
    other = ProfileConfig(input_size=(48, 32), space=SPACE, threads=1)
    assert other.fingerprint() != profile_cfg.fingerprint()
    # A table file for another setting is refused with the reason.
    path = table.save(tmp_path / "t.json")
    with pytest.raises(LatencyTableError, match="input_size"):
        load_or_measure(ProfileConfig(input_size=(48, 32), space=SPACE, threads=1, table=path))
    with pytest.raises(LatencyTableError, match="not a jsnet-edge latency table"):
        LatencyTable.from_json('{"format": "something else"}')


def test_impossible_targets_are_refused_clearly():
    with pytest.raises(OptionError, match="int8 needs a calibrated ONNX"):
        ProfileConfig(precision="int8", backend="torch")
    with pytest.raises(OptionError, match="openvino backend runs on cpu"):
        ProfileConfig(device="cuda", backend="openvino")
    with pytest.raises(OptionError, match="tensorrt backend runs on cuda"):
        ProfileConfig(backend="tensorrt")


def test_the_search_can_rank_on_camera_noise(photo_dir, tmp_path):
    """--noise camera: the supernet sees noise as videos carry it (8-bit, after 4:2:0 and a
    codec), and only denoising takes it."""
    from jsnet_edge.search.search import _Batches

    base = dict(data=photo_dir, out=tmp_path / "run", budgets=(10.0,), batch=4, patch=32)
    cfg = SearchConfig(task="denoise", noise="camera", **base)
    x, y = _Batches(cfg).train_batch()
    assert x.shape == y.shape == (4, 3, 32, 32)
    assert torch.equal(x, x.round()) and 0 < (x - y).abs().mean() < 40  # 8-bit, noisy
    with pytest.raises(OptionError, match="--noise applies to --task denoise"):
        SearchConfig(task="sr-x2", noise="camera", **base)
    with pytest.raises(OptionError, match="--noise must be one of"):
        SearchConfig(task="denoise", noise="poisson", **base)


# --- budgets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,ms", [("10ms", 10.0), ("0.5s", 500.0), ("20", 20.0), (" 7.5 MS ", 7.5), ("2e1ms", 20.0)]
)
def test_budgets_parse(text, ms):
    assert parse_budget(text) == ms


@pytest.mark.parametrize(
    "text,message",
    [
        ("0", "positive"),
        ("-5ms", "positive"),
        ("0s", "positive"),
        ("abc", "cannot read"),
        ("10 fps", "cannot read"),
        ("nan", "cannot read"),
        ("", "cannot read"),
    ],
)
def test_bad_budgets_are_refused(text, message):
    with pytest.raises(OptionError, match=message):
        parse_budget(text)


def test_budget_lists_parse():
    assert parse_budgets("5ms,10ms,0.02s") == (5.0, 10.0, 20.0)
    with pytest.raises(OptionError):
        parse_budgets(",")


def test_the_fusion_before_the_tail_is_a_choice_of_the_search(table):
    """`--csfm search`: the supernet mixes the paper's CSFM and the plain 1x1 fusion (the
    `-P` genotypes), derives the likelier, the table times both, and keeping a budget may
    give the CSFM up."""
    assert parse_csfm("search") == (True, False) and parse_csfm("No") == (False,)
    with pytest.raises(OptionError, match="--csfm must be yes .* no .* or search"):
        parse_csfm("maybe")
    with pytest.raises(OptionError, match="csfm choices"):
        SearchSpace(csfm=())
    assert SearchSpace(csfm=(False, True)).csfm == (True, False)  # one order for the alphas
    plain = SearchSpace(widths=(4,), max_cells=1, nodes=1, csfm=(False,))
    assert plain.smallest().csfm is False
    assert not plain.contains(replace(plain.smallest(), csfm=True))
    assert "tail:C4:P" in space_keys(plain) and "tail:C4" not in space_keys(plain)
    block, _ = block_for("tail:C4:P", "denoise", 3)
    assert isinstance(block[0], torch.nn.Conv2d) and block[0].kernel_size == (1, 1)
    # The supernet derives the fusion its weights favour, and the network builds.
    net = SuperNet(SPACE, "denoise")
    with torch.no_grad():
        net.alpha_csfm.copy_(torch.tensor([0.0, 1.0]))
    g = net.derive()
    assert g.csfm is False and "-P" in g.to_string().split(":")[0]
    assert JSNet(g, "denoise")(torch.rand(1, 3, 16, 16) * 255).shape == (1, 3, 16, 16)
    # The budget step can trade the CSFM for the plain fusion, for the time the table says.
    big = largest(table, SPACE)
    steps = {s.action: s for s in give_ups(big, ArchWeights.uniform(SPACE), table, SPACE)}
    step = steps["fusion CSFM -> plain"]
    assert step.genotype == replace(big, csfm=False)
    assert math.isclose(step.saved_ms, table.predict(big) - table.predict(step.genotype))
    assert step.saved_ms > 0


def test_derivation_keeps_a_measured_budget(table):
    """Between the smallest and the largest network of the space, the give-up loop ends at a
    network that measures within budget."""
    small, big = SPACE.smallest(), largest(table, SPACE)
    small_ms, big_ms = measure(small), measure(big)
    assert small_ms < big_ms
    budget = math.sqrt(small_ms * big_ms)
    weights = ArchWeights.uniform(SPACE)
    steps = give_ups(big, weights, table, SPACE)
    assert steps and all(s.saved_ms > 0 for s in steps)
    fit = fit_to_budget(big, weights, table, SPACE, budget, measure)
    assert fit.measured_ms <= budget
    assert SPACE.contains(fit.genotype) and fit.genotype != big
    measured = [h for h in fit.history if "measured_ms" in h]
    assert measured[0]["genotype"] == big.to_string()
    assert any(h["measured_ms"] > budget for h in measured)
    # From below, the spare budget goes into size, still within the measured budget.
    start = fit_to_budget(small, weights, table, SPACE, budget, measure)
    assert start.genotype == small
    grown = grow_within_budget(start, weights, table, SPACE, budget, 0.05, measure)
    assert grown.measured_ms <= budget
    assert (grown.genotype.width, grown.genotype.cells) > (small.width, small.cells)
    assert grown.genotype.ops == small.ops
    assert any(h["action"].startswith("grow") and h["accepted"] for h in grown.history)


def test_grow_tries_the_other_size_when_one_measures_over_budget(table):
    """On a device where the table misjudges width (wider networks measure 3x their
    prediction), the rejected wider network does not end the growth: a deeper one that fits
    is taken."""
    small = SPACE.smallest()
    wider, deeper = replace(small, width=8), replace(small, cells=2)

    def slow_when_wide(g: Genotype) -> float:
        return table.predict(g) * (3.0 if g.width > small.width else 1.0)

    weights = ArchWeights.uniform(SPACE)
    weights.width = np.array([0.2, 0.8])  # the likelier step is the wider one: tried first
    budget = 1.1 * max(table.predict(wider), table.predict(deeper)) / 0.95
    assert slow_when_wide(wider) > budget
    start = Fit(small, small, table.predict(small), slow_when_wide(small), [])
    grown = grow_within_budget(start, weights, table, SPACE, budget, 0.05, slow_when_wide)
    tried = [(h["genotype"], h["accepted"]) for h in grown.history]
    assert tried[0] == (wider.to_string(), False)
    assert (deeper.to_string(), True) in tried
    assert grown.genotype.cells == 2 and grown.genotype.width == small.width
    assert grown.measured_ms <= budget


# --- command line --------------------------------------------------------------------------

COMMON = [
    "--input-size",
    "32x32",
    "--widths",
    "4,8",
    "--max-cells",
    "2",
    "--nodes",
    "2",
    "--runtime-threads",
    "1",
    "--repeats",
    "10",
]


def test_search_end_to_end_through_the_cli(photo_dir, tmp_path, cache, table):
    run = tmp_path / "run"
    proc = run_cli(
        "search",
        "--task",
        "sr-x2",
        "--latency-budget",
        "50ms",
        "--budgets",
        "1s,1.2ms",
        "--data",
        photo_dir,
        "--steps",
        "6",
        "--warmup-steps",
        "2",
        "--finetune-steps",
        "2",
        "--batch",
        "2",
        "--patch",
        "32",
        "--validate",
        "3",
        "--snapshot-every",
        "2",
        "--csfm",
        "search",
        "--out",
        run,
        *COMMON,
    )
    assert "budget 50ms:" in proc.stdout and "paper's network: measured" in proc.stdout
    for name in ("genotype.json", "report.json", "latency_table.json", "pareto.png"):
        assert (run / name).is_file(), name
    assert (run / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((run / "report.json").read_text())
    assert [r["budget_ms"] for r in report["results"]] == [50.0, 1000.0, 1.2]
    for r in report["results"]:
        assert r["measured_ms"] <= r["budget_ms"] and r["within_budget"]
        assert r["predicted_ms"] > 0 and r["psnr"] > 0
        assert [s["step"] for s in r["snapshots"]] == [4, 6]
        weights = set(r["snapshots"][0]["weights"])
        assert weights == {"op", "att", "edge", "depth", "width", "csfm"}
    assert report["paper"]["measured_ms"] > 0 and report["paper"]["psnr"] > 0
    assert report["search_space"]["csfm"] == [True, False]
    assert report["latency_table"]["source"] == "cache"  # the module's table was reused
    assert report["latency_table"]["correction"]["fitted"]
    assert report["latency_table"]["validation"]["n"] == 3
    genotype = json.loads((run / "genotype.json").read_text())
    assert genotype["budget_ms"] == 50.0 and genotype["measured_ms"] <= 50.0
    assert Genotype.from_dict(genotype["genotype"]).to_string() == genotype["string"]
    # The result trains with the ordinary trainer.
    model = tmp_path / "searched.safetensors"
    run_cli(
        "train",
        "--task",
        "sr-x2",
        "--data",
        photo_dir,
        "--genotype",
        run / "genotype.json",
        "--steps",
        "2",
        "--batch",
        "2",
        "--patch",
        "32",
        "--out",
        model,
    )
    assert model.is_file()
    # A second run into the same folder is refused, not clobbered.
    again = run_cli(
        "search",
        "--task",
        "sr-x2",
        "--latency-budget",
        "50ms",
        "--data",
        photo_dir,
        "--out",
        run,
        *COMMON,
        check=False,
    )
    assert again.returncode == 1 and "--overwrite" in again.stderr


def test_budget_below_the_smallest_network_is_refused(photo_dir, tmp_path, cache):
    proc = run_cli(
        "search",
        "--task",
        "sr-x2",
        "--latency-budget",
        "0.001ms",
        "--data",
        photo_dir,
        "--out",
        tmp_path / "run",
        *COMMON,
        check=False,
    )
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: a budget of 0.001 ms is below the smallest network")
    assert "C4-L1-N2" in line and "measured" in line
    bad = run_cli(
        "search",
        "--task",
        "sr-x2",
        "--latency-budget",
        "-3ms",
        "--data",
        photo_dir,
        "--out",
        tmp_path / "run",
        check=False,
    )
    assert bad.returncode == 1 and "positive" in bad.stderr


def test_profile_cli_validates_the_table(tmp_path, cache):
    out = tmp_path / "table.json"
    args = [
        "--input-size",
        "32x32",
        "--widths",
        "4",
        "--max-cells",
        "1",
        "--nodes",
        "1",
        "--runtime-threads",
        "1",
        "--repeats",
        "5",
        "--validate",
        "3",
        "-o",
        out,
    ]
    proc = run_cli("profile", *args, "--refresh")
    assert "mean absolute percentage error" in proc.stdout
    saved = LatencyTable.load(out)
    assert saved.correction["fitted"] and saved.validation["n"] == 3
    assert np.isfinite(saved.validation["mape_fitted_percent"])
    assert saved.validation["mape_held_out_percent"] is None  # nothing to hold out yet
    # Validating again adds 3 new networks to the 3 and tests the old correction on them.
    again = run_cli("profile", *args, "--overwrite")  # -o replaces the file only when asked
    assert "(3 new, 3 from earlier runs)" in again.stdout
    v = LatencyTable.load(out).validation
    assert v["n"] == 6 and v["n_new"] == 3 and len(set(v["genotypes"])) == 6
    assert v["measured_ms"][:3] == saved.validation["measured_ms"]
    a, b = saved.correction["a"], saved.correction["b"]
    held = (
        np.mean(
            [
                abs(a * r + b - m) / m
                for r, m in zip(v["raw_ms"][3:], v["measured_ms"][3:], strict=True)
            ]
        )
        * 100
    )
    assert v["mape_held_out_percent"] == pytest.approx(held)
    bad = run_cli("profile", "--precision", "int4", check=False)
    assert bad.returncode == 1 and "unknown precision 'int4'" in bad.stderr


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_int8_tables_time_the_qdq_graphs_qat_writes(backend, cache, tmp_path):
    """`profile --precision int8`: each block timed as its Q/DQ graph; the budget check
    times the whole int8 network the same way."""
    pytest.importorskip("nncf", reason="int8 timing needs the [qat] extra (the dev install has it)")
    if backend == "openvino":
        pytest.importorskip("openvino")
    space = SearchSpace(widths=(4,), max_cells=1, nodes=1)
    cfg = ProfileConfig(
        input_size=(32, 32),
        space=space,
        backend=backend,
        precision="int8",
        threads=1,
        timing=FAST,
        out=tmp_path / "int8.json",
    )
    result = load_or_measure(cfg)
    assert result.table.fingerprint["precision"] == "int8"
    assert result.table.entries and all(e["ms"] >= 0 for e in result.table.entries.values())
    g = Genotype.from_string("C4-L1-N1:srb:cea")
    t = time_network(g, "sr-x2", 3, (32, 32), backend, "cpu", "int8", FAST, threads=1)
    assert t.ms > 0
    # The placement `calibrate --qat` writes by default (--scope convs), in the fingerprint
    # so that tables timed with another placement are not reused.
    assert result.table.fingerprint["int8_scope"] == "convs"
    from jsnet_edge.calibration.fakequant import int8_graph
    from jsnet_edge.export.onnx import fold_mean_shift

    proto = int8_graph(fold_mean_shift(JSNet(g, "sr-x2")), (1, 3, 32, 32))
    producer = {o: n.op_type for n in proto.graph.node for o in n.output}
    dq = [
        n for n in proto.graph.node if any(producer.get(i) == "DequantizeLinear" for i in n.input)
    ]
    assert dq and {n.op_type for n in dq} == {"Conv"}
    assert not any("/head/" in n.name or "/tail" in n.name for n in dq)


# --- unshuffled networks (the body at half resolution) ----------------------------------------


@pytest.mark.parametrize("task,out", [("sr-x2", 64), ("denoise", 32)])
def test_unshuffled_supernet_runs_at_half_resolution_and_derives_unshuffled(task, out):
    space = SearchSpace(widths=(4, 8), max_cells=2, nodes=2, unshuffle=2)
    net = SuperNet(space, task)
    torch.nn.init.normal_(net.tail[0].weight, std=0.01)
    seen = []
    net.cells[0].register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
    y = net(torch.rand(2, 3, 32, 32) * 255)
    assert y.shape == (2, 3, out, out) and seen == [16]
    y.mean().backward()
    assert net.alpha_op.grad.abs().sum() > 0
    g = net.derive()
    assert g.unshuffle == 2 and space.contains(g) and "-S2:" in g.to_string()
    s = out // 32  # odd multiples of 2 are padded and cropped back
    assert JSNet(g, task)(torch.rand(1, 3, 30, 34) * 255).shape[-2:] == (30 * s, 34 * s)


def test_widths_too_narrow_for_the_unshuffle_are_named():
    """Same-size tasks need 2 C >= colours x unshuffle^2 channels at the tail (the 720p
    denoise-hd attempt: C8 at --unshuffle 4 never beat its noisy input)."""
    assert SearchSpace(widths=(8, 12, 16), unshuffle=2).narrow_widths(1, 3) == ()
    assert SearchSpace(widths=(8, 12, 16, 24), unshuffle=4).narrow_widths(1, 3) == (8, 12, 16)
    assert SearchSpace(widths=(8,), unshuffle=4).narrow_widths(1, 1) == ()  # gray: 16 values
    assert SearchSpace(widths=(8,), unshuffle=4).narrow_widths(2, 3) == ()  # SR: not held


def test_unshuffled_table_times_the_body_at_half_resolution(cache):
    space = SearchSpace(widths=(4,), max_cells=1, nodes=1, unshuffle=2)
    cfg = ProfileConfig(input_size=(64, 64), task="denoise", space=space, timing=FAST, threads=1)
    table = load_or_measure(cfg).table
    assert table.fingerprint["unshuffle"] == 2
    g = space.smallest()
    assert table.predict(g) > 0  # every entry the network reads is there
    assert (
        time_network(g, "denoise", 3, (64, 64), "onnxruntime", "cpu", "fp32", FAST, threads=1).ms
        > 0
    )
    with pytest.raises(OptionError, match="multiple of the unshuffle"):
        ProfileConfig(input_size=(65, 64), task="denoise", space=space)


def test_derive_limits_skip_connections_keeping_the_clearest():
    net = SuperNet(SPACE, "sr-x2")
    with torch.no_grad():
        net.alpha_op.zero_()
        net.alpha_op[:, OP_NAMES.index("skip_connect")] = torch.tensor([3.0, 5.0, 2.0])
        net.alpha_op[:, OP_NAMES.index("rb")] = 1.0
        net.alpha_op[1, OP_NAMES.index("srb")] = 1.5
    assert net.derive().ops == ("skip_connect",) * 3
    p = net.probabilities()
    w = p["op"] * p["edge"][:, None]  # what derivation compares
    lead = w[:, OP_NAMES.index("skip_connect")] - w[:, OP_NAMES.index("srb")].maximum(
        w[:, OP_NAMES.index("rb")]
    )
    keep = int(lead.argmax())
    ops = net.derive(max_skip=1).ops
    assert ops[keep] == "skip_connect" and ops.count("skip_connect") == 1
    assert net.derive(max_skip=0).ops == ("rb", "srb", "rb")


def test_shipped_tables_load_and_cover_their_search_spaces():
    """The tables under jsnet_edge/search/tables are valid, keyed by their fingerprint, and
    cover the space they were measured for: the rt models' (benchmarks/make_rt.sh,
    unshuffle 2) or the search benchmark's default (benchmarks/search.py, paper layout)."""
    from jsnet_edge.search.latency import SHIPPED, fingerprint_id, space_keys

    shipped = sorted(SHIPPED.glob("*.json"))
    assert shipped, "latency tables ship with the package"
    for path in shipped:
        table = LatencyTable.load(path)
        assert table.id == fingerprint_id(table.fingerprint)
        unshuffle = table.fingerprint.get("unshuffle", 1)
        space = (
            SearchSpace((8, 12, 16), 3, 2, unshuffle=unshuffle)
            if unshuffle > 1
            else SearchSpace((8, 12, 16, 24), 5, 3)
        )
        assert not table.missing(space_keys(space)), path.name
        assert table.correction["fitted"] and table.validation["mape_fitted_percent"] <= 15
