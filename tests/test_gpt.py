"""GPT: logits and gradients equal Hugging Face's GPT-2 (random weights, float64), weights in
and out (state dicts, .safetensors), gradient check, KV cache equal to the full forward,
initialisation, attention maps, overfitting one batch, and bad input."""
import copy
import time

import numpy as np
import pytest

import tinyllm as tl
from tinyllm.models import GPT, GPTConfig, KVCache, load_safetensors
from torch_twins import Adam, assert_close, perturb


def tiny(**overrides):
    values = dict(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8)
    values.update(overrides)
    return GPTConfig(**values)


# ----------------------------------------------------------------------------- Hugging Face parity
@pytest.fixture(scope="module")
def hf_model():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=37, n_positions=16, n_embd=12, n_layer=3, n_head=3, resid_pdrop=0.0,
                                     embd_pdrop=0.0, attn_pdrop=0.0, activation_function="gelu_new",
                                     bos_token_id=0, eos_token_id=0)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).double().train()
    perturb(model, np.random.default_rng(0))  # LayerNorms and biases away from 1 / 0
    return model


def _hf_state(model):
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def test_logits_loss_and_gradients_equal_hugging_face_gpt2(hf_model):
    import torch
    model = GPT.from_gpt2(_hf_state(hf_model), n_head=3)
    assert model.dtype == np.float64 and model.config.n_layer == 3 and model.config.block_size == 16
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 37, size=(2, 11))
    targets = np.concatenate([idx[:, 1:], np.full((2, 1), -1)], axis=1)  # HF shifts labels inside
    logits, loss = model(idx, targets)
    hf_model.zero_grad()
    hf_logits = hf_model(torch.from_numpy(idx)).logits
    # HF's own labels= loss upcasts to float32; the same next-token loss in float64:
    hf_loss = torch.nn.functional.cross_entropy(hf_logits[:, :-1].reshape(-1, 37),
                                                torch.from_numpy(idx[:, 1:]).reshape(-1))
    assert_close(logits, hf_logits, "GPT logits vs Hugging Face")
    assert_close(loss, hf_loss, "GPT loss vs Hugging Face")
    loss.backward()
    hf_loss.backward()
    ours = dict(model.named_parameters())
    for name, p in hf_model.named_parameters():
        grad = p.grad.numpy()
        if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            grad = grad.T  # Conv1D (in, out)
        assert_close(ours[name].grad, grad, f"GPT grad of {name} vs Hugging Face")


def test_weights_round_trip_through_hugging_face_and_safetensors(hf_model, tmp_path):
    import torch
    idx = np.random.default_rng(2).integers(0, 37, size=(3, 16))
    with torch.no_grad():
        expected = hf_model(torch.from_numpy(idx)).logits.numpy()
    # a saved checkpoint: a .safetensors path (the tied lm_head is not stored in it)
    hf_model.save_pretrained(tmp_path)
    from_file = GPT.from_gpt2(tmp_path / "model.safetensors", n_head=3)
    assert_close(from_file(idx)[0], expected, "GPT from .safetensors logits")
    # GPT2Model-style names, without the "transformer." prefix, in float32
    bare = {k.removeprefix("transformer."): v for k, v in _hf_state(hf_model).items() if k != "lm_head.weight"}
    small = GPT.from_gpt2(bare, n_head=3, dtype=np.float32)
    assert small.dtype == np.float32
    np.testing.assert_allclose(small(idx)[0].numpy(), expected, rtol=1e-4, atol=1e-4)
    # and back: our weights into a fresh Hugging Face model
    tl.manual_seed(3)
    ours = GPT(GPTConfig(vocab_size=37, block_size=16, n_layer=3, n_head=3, n_embd=12)).double()
    fresh = type(hf_model)(hf_model.config).double()
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in ours.to_gpt2_state_dict().items()})
    with torch.no_grad():
        assert_close(ours(idx)[0], fresh(torch.from_numpy(idx)).logits, "GPT weights in Hugging Face, logits")


