"""The benchmark runs (a quick smoke version), and PyTorch stays out of the library."""
import ast
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_bench_prints_table_and_writes_json(tmp_path, capsys):
    pytest.importorskip("torch")
    from tinyllm.bench import run_bench
    results = run_bench(configs=["S"], steps=1, quick=True, json_path=str(tmp_path / "b.json"),
                        plot_path=str(tmp_path / "b.png"))
    row = results["configs"]["S"]
    assert row["tinyllm_step_ms"] > 0 and row["torch_step_ms"] > 0 and row["ratio"] > 0
    assert 0 < row["tinyllm_mfu"] < 1.5
    assert results["generation"]["identical_tokens"]
    assert json.loads((tmp_path / "b.json").read_text())["configs"]["S"]["ratio"] == row["ratio"]
    assert os.path.getsize(tmp_path / "b.png") > 1000
    assert "tinyllm bench" in capsys.readouterr().out


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
