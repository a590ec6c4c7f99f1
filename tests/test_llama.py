"""tl.models.Llama: equal to transformers' LlamaForCausalLM (logits, loss, gradients; with and
without grouped-query attention), its KV cache, generation for both model families (sampling,
stop tokens, beam search), and training it with the trainer and the command line."""
import itertools

import numpy as np
import pytest

import tinyllm as tl
from tinyllm.cli import main
from tinyllm.generate import generate, generate_beam
from tinyllm.models import GPT, GPTConfig, Llama, LlamaConfig, load_safetensors
from llama_helpers import float64_hugging_face, hf_llama, numpy_state  # noqa: F401 (a fixture)


def tiny(**overrides):
    fields = dict(vocab_size=13, block_size=8, n_layer=2, n_head=4, n_kv_head=2, n_embd=16, intermediate_size=24)
    fields.update(overrides)
    return LlamaConfig(**fields)


def largest_relative_differences(theirs, mine, label):
    """max |ours − theirs| / max |theirs| over the logits and over each gradient; printed (pytest -s)."""
    logits = np.abs(mine[0] - theirs[0]).max() / np.abs(theirs[0]).max()
    grads = max(np.abs(mine[2][n] - g).max() / np.abs(g).max() for n, g in theirs[2].items())
    print(f"\n{label}: largest relative difference, logits {logits:.1e}, gradients {grads:.1e}")
    return logits, grads


def logits_loss_and_gradients(hf, ours, idx, targets):
    """Both models' logits, loss and parameter gradients (by our names)."""
    import torch
    hf.zero_grad()
    logits = hf(torch.tensor(idx)).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.tensor(targets).reshape(-1),
                                             ignore_index=-1)
    loss.backward()
    theirs = (logits.detach().numpy(), loss.item(), {n: p.grad.numpy() for n, p in hf.named_parameters()})
    logits, loss = ours(idx, targets)
    loss.backward()
    return theirs, (logits.numpy(), loss.item(), {n: p.grad for n, p in ours.named_parameters()})


# ----------------------------------------------------------------------------- parity with transformers
@pytest.mark.parametrize("kv_heads", [4, 2, 1], ids=["multi-head", "grouped-query", "multi-query"])
def test_logits_loss_and_gradients_equal_transformers(kv_heads, float64_hugging_face):
    hf = hf_llama(kv_heads)
    ours = Llama.from_hf(numpy_state(hf), hf.config)
    assert ours.config.n_kv_head == kv_heads and ours.dtype == np.float64
    rng = np.random.default_rng(0)
    idx, targets = rng.integers(0, 37, (3, 11)), rng.integers(0, 37, (3, 11))
    targets[0, :4] = -1  # ignored, as in instruction tuning
    theirs, mine = logits_loss_and_gradients(hf, ours, idx, targets)
    largest_relative_differences(theirs, mine, f"n_kv_head={kv_heads}, transformers' float32 steps made float64")
    np.testing.assert_allclose(mine[0], theirs[0], rtol=1e-10, atol=1e-13)
    assert abs(mine[1] - theirs[1]) < 1e-12
    assert set(mine[2]) == set(theirs[2])
    for name, grad in theirs[2].items():
        np.testing.assert_allclose(mine[2][name], grad, rtol=1e-9, atol=1e-13, err_msg=name)


@pytest.mark.parametrize("kv_heads", [4, 2, 1])
def test_unpatched_transformers_differs_by_its_float32_steps_only(kv_heads):
    """Without the fixture, transformers rounds RMSNorm and the rotary angles to float32:
    the logits then agree to ~1e-8 (float32's precision on values ~0.1), no better."""
    hf = hf_llama(kv_heads, seed=1)
    ours = Llama.from_hf(numpy_state(hf), hf.config)
    rng = np.random.default_rng(1)
    idx, targets = rng.integers(0, 37, (2, 16)), rng.integers(0, 37, (2, 16))
    theirs, mine = logits_loss_and_gradients(hf, ours, idx, targets)
    logits, grads = largest_relative_differences(theirs, mine, f"n_kv_head={kv_heads}, transformers as it is")
    assert logits < 1e-6 and grads < 1e-5