def test_load_safetensors_reads_half_precision(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    arrays = {"a": np.arange(6, dtype=np.float16).reshape(2, 3), "b": np.array([1, 2], dtype=np.int64)}
    safetensors_numpy.save_file(arrays, str(tmp_path / "x.safetensors"))
    loaded = load_safetensors(tmp_path / "x.safetensors")
    for k in arrays:
        assert loaded[k].dtype == arrays[k].dtype
        np.testing.assert_array_equal(loaded[k], arrays[k])


def test_from_gpt2_bad_input():
    with pytest.raises(ValueError, match="has no 'transformer.wpe.weight'"):
        GPT.from_gpt2({"wte.weight": np.zeros((5, 4))}, n_head=2)
    model = GPT(tiny())
    state = model.to_gpt2_state_dict()
    state["lm_head.weight"] = state["lm_head.weight"][:, :5]
    with pytest.raises(ValueError, match=r"lm_head.weight has shape \(13, 5\), transformer.wte.weight \(13, 8\)"):
        GPT.from_gpt2(state, n_head=2)


def test_untied_gpt_equals_hugging_face_with_untied_word_embeddings():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=11, n_positions=8, n_embd=8, n_layer=2, n_head=2, resid_pdrop=0.0,
                                     embd_pdrop=0.0, attn_pdrop=0.0, activation_function="gelu_new",
                                     tie_word_embeddings=False, bos_token_id=0, eos_token_id=0)
    config._attn_implementation = "eager"
    torch.manual_seed(5)
    hf = transformers.GPT2LMHeadModel(config).double()
    perturb(hf, np.random.default_rng(5))
    assert hf.lm_head.weight.data_ptr() != hf.transformer.wte.weight.data_ptr()
    model = GPT.from_gpt2(_hf_state(hf), n_head=2)
    assert not model.config.tie_embeddings and model.lm_head.weight is not model.transformer.wte.weight
    idx = np.random.default_rng(6).integers(0, 11, size=(2, 8))
    logits, _ = model(idx)
    hf_logits = hf(torch.from_numpy(idx)).logits
    assert_close(logits, hf_logits, "untied GPT logits vs Hugging Face")
    weights = np.random.default_rng(7).standard_normal(hf_logits.shape)
    (logits * tl.Tensor(weights)).sum().backward()
    (hf_logits * torch.from_numpy(weights)).sum().backward()
    ours = dict(model.named_parameters())
    for name in ("lm_head.weight", "transformer.wte.weight"):  # each matrix gets only its own use
        assert_close(ours[name].grad, dict(hf.named_parameters())[name].grad, f"untied grad of {name}")
    assert model.num_parameters() == GPT(tiny(vocab_size=11, n_embd=8)).num_parameters() + 11 * 8


def test_an_untied_state_is_refused_by_a_tied_model_instead_of_overwriting_wte():
    untied = GPT(tiny(tie_embeddings=False))
    tied = GPT(tiny())
    before = tied.transformer.wte.weight.numpy()
    with pytest.raises(RuntimeError, match="transformer.wte.weight and lm_head.weight are one tied tensor"):
        tied.load_state_dict(untied.state_dict())
    np.testing.assert_array_equal(tied.transformer.wte.weight.numpy(), before)  # nothing copied
    tied.load_state_dict(GPT(tiny()).state_dict())  # a tied state (equal values) loads
    GPT(tiny(tie_embeddings=False)).load_state_dict(tied.state_dict())  # and unties cleanly


# ----------------------------------------------------------------------------- gradients
def test_gradcheck_tiny_gpt():
    tl.manual_seed(0)
    model = GPT(tiny(n_embd=6, n_head=3, block_size=5, vocab_size=7)).double()
    for p in model.parameters():  # away from LayerNorm's 1 / 0 and the zero biases
        p.data += 0.1 * np.random.default_rng(p.size).standard_normal(p.shape)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 7, size=(2, 5))
    targets = rng.integers(0, 7, size=(2, 5))
    targets[0, 1] = -1
    params = list(model.parameters())
    assert tl.gradcheck(lambda *_: model(idx, targets)[1], *params, projections=3)
    assert tl.gradcheck(lambda *_: model(idx)[0], *params, projections=2)
    untied = GPT(tiny(n_embd=6, n_head=3, block_size=5, vocab_size=7, tie_embeddings=False)).double()
    assert tl.gradcheck(lambda *_: untied(idx, targets)[1], *untied.parameters(), projections=3)


