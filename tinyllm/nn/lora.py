r"""LoRA: fine-tune a frozen model through small low-rank corrections of its matrices.

A Linear layer's weight W (out, in) stays frozen; next to it, two small matrices
A (r, in) and B (out, r) are trained, with r ≪ min(in, out):

    y = x Wᵀ + b + (α / r) · dropout(x) Aᵀ Bᵀ        i.e. the weight W + (α / r) B A

B starts at zero, so the wrapped model is exactly the base model at step 0; A starts as a
Linear layer's weight (U(−1/√in, 1/√in)), as ``peft``'s default. The backward needs no new
rule: x Aᵀ and (x Aᵀ) Bᵀ are two ``F.linear`` calls, whose backward gives

    ∂L/∂B = (α/r) gᵀ (x Aᵀ),    ∂L/∂A = (α/r) (g B)ᵀ x

and nothing reaches W (``requires_grad=False``): the optimizer keeps state for A and B only,
r·(in + out) numbers per layer instead of in·out. ``merge`` folds (α/r) B A into W for
inference at no extra cost per token; ``unmerge`` subtracts it again.

    model = Llama.from_hf(...)                       # or any trained GPT / Llama
    names = lora.wrap(model, targets=["q_proj", "v_proj"], rank=8, alpha=16)
    optimizer = AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    ...train...
    lora.save_adapters(model, "adapters.safetensors")   # the A and B matrices only
    lora.merge(model)                                    # W ← W + (α/r) B A, for inference

Names follow ``peft``: a wrapped layer keeps its name and holds ``base_layer`` (the
original Linear), ``lora_A`` and ``lora_B``; peft's ``…q_proj.lora_A.default.weight`` is
ours ``…q_proj.lora_A.weight`` (one adapter per layer here, so no adapter name).
"""
from __future__ import annotations

from ..checkpoint import load_checkpoint, save_checkpoint
from .. import functional as F
from . import init
from .layers import Dropout, Linear, check_positive
from .module import Module

__all__ = ["LoRALinear", "wrap", "lora_layers", "adapter_state_dict", "save_adapters", "load_adapters",
           "merge", "unmerge", "unwrap", "ALL_LINEAR"]

ALL_LINEAR = "all-linear"  # every Linear layer except the output head (peft's "all-linear")


class LoRALinear(Module):
    """A frozen :class:`Linear` (``base_layer``) plus a trainable rank-``rank`` correction
    (``lora_A`` (rank, in), ``lora_B`` (out, rank)), scaled by ``alpha / rank`` (see the
    module docstring). ``LoRALinear(base, rank=8, alpha=8, dropout=0.0)``."""

    def __init__(self, base: Linear, rank=8, alpha=8, dropout=0.0):
        super().__init__()
        if not isinstance(base, Linear):
            raise TypeError(f"LoRALinear wraps a tl.nn.Linear, got {type(base).__name__}")
        check_positive(rank, "rank", "LoRALinear")
        if not alpha > 0:
            raise ValueError(f"LoRALinear: alpha must be > 0, got {alpha!r}")
        self.base_layer = base.requires_grad_(False)
        kw = dict(bias=False, device=base.weight.device, dtype=base.weight.dtype)
        self.lora_A = Linear(base.in_features, rank, **kw)  # Linear's own init: U(−1/√in, 1/√in)
        self.lora_B = Linear(rank, base.out_features, **kw)
        init.zeros_(self.lora_B.weight)
        self.lora_dropout = Dropout(dropout)
        self.rank, self.alpha = int(rank), float(alpha)
        self.scaling = self.alpha / self.rank
        self.merged = False

    # the wrapped layer still reads as a Linear to code that inspects it
    in_features = property(lambda self: self.base_layer.in_features)
    out_features = property(lambda self: self.base_layer.out_features)
    weight = property(lambda self: self.base_layer.weight)
    bias = property(lambda self: self.base_layer.bias)

    def forward(self, x):
        y = self.base_layer(x)
        if self.merged:
            return y
        return y + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling

    def rows(self, x, start, stop):
        """Outputs ``start:stop`` only (GPT's packed ``c_attn`` reads Q, K, V this way):
        the base layer's rows plus the same rows of the correction, (x Aᵀ) B[start:stop]ᵀ."""
        y = self.base_layer.rows(x, start, stop)
        if self.merged:
            return y
        return y + F.linear(self.lora_A(self.lora_dropout(x)), self.lora_B.weight[start:stop]) * self.scaling

    def delta_weight(self):
        """(α / r) · B A, shaped like the base weight (a backend array)."""
        return (self.lora_B.weight.data @ self.lora_A.weight.data) * self.scaling

    def merge(self):
        """W ← W + (α/r) B A, in place: the forward then costs what the base layer's does."""
        if self.merged:
            raise RuntimeError("LoRALinear.merge: the adapter is already merged")
        self.base_layer.weight.data += self.delta_weight()
        self.base_layer.weight.bump_version()
        self.merged = True

    def unmerge(self):
        """W ← W − (α/r) B A: the base weight again (to one rounding per element)."""
        if not self.merged:
            raise RuntimeError("LoRALinear.unmerge: the adapter is not merged")
        self.base_layer.weight.data -= self.delta_weight()
        self.base_layer.weight.bump_version()
        self.merged = False

    def extra_repr(self):
        return f"rank={self.rank}, alpha={self.alpha:g}, merged={self.merged}"


