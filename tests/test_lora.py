"""LoRA (tinyllm.nn.lora): only the adapters train, merge and unmerge, adapters saved alone,
and the same outputs, gradients and merged weights as peft's LoRA on the same torch model."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyllm as tl
from tinyllm import nn
from tinyllm.checkpoint import load_checkpoint
from tinyllm.models import GPT, GPTConfig, Llama, LlamaConfig
from tinyllm.nn import lora
from tinyllm.optim import AdamW
from llama_helpers import float64_hugging_face, hf_llama  # noqa: F401 (a fixture)


def tiny_llama(**overrides):
    fields = dict(vocab_size=13, block_size=8, n_layer=2, n_head=4, n_kv_head=2, n_embd=16, intermediate_size=24)
    return Llama(LlamaConfig(**{**fields, **overrides}), dtype=np.float64)


def randomise_adapters(model, seed=0):
    """B starts at 0 (the wrapped model is the base model); give it values so the tests see it."""
    rng = np.random.default_rng(seed)
    for name, layer in lora.lora_layers(model).items():
        layer.lora_B.weight.data[...] = tl.Tensor(0.3 * rng.standard_normal(layer.lora_B.weight.shape),
                                                  device=layer.lora_B.weight.device).data


# ----------------------------------------------------------------------------- the layer
@given(data=st.data(), rank=st.integers(1, 3), lead=st.lists(st.integers(1, 3), max_size=2),
       n_in=st.integers(1, 4), n_out=st.integers(1, 4), bias=st.booleans())
def test_lora_linear_gradients_reach_the_adapters_only(device, data, rank, lead, n_in, n_out, bias):
    base = nn.Linear(n_in, n_out, bias=bias, device=device, dtype=np.float64)
    layer = nn.LoRALinear(base, rank=rank, alpha=2.0 * rank)
    randomise_adapters(layer)
    x = tl.Tensor(np.random.default_rng(data.draw(st.integers(0, 99))).standard_normal(tuple(lead) + (n_in,)),
                  requires_grad=True, device=device)
    assert tl.gradcheck(lambda t, a, b: layer(t), x, layer.lora_A.weight, layer.lora_B.weight)
    layer(x).sum().backward()
    assert base.weight.grad is None and (not bias or base.bias.grad is None)
    assert not base.weight.requires_grad
    # the correction is (alpha / rank) B A: the layer equals a Linear with W + 2 B A
    merged = tl.functional.linear(x, tl.Tensor(base.weight.data + 2.0 * (layer.lora_B.weight.data @ layer.lora_A.weight.data)),
                                  base.bias)
    np.testing.assert_allclose(layer(x).numpy(), merged.numpy(), rtol=1e-12, atol=1e-12)


def test_lora_starts_as_the_base_model_and_rows_match_forward(device):
    tl.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=6, n_layer=1, n_head=2, n_embd=8), device=device).double()
    idx = tl.Tensor(np.random.default_rng(0).integers(0, 11, (2, 6)), device=device)
    before = model(idx)[0].numpy()
    names = lora.wrap(model, ["c_attn", "c_fc"], rank=2, alpha=4)
    assert names == ["transformer.h.0.attn.c_attn", "transformer.h.0.mlp.c_fc"]
    np.testing.assert_array_equal(model(idx)[0].numpy(), before)  # B = 0: exactly the base model
    randomise_adapters(model)
    c_attn = model.transformer.h[0].attn.c_attn  # GPT reads Q, K, V as rows of c_attn
    x = tl.Tensor(np.random.default_rng(1).standard_normal((2, 3, 8)), device=device)
    whole = c_attn(x).numpy()
    np.testing.assert_allclose(np.concatenate([c_attn.rows(x, i, i + 8).numpy() for i in (0, 8, 16)], -1), whole,
                               rtol=1e-12)


def test_only_adapters_get_gradients_and_optimizer_state():
    tl.manual_seed(1)
    model = tiny_llama()
    base = {name: p.numpy() for name, p in model.named_parameters()}
    lora.wrap(model, ["q_proj", "v_proj"], rank=2, alpha=4)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        f"model.layers.{i}.self_attn.{m}.lora_{ab}.weight" for i in (0, 1) for m in ("q_proj", "v_proj") for ab in "AB"}
    optimizer = AdamW(trainable, lr=1e-2)
    idx = np.random.default_rng(0).integers(0, 13, (2, 8))
    for _ in range(3):
        loss = model(idx, idx)[1]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    assert set(map(id, optimizer.state)) == set(map(id, trainable))
    for name, p in model.named_parameters():  # the base weights did not move
        if not p.requires_grad:
            np.testing.assert_array_equal(p.numpy(), base[name.replace(".base_layer", "")])


def test_merge_unmerge_and_unwrap(device):
    tl.manual_seed(2)
    model = tiny_llama()
    model.to(device)
    original = model.model.layers[0].self_attn.q_proj.weight.numpy()
    lora.wrap(model, "all-linear", rank=3, alpha=6)
    randomise_adapters(model)
    idx = tl.Tensor(np.random.default_rng(0).integers(0, 13, (2, 8)), device=device)
    adapted = model(idx)[0].numpy()
    q_proj = model.model.layers[0].self_attn.q_proj
    version = q_proj.weight._version
    lora.merge(model)
    assert q_proj.merged and q_proj.weight._version == version + 1  # an in-place write, counted
    np.testing.assert_allclose(model(idx)[0].numpy(), adapted, rtol=1e-12, atol=1e-14)
    with pytest.raises(RuntimeError, match="already merged"):
        q_proj.merge()
    lora.unmerge(model)
    np.testing.assert_allclose(q_proj.weight.numpy(), original, rtol=0, atol=1e-15)
    np.testing.assert_allclose(model(idx)[0].numpy(), adapted, rtol=1e-12, atol=1e-14)
    lora.unwrap(model)  # merge and remove the adapters: plain Linear layers again
    assert not lora.lora_layers(model) and isinstance(model.model.layers[0].self_attn.q_proj, nn.Linear)
    np.testing.assert_allclose(model(idx)[0].numpy(), adapted, rtol=1e-12, atol=1e-14)


def test_merge_refuses_a_stale_backward():
    """merge writes the base weight in place: a graph built before it cannot run backward."""
    layer = nn.LoRALinear(nn.Linear(3, 2, dtype=np.float64), rank=1)
    x = tl.Tensor(np.ones((1, 3)), requires_grad=True)
    y = layer(x).sum()
    layer.merge()
    with pytest.raises(RuntimeError, match="modified in place after the forward pass"):
        y.backward()


def test_save_writes_adapters_alone_and_load_rewraps(tmp_path):
    tl.manual_seed(3)
    model = tiny_llama()
    base_state = model.state_dict()
    lora.wrap(model, ["q_proj", "v_proj", "down_proj"], rank=2, alpha=8)
    randomise_adapters(model)
    path = str(tmp_path / "adapters.safetensors")
    lora.save_adapters(model, path, meta={"base": "runs/x"})
    tensors, meta = load_checkpoint(path)
    assert all(k.endswith((".lora_A.weight", ".lora_B.weight")) for k in tensors) and len(tensors) == 12
    assert meta["lora"]["rank"] == 2 and meta["lora"]["targets"] == ["down_proj", "q_proj", "v_proj"]
    assert meta["base"] == "runs/x"
    fresh = tiny_llama()
    fresh.load_state_dict(base_state)
    lora.load_adapters(fresh, path)  # wraps the same layers, then loads A and B
    idx = np.random.default_rng(0).integers(0, 13, (2, 8))
    np.testing.assert_array_equal(fresh(idx)[0].numpy(), model(idx)[0].numpy())
    other = tiny_llama()
    lora.wrap(other, ["q_proj"], rank=2, alpha=8)
    with pytest.raises(ValueError, match="but the model's LoRA layers are"):
        lora.load_adapters(other, path)


def test_wrap_errors():
    model = GPT(GPTConfig(vocab_size=11, block_size=6, n_layer=1, n_head=2, n_embd=8))  # tied lm_head
    with pytest.raises(ValueError, match="no Linear layer matches targets"):
        lora.wrap(model, ["q_proj"])
    with pytest.raises(ValueError, match="lm_head's weight is shared with another layer"):
        lora.wrap(model, ["lm_head"])
    lora.wrap(model, "all-linear")
    with pytest.raises(ValueError, match="already has LoRA layers"):
        lora.wrap(model, "all-linear")
    with pytest.raises(ValueError, match="rank must be a positive integer"):
        nn.LoRALinear(nn.Linear(2, 2), rank=0)


# ----------------------------------------------------------------------------- parity with peft
@pytest.mark.parametrize("targets", [["q_proj", "v_proj"], "all-linear"])
def test_lora_equals_peft_on_the_same_llama(targets, float64_hugging_face):
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")
    hf = hf_llama(kv_heads=2)
    ours = Llama.from_hf({k: v.numpy() for k, v in hf.state_dict().items()}, hf.config)
    theirs = peft.get_peft_model(hf, peft.LoraConfig(r=4, lora_alpha=8, target_modules=targets, lora_dropout=0.0))
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.3)
    wrapped = lora.wrap(ours, targets, rank=4, alpha=8)
    # peft's names are ours with its wrapper prefix and the adapter name
    ours.load_state_dict({k.replace("base_model.model.", "").replace(".default", ""): v.numpy()
                          for k, v in theirs.state_dict().items()})
    peft_layers = {n.replace("base_model.model.", "") for n, m in theirs.named_modules()
                   if type(m).__name__ == "Linear" and hasattr(m, "lora_A")}
    assert set(wrapped) == peft_layers
    trainable, total = theirs.get_nb_trainable_parameters()
    assert sum(p.size for p in ours.parameters() if p.requires_grad) == trainable
    assert ours.num_parameters() == total

    rng = np.random.default_rng(0)
    idx, targets_ids = rng.integers(0, 37, (2, 9)), rng.integers(0, 37, (2, 9))
    logits = theirs(input_ids=torch.tensor(idx)).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 37), torch.tensor(targets_ids).reshape(-1))
    loss.backward()
    our_logits, our_loss = ours(idx, targets_ids)
    our_loss.backward()
    np.testing.assert_allclose(our_logits.numpy(), logits.detach().numpy(), rtol=1e-10, atol=1e-13)
    ours_by_name, worst = dict(ours.named_parameters()), {}
    for name, p in theirs.named_parameters():
        if p.requires_grad:
            mine = ours_by_name[name.replace("base_model.model.", "").replace(".default", "")].grad
            np.testing.assert_allclose(mine, p.grad.numpy(), rtol=1e-9, atol=1e-13, err_msg=name)
            worst["gradients"] = max(worst.get("gradients", 0), np.abs(mine - p.grad.numpy()).max()
                                     / np.abs(p.grad.numpy()).max())
    merged = theirs.merge_and_unload()
    lora.unwrap(ours)
    for name, value in merged.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[name], value.numpy(), rtol=1e-13, atol=1e-15, err_msg=name)
        worst["merged"] = max(worst.get("merged", 0), np.abs(ours.state_dict()[name] - value.numpy()).max())
    worst["logits"] = np.abs(our_logits.numpy() - logits.detach().numpy()).max() / np.abs(logits.detach().numpy()).max()
    print(f"\npeft, targets {targets}: largest relative difference, logits {worst['logits']:.1e}, adapter "
          f"gradients {worst['gradients']:.1e}; merged weights, largest absolute difference {worst['merged']:.1e}")