# ----------------------------------------------------------------------------- KV cache
@pytest.mark.parametrize("chunks", [[3, 1, 1, 1, 2], [1] * 8, [8], [2, 3, 3]])
def test_kv_cache_gives_the_full_forward_logits(chunks):
    tl.manual_seed(1)
    model = GPT(tiny()).double().eval()
    idx = np.random.default_rng(1).integers(0, 13, size=(3, 8))
    with tl.no_grad():
        full, _ = model(idx)
        cache = model.new_kv_cache()
        pieces, start = [], 0
        for n in chunks:
            logits, _ = model(idx[:, start:start + n], kv_cache=cache)
            pieces.append(logits.numpy())
            start += n
            assert cache.position == start == len(cache)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full.numpy(), rtol=1e-10, atol=1e-12)
    # the cached keys are the full forward's keys: attention maps of the last step are the last rows
    assert model.attention_maps()["transformer.h.0.attn"].shape == (3, 2, chunks[-1], 8)


def test_kv_cache_reset_crop_and_errors():
    tl.manual_seed(2)
    model = GPT(tiny())
    idx = np.random.default_rng(2).integers(0, 13, size=(2, 6))
    cache = model.new_kv_cache()
    assert isinstance(cache, KVCache) and cache.max_length == 8
    with pytest.raises(RuntimeError, match=r"kv_cache is for inference; run the forward under tl.no_grad\(\)"):
        model(idx, kv_cache=cache)
    with tl.no_grad():
        full, _ = model(idx)
        model(idx, kv_cache=cache)
        with pytest.raises(ValueError, match="a sequence of 3 tokens after 6 cached ones is longer than block_size=8"):
            model(idx[:, :3], kv_cache=cache)
        with pytest.raises(ValueError, match=r"new keys are \(1, 2, 1, 4\)"):
            model(idx[:1, :1], kv_cache=cache)
        cache.crop(4)
        again, _ = model(idx[:, 4:], kv_cache=cache)
        np.testing.assert_allclose(again.numpy(), full.numpy()[:, 4:], rtol=1e-5, atol=1e-6)
        cache.reset()
        one, _ = model(idx[:1, :2], kv_cache=cache)  # a new batch size after reset is fine
        np.testing.assert_allclose(one.numpy(), full.numpy()[:1, :2], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"max_length must be in \[1, block_size=8\]"):
        model.new_kv_cache(9)


# ----------------------------------------------------------------------------- structure
def test_structure_names_tying_and_initialisation():
    tl.manual_seed(0)
    config = GPTConfig(vocab_size=300, block_size=64, n_layer=4, n_head=4, n_embd=128)
    model = GPT(config)
    names = list(model.state_dict())
    assert names[:3] == ["transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight"]
    assert names[-1] == "lm_head.weight" and "lm_head.weight" not in dict(model.named_parameters())
    assert model.lm_head.weight is model.transformer.wte.weight
    assert model.state_dict()["transformer.h.0.attn.c_attn.weight"].shape == (384, 128)
    std = {name: p.numpy().std() for name, p in model.named_parameters()}
    assert abs(std["transformer.wte.weight"] - 0.02) < 0.001
    assert abs(std["transformer.h.1.mlp.c_fc.weight"] - 0.02) < 0.001
    assert abs(std["transformer.h.1.attn.c_proj.weight"] - 0.02 / np.sqrt(8)) < 0.0005
    assert not model.transformer.h[0].attn.c_attn.bias.numpy().any()
    assert model.num_params() == model.num_parameters() - 64 * 128
    assert all(p.dtype == np.float32 for p in model.parameters())
    no_bias = GPT(GPTConfig(vocab_size=10, block_size=4, n_layer=1, n_head=1, n_embd=4, bias=False))
    assert not any(name.endswith("bias") for name in no_bias.state_dict())


