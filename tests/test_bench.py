"""The benchmark runs (a quick smoke version), and PyTorch stays out of the library."""
import ast
import json
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_bench_times_each_side_in_its_own_process(tmp_path, capsys):
    """A one-round smoke run: every measure has both sides, each from a separate process that
    reports its own library version and thread settings; the ratios are the medians' quotients;
    the JSON and the chart are written; the table says how to reproduce it."""
    pytest.importorskip("torch")
    from tinyllm.bench import run_bench
    results = run_bench(configs=["S"], quick=True, json_path=str(tmp_path / "b.json"),
                        plot_path=str(tmp_path / "b.png"), log=lambda *a: None)
    row = results["configs"]["S"]
    for task in ("train", "eval", "memory"):
        assert set(row[task]) == {"tinyllm", "torch"}
        for side in ("tinyllm", "torch"):
            assert row[task][side]["median"] > 0 and len(row[task][side]["rounds"]) == 1
        assert results["ratios"][f"S {task}"] == pytest.approx(
            row[task]["tinyllm"]["median"] / row[task]["torch"]["median"])
    assert results["versions"]["torch"].startswith("2.") and results["versions"]["tinyllm"] == np.__version__
    assert "torch_threads" in results["threads"]["torch"] and "tinyllm_threads" in results["threads"]["tinyllm"]
    assert results["generation"]["same_tokens"]      # same weights, greedy: the same continuation
    assert json.loads((tmp_path / "b.json").read_text())["ratios"] == results["ratios"]
    assert os.path.getsize(tmp_path / "b.png") > 1000
    out = capsys.readouterr().out
    assert "each side alone in its own process" in out and "reproduce: python -m tinyllm bench" in out


def test_a_worker_loads_one_framework_only():
    """The point of the processes: tinyllm's worker never imports torch (its threads would spin)."""
    import subprocess
    import sys
    code = ("import sys, json; from tinyllm.bench import measure; r = measure('tinyllm', 'eval', 'S', 'cpu', quick=True); "
            "print(json.dumps(['torch' in sys.modules, r['samples']]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    torch_loaded, samples = json.loads(out.strip().splitlines()[-1])
    assert not torch_loaded and len(samples) == 2


def test_the_torch_kv_cache_gives_the_tokens_of_recomputing_everything():
    """The generation benchmark's PyTorch side: cached greedy decoding equals decoding that
    reruns the whole context each token, past the position table (the cache refilled)."""
    torch = pytest.importorskip("torch")
    from tinyllm.models import GPTConfig
    from tinyllm.torch_reference import TorchGPT
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16)
    model = TorchGPT(cfg).double().eval()
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    cached = model.generate_greedy(prompt, 12)
    ids = prompt
    with torch.no_grad():
        for _ in range(12):
            logits, _ = model(ids[:, -cfg.block_size:])
            ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(cached, ids)


def test_the_torch_recipe_is_the_same_run_as_tinyllm_train(tmp_path, capsys):
    """bench --end-to-end compares like with like: a few steps of the PyTorch recipe and of
    ``train --preset shakespeare-char`` start from the same weights, see the same batches and
    reach the same losses (float32: to 1e-4)."""
    pytest.importorskip("torch")
    from tinyllm.data.corpora import tinyshakespeare
    try:
        tinyshakespeare(download=False)
    except FileNotFoundError as error:
        pytest.skip(f"Tiny Shakespeare is not available: {error}")
    from tinyllm.bench import _last_val_loss
    from tinyllm.cli import main
    from tinyllm.torch_reference import main as recipe
    small = ["--max-iters", "6", "--lr-decay-iters", "6", "--eval-interval", "3", "--eval-iters", "2",
             "--max-new-tokens", "5"]
    recipe(["--out", str(tmp_path / "torch"), *small])
    theirs = _last_val_loss(capsys.readouterr().out)
    assert main(["train", "--preset", "shakespeare-char", "--out", str(tmp_path / "tl"), "--progress", "false",
                 *small]) == 0
    ours = _last_val_loss(capsys.readouterr().out)
    assert theirs is not None and ours == pytest.approx(theirs, abs=1e-4)
    assert (tmp_path / "torch" / "ckpt.pt").exists()


def test_no_library_module_imports_torch():
    """PyTorch is a reference: only tinyllm/torch_reference.py (the benchmark's twin model)
    may import it."""
    offenders = []
    for folder, _, files in os.walk(os.path.join(ROOT, "tinyllm")):
        for name in files:
            if not name.endswith(".py") or name == "torch_reference.py":
                continue
            path = os.path.join(folder, name)
            tree = ast.parse(open(path, encoding="utf-8").read())
            for node in ast.walk(tree):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                if any(n == "torch" or n.startswith("torch.") for n in names):
                    offenders.append(os.path.relpath(path, ROOT))
    allowed = {os.path.join("tinyllm", "bench.py")}  # imports torch only to time the reference side
    assert sorted(set(offenders) - allowed) == []


@pytest.mark.parametrize("tie, bias, gelu", [(True, True, "tanh"), (False, False, "none")])
def test_torch_twin_gives_the_same_logits_and_loss(tie, bias, gelu):
    """The benchmark's PyTorch model, loaded with a tinyllm GPT's weights, computes the same
    function, for tied and untied embeddings (an untied state must not land in one shared matrix)."""
    torch = pytest.importorskip("torch")
    import numpy as np
    import tinyllm as tl
    from tinyllm.models import GPT, GPTConfig
    from tinyllm.torch_reference import TorchGPT
    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8, bias=bias,
                    gelu_approximate=gelu, tie_embeddings=tie, layer_norm_eps=1e-3)
    tl.manual_seed(0)
    ours = GPT(cfg).double()
    theirs = TorchGPT(cfg).double().load_tinyllm_state(ours.state_dict())
    idx = np.random.default_rng(0).integers(0, 11, size=(2, 8))
    logits, loss = ours(idx, idx)
    t_logits, t_loss = theirs(torch.from_numpy(idx), torch.from_numpy(idx))
    np.testing.assert_allclose(logits.numpy(), t_logits.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=1e-12)


def test_the_profile_accounts_for_the_step(capsys):
    """bench --profile: the phases add up to the step, every op of the step is in the table,
    matrix products are a share of it, and the engine's cost per op is measured."""
    from tinyllm.bench import profile_report
    text, n = profile_report("S", steps=2)
    assert n["step_ms"] == pytest.approx(sum(n["phases_ms"].values()))
    assert {"Linear", "Attention", "LayerNorm", "GELU", "CrossEntropy", "Embedding"} <= set(n["ops"])
    assert n["ops"]["Linear"]["forward_calls"] == 4 * 6 + 1   # per block q, k, v (rows of c_attn), proj, fc, proj; lm_head
    assert 0 < n["matrix_ms"] < n["op_forward_ms"] + n["op_backward_ms"]
    assert n["engine_us_per_op"] > 0 and "per op, per step" in text