# ----------------------------------------------------------------------------- whole models
def _matches(name, module, targets):
    if not isinstance(module, Linear):
        return False
    last = name.rsplit(".", 1)[-1]
    if targets == ALL_LINEAR:
        return last != "lm_head"
    return last in targets


def wrap(model: Module, targets=ALL_LINEAR, rank=8, alpha=8, dropout=0.0) -> list:
    """Freeze every parameter of ``model`` and put a :class:`LoRALinear` around each Linear
    layer whose name's last part is in ``targets`` (e.g. ``["q_proj", "v_proj"]``), or around
    every Linear but ``lm_head`` with ``targets="all-linear"``. Returns the wrapped names.

    A Linear whose weight is shared (a tied ``lm_head``) is refused: its correction would
    apply to one use only."""
    if targets != ALL_LINEAR:
        targets = [targets] if isinstance(targets, str) else list(targets)
    if lora_layers(model):
        raise ValueError("lora.wrap: the model already has LoRA layers (wrap it once)")
    found = [(name, m) for name, m in model.named_modules() if _matches(name, m, targets)]
    if not found:
        raise ValueError(f"lora.wrap: no Linear layer matches targets {targets!r}")
    shared = _shared_weights(model)
    model.requires_grad_(False)
    for name, linear in found:
        if id(linear.weight) in shared:
            raise ValueError(f"lora.wrap: {name}'s weight is shared with another layer (tied); leave it out "
                             f"of targets")
        parent, attribute = _parent(model, name)
        setattr(parent, attribute, LoRALinear(linear, rank=rank, alpha=alpha, dropout=dropout))
    return [name for name, _ in found]


def _shared_weights(model):
    """ids of the parameters reachable under more than one name (tied weights)."""
    counts = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        counts[id(p)] = counts.get(id(p), 0) + 1
    return {key for key, n in counts.items() if n > 1}


def _parent(model, name):
    parent = model
    *path, attribute = name.split(".")
    for part in path:
        parent = getattr(parent, part)
    return parent, attribute


def lora_layers(model: Module) -> dict:
    """name → :class:`LoRALinear` for every adapter in ``model``."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def adapter_state_dict(model: Module) -> dict:
    """name → host array of every adapter matrix (``….lora_A.weight``, ``….lora_B.weight``)
    and nothing else: what a fine-tuning run needs to save."""
    return {name: value for name, value in model.state_dict().items()
            if name.endswith((".lora_A.weight", ".lora_B.weight"))}


def save_adapters(model: Module, path, meta=None) -> None:
    """Write the adapters alone (a few kB to MB, not the base model) to a checksummed
    safetensors file, atomically, with their rank, α and targets in the metadata (plus
    ``meta``, e.g. which base checkpoint they belong to)."""
    layers = lora_layers(model)
    if not layers:
        raise ValueError("lora.save_adapters: the model has no LoRA layers (lora.wrap it first)")
    first = next(iter(layers.values()))
    info = {"rank": first.rank, "alpha": first.alpha, "dropout": first.lora_dropout.p,
            "targets": sorted({name.rsplit(".", 1)[-1] for name in layers}), "layers": sorted(layers)}
    save_checkpoint(path, adapter_state_dict(model), {"lora": info, **(meta or {})})


def load_adapters(model: Module, path) -> dict:
    """Wrap ``model`` as the adapters in ``path`` were (same layers, rank, α) unless it is
    already, and load their weights. Returns the file's metadata."""
    tensors, meta = load_checkpoint(path)
    info = meta.get("lora")
    if info is None:
        raise ValueError(f"{path}: not a LoRA adapter file (its metadata has no 'lora' entry)")
    if not lora_layers(model):
        wrap(model, targets=info["targets"], rank=info["rank"], alpha=info["alpha"], dropout=info["dropout"])
    layers = lora_layers(model)
    if sorted(layers) != info["layers"]:
        raise ValueError(f"{path}: adapters for layers {info['layers']}, but the model's LoRA layers are "
                         f"{sorted(layers)}")
    expected = adapter_state_dict(model)
    if sorted(expected) != sorted(tensors):
        raise ValueError(f"{path}: holds {sorted(tensors)}, the model expects {sorted(expected)}")
    model.load_state_dict(tensors, strict=False)
    return meta


def merge(model: Module) -> None:
    """Merge every adapter into its base weight (:meth:`LoRALinear.merge`)."""
    for layer in lora_layers(model).values():
        layer.merge()


def unmerge(model: Module) -> None:
    """Undo :func:`merge` on every adapter."""
    for layer in lora_layers(model).values():
        layer.unmerge()


def unwrap(model: Module, merge_adapters=True) -> Module:
    """Replace each :class:`LoRALinear` by its base Linear, with the adapter merged into it
    (``merge_adapters=True``, peft's ``merge_and_unload``) or dropped. Parameters stay frozen."""
    for name, layer in lora_layers(model).items():
        if merge_adapters and not layer.merged:
            layer.merge()
        elif not merge_adapters and layer.merged:
            layer.unmerge()
        parent, attribute = _parent(model, name)
        setattr(parent, attribute, layer.base_layer)
    return model