def test_forward_outputs_and_attention_maps():
    tl.manual_seed(0)
    model = GPT(tiny())
    idx = np.random.default_rng(0).integers(0, 13, size=(2, 7))
    logits, loss = model(idx)
    assert logits.shape == (2, 7, 13) and loss is None and logits.dtype == np.float32
    last, _ = model(idx, last_logits_only=True)
    np.testing.assert_allclose(last.numpy(), logits.numpy()[:, -1:], rtol=1e-6)
    targets = np.full((2, 7), -1)
    targets[:, 0] = idx[:, 1]
    _, loss = model(idx, targets)
    manual = tl.functional.cross_entropy(logits[:, 0], idx[:, 1])
    np.testing.assert_allclose(loss.item(), manual.item(), rtol=1e-6)
    loss.backward()
    assert loss.dtype == np.float32 and all(p.grad.dtype == np.float32 for p in model.parameters())
    clone = copy.deepcopy(model)  # with the attention weights of this forward attached
    np.testing.assert_array_equal(clone(idx)[0].numpy(), logits.numpy())
    maps = model.attention_maps()
    assert list(maps) == ["transformer.h.0.attn", "transformer.h.1.attn"]
    weights = maps["transformer.h.1.attn"].numpy()
    assert weights.shape == (2, 2, 7, 7)
    np.testing.assert_allclose(weights.sum(-1), 1, rtol=1e-5)
    assert not weights[..., np.triu(np.ones((7, 7), dtype=bool), 1)].any()


def test_dropout_only_in_training():
    tl.manual_seed(0)
    model = GPT(tiny(dropout=0.3))
    idx = np.random.default_rng(0).integers(0, 13, size=(2, 6))
    assert not np.allclose(model(idx)[0].numpy(), model(idx)[0].numpy())
    model.eval()
    np.testing.assert_array_equal(model(idx)[0].numpy(), model(idx)[0].numpy())


def test_gpt_overfits_one_batch():
    tl.manual_seed(0)
    rng = np.random.default_rng(0)
    model = GPT(GPTConfig(vocab_size=16, block_size=16, n_layer=2, n_head=2, n_embd=32))
    data = rng.integers(0, 16, size=(4, 17))
    x, y = data[:, :-1], data[:, 1:]
    optimizer = Adam(model.parameters(), lr=1e-2)
    start = time.perf_counter()
    for step in range(300):
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.01:
            break
    assert loss.item() < 0.05, f"loss still {loss.item():.3f} after {step + 1} steps"
    assert time.perf_counter() - start < 30


# ----------------------------------------------------------------------------- bad input
def test_gpt_bad_input():
    model = GPT(tiny())
    with pytest.raises(ValueError, match="a sequence of 9 tokens is longer than block_size=8"):
        model(np.zeros((1, 9), dtype=np.int64))
    with pytest.raises(ValueError, match=r"idx must be token ids shaped \(batch, seq\), got shape \(5,\)"):
        model(np.zeros(5, dtype=np.int64))
    with pytest.raises(TypeError, match="idx must be integer token ids, got dtype float64"):
        model(np.zeros((1, 5)))
    with pytest.raises(ValueError, match=r"targets must have shape \(1, 5\) \(batch, seq\), got \(1, 4\)"):
        model(np.zeros((1, 5), dtype=np.int64), np.zeros((1, 4), dtype=np.int64))
    with pytest.raises(IndexError, match="id 13 is out of range for 13 embeddings"):
        model(np.full((1, 3), 13))
    with pytest.raises(ValueError, match=r"GPTConfig.n_embd must be divisible by n_head=4, got 10"):
        GPTConfig(n_embd=10, n_head=4)
    with pytest.raises(TypeError, match="GPT expects a GPTConfig"):
        GPT(dict(vocab_size=3))


# ----------------------------------------------------------------------------- every device
def test_gpt_on_every_device(device):
    model = GPT(tiny())
    idx = np.random.default_rng(0).integers(0, 13, size=(2, 8))
    expected, expected_loss = model(idx, idx)
    model.to(device)
    ids = tl.Tensor(idx, device=device)
    logits, loss = model(ids, ids)
    np.testing.assert_allclose(logits.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(loss.item(), expected_loss.item(), rtol=1e-5)
    loss.backward()
    assert all(tl.backend.array_device(p.grad).name == device for p in model.parameters())
    model.eval()
    with tl.no_grad():
        cache = model.new_kv_cache()
        pieces = [model(ids[:, :5], kv_cache=cache)[0], model(ids[:, 5:6], kv_cache=cache)[0],
                  model(ids[:, 6:], kv_cache=cache)[0]]
    np.testing.assert_allclose(np.concatenate([p.numpy() for p in pieces], axis=1), expected.numpy(),
                               rtol=1e-4, atol=1e-5)