def test_weights_round_trip_through_transformers_and_safetensors(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tl.manual_seed(3)
    ours = Llama(tiny(tie_embeddings=True), dtype=np.float64)
    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(**ours.config.to_hf())).double()
    hf.load_state_dict({k: torch.from_numpy(v) for k, v in ours.to_hf_state_dict().items()}, strict=True)
    assert hf.lm_head.weight.data_ptr() == hf.model.embed_tokens.weight.data_ptr()  # tied there too
    path = str(tmp_path / "model.safetensors")
    safetensors_numpy.save_file({k: np.ascontiguousarray(v) for k, v in numpy_state(hf).items()
                                 if k != "lm_head.weight"}, path)  # tied: one copy on disk
    back = Llama.from_hf(path, hf.config)
    assert back.config == ours.config and back.lm_head.weight is back.model.embed_tokens.weight
    idx = np.random.default_rng(0).integers(0, 13, (2, 8))
    np.testing.assert_allclose(back(idx)[0].numpy(), ours(idx)[0].numpy(), rtol=1e-12)
    assert set(load_safetensors(path)) == set(ours.state_dict()) - {"lm_head.weight"}


def test_config_conversion_and_errors():
    config = tiny(rope_theta=500.0)
    assert LlamaConfig.from_hf(config.to_hf()) == config
    assert LlamaConfig().intermediate_size == 11008 and LlamaConfig().n_kv_head == 32  # Llama-2-7B's shape
    with pytest.raises(ValueError, match="rope type 'linear' is not implemented"):
        LlamaConfig.from_hf({**config.to_hf(), "rope_parameters": {"rope_type": "linear", "rope_theta": 1e4}})
    with pytest.raises(ValueError, match=r"LlamaConfig.n_kv_head must be a divisor of n_head=4, got 3"):
        tiny(n_kv_head=3)
    with pytest.raises(ValueError, match="even head size"):
        tiny(n_embd=12, n_head=4)
    with pytest.raises(ValueError, match="no 'model.embed_tokens.weight'"):
        Llama.from_hf({"lm_head.weight": np.zeros((13, 16))}, tiny())
    with pytest.raises(TypeError, match="Llama expects a LlamaConfig"):
        Llama(GPTConfig())


def test_gradcheck_tiny_llama(device):
    tl.manual_seed(0)
    model = Llama(tiny(n_embd=8, n_head=2, n_kv_head=1, intermediate_size=6, vocab_size=7, block_size=5),
                  device=device, dtype=np.float64)
    for p in model.parameters():  # away from the unit norms
        p.data += tl.Tensor(0.1 * np.random.default_rng(p.size).standard_normal(p.shape), device=device).data
    rng = np.random.default_rng(0)
    idx = tl.Tensor(rng.integers(0, 7, size=(2, 5)), device=device)
    targets = rng.integers(0, 7, size=(2, 5))
    targets[0, 1] = -1
    targets = tl.Tensor(targets, device=device)
    assert tl.gradcheck(lambda *_: model(idx, targets)[1], *model.parameters(), projections=3)


# ----------------------------------------------------------------------------- KV cache
@pytest.mark.parametrize("chunks", [[3, 1, 1, 1, 2], [1] * 8, [8], [2, 3, 3]])
@pytest.mark.parametrize("kv_heads", [4, 2, 1])
def test_kv_cache_gives_the_full_forward_logits(chunks, kv_heads):
    tl.manual_seed(1)
    model = Llama(tiny(n_kv_head=kv_heads), dtype=np.float64).eval()
    idx = np.random.default_rng(1).integers(0, 13, size=(3, 8))
    with tl.no_grad():
        full, _ = model(idx)
        cache = model.new_kv_cache()
        pieces, start = [], 0
        for n in chunks:
            pieces.append(model(idx[:, start:start + n], kv_cache=cache)[0].numpy())
            start += n
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full.numpy(), rtol=1e-10, atol=1e-12)
    # the cache holds the key/value heads only: n_head / n_kv_head times less than multi-head
    assert cache.keys[0].shape == (3, kv_heads, 8, 4)
    assert cache.nbytes == model.kv_cache_bytes(batch=3, length=8) == 2 * 2 * 3 * kv_heads * 8 * 4 * 8
    assert model.attention_maps()["model.layers.0.self_attn"].shape == (3, 4, chunks[-1], 8)


