"""Helpers shared by the Llama and LoRA tests (a plain module, not a conftest): a small
random float64 ``transformers.LlamaForCausalLM``, and a fixture that makes its two float32
steps float64 so that it can be compared with tinyllm's Llama to rounding."""
import pytest


def hf_llama(kv_heads, tie=False, seed=0):
    """A random float64 LlamaForCausalLM (norm weights moved off 1, so they matter)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(vocab_size=37, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=kv_heads, max_position_embeddings=16,
                                      rms_norm_eps=1e-6, tie_word_embeddings=tie)
    model = transformers.LlamaForCausalLM(config).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.2 * torch.randn_like(p))
    return model


def numpy_state(module):
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


@pytest.fixture
def float64_hugging_face(monkeypatch):
    """transformers' Llama with its two float32 steps done in float64: RMSNorm upcasts to
    float32 and the rotary angles are computed in float32, even in a float64 model."""
    torch = pytest.importorskip("torch")
    modeling_llama = pytest.importorskip("transformers.models.llama.modeling_llama")

    def rms_norm(self, hidden):
        return self.weight * (hidden * torch.rsqrt(hidden.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))

    def rotary(self, x, position_ids):
        dim = 2 * self.inv_freq.shape[0]
        theta = getattr(self.config, "rope_parameters", None) or {}
        theta = theta.get("rope_theta", getattr(self.config, "rope_theta", 10000.0))
        angles = position_ids[..., None].double() * theta ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        angles = torch.cat((angles, angles), dim=-1)
        return angles.cos().to(x.dtype), angles.sin().to(x.dtype)

    monkeypatch.setattr(modeling_llama.LlamaRMSNorm, "forward", rms_norm)
    monkeypatch.setattr(modeling_llama.LlamaRotaryEmbedding, "forward", rotary)