@pytest.mark.parametrize("family", ["gpt", "llama"])
def test_generation_works_unchanged_for_both_families(family, device):
    tl.manual_seed(2)
    model = (GPT(GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8), device=device)
             if family == "gpt" else Llama(tiny(), device=device))
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    # the cache gives the same tokens as rerunning the context, past block_size too
    for options in (dict(temperature=0), dict(temperature=1.0, top_k=4), dict(temperature=0.8, top_p=0.9)):
        cached = generate(model, prompt, 12, use_cache=True, rng=np.random.default_rng(0), **options)
        rerun = generate(model, prompt, 12, use_cache=False, rng=np.random.default_rng(0), **options)
        np.testing.assert_array_equal(cached, rerun)
        assert cached.shape == (2, 15)
    greedy = generate(model, prompt[:1], 12, temperature=0)[0]
    stop = int(greedy[5])  # a token greedy decoding emits: generation stops there
    stopped = generate(model, prompt[:1], 12, temperature=0, stop_tokens=[stop])[0]
    assert stopped[-1] == stop and stop not in stopped[3:-1].tolist()
    # beam search: one beam is greedy; the cache changes nothing
    ids, _ = generate_beam(model, prompt[0], 6, beam_size=1)
    np.testing.assert_array_equal(ids, greedy[:9])
    with_cache = generate_beam(model, prompt[0], 10, beam_size=3, use_cache=True)
    without = generate_beam(model, prompt[0], 10, beam_size=3, use_cache=False)
    np.testing.assert_array_equal(with_cache[0], without[0])
    assert abs(with_cache[1] - without[1]) < 1e-4


def test_beam_search_finds_the_most_likely_continuation():
    """With as many beams as continuations of all but the last token, beam search is exact."""
    tl.manual_seed(4)
    model = Llama(tiny(vocab_size=5, block_size=6), dtype=np.float64).eval()
    prompt = [1, 3]
    best, best_score = None, -np.inf
    with tl.no_grad():
        for continuation in itertools.product(range(5), repeat=3):
            ids = np.array([prompt + list(continuation)])
            logp = tl.functional.log_softmax(model(ids[:, :-1])[0]).numpy()[0]
            score = sum(logp[len(prompt) - 1 + i, t] for i, t in enumerate(continuation))
            if score > best_score:
                best, best_score = continuation, score
    ids, score = generate_beam(model, prompt, 3, beam_size=25)
    assert tuple(ids[2:]) == best and abs(score - best_score) < 1e-10


# ----------------------------------------------------------------------------- training
def test_llama_trains_with_the_trainer_and_the_command_line(tmp_path, capsys):
    out = str(tmp_path / "llama")
    args = ["--model", "llama", "--n-layer", "1", "--n-head", "2", "--n-kv-head", "1", "--n-embd", "16",
            "--intermediate-size", "32", "--block-size", "16", "--batch-size", "4", "--eval-iters", "1",
            "--progress", "false", "--warmup-iters", "2", "--learning-rate", "1e-2"]
    assert main(["train", "--out", out, "--max-iters", "30", "--eval-interval", "30", "--max-new-tokens", "8",
                 *args]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("training llama (")
    from tinyllm.train import Trainer
    trainer = Trainer.from_checkpoint(out)
    assert isinstance(trainer.model, Llama) and trainer.model.config.n_kv_head == 1
    assert trainer.history["val_loss"][-1] < np.log(trainer.task.tokenizer.vocab_size) - 0.5
    assert main(["sample", "--out", out, "--prompt", "The", "--max-new-tokens", "5", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("The")
