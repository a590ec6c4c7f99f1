"""Optimizers: how a gradient becomes a step.

After ``loss.backward()`` each parameter θ holds g = ∂L/∂θ in ``θ.grad``. An optimizer turns
g into a change of ``θ.data``, in place, and keeps whatever it remembers between steps
(momentum, running averages) in ``optimizer.state[θ]``. The classes follow ``torch.optim``:
same constructor arguments, same defaults, same ``param_groups``, same update formulas
(the tests compare 20 steps against PyTorch in float64), so what a reader knows from one
carries over to the other::

    optimizer = AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    for x, y in batches:
        loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

Each update below is written as its formula. ``θ.grad`` is only read (another tensor may
share it); ``θ.data`` and the state arrays are changed in place (a tied weight shares θ, and
must see the change), and the parameter's version counter records the write. On the CPU a
faster implementation of the Adam update runs instead (:mod:`tinyllm.kernels`: the same
formula in pieces on all cores, allocating nothing after the first step).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import backend, kernels
from ..tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "param_groups", "clip_grad_norm_"]


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad``, ``state_dict``.

    ``params`` is an iterable of tensors, or a list of dicts (parameter groups) such as
    ``[{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]``;
    a key a group leaves out takes the optimizer's default. ``param_groups`` is that list of
    dicts, and its values are live: a schedule changes ``group["lr"]`` between steps.
    """

    _state_keys = ()  # what every entry of ``state`` holds (load_state_dict checks it)

    def __init__(self, params, defaults: dict):
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of tensors or of parameter-group dicts, "
                            "got a single Tensor; wrap it in a list")
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict = {}  # parameter -> {"step": int, buffer name: array}
        try:
            groups = list(params)
        except TypeError:
            raise TypeError(f"params must be an iterable of tensors or of parameter-group dicts, "
                            f"got {type(params).__name__}") from None
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)
        if not any(group["params"] for group in self.param_groups):
            raise ValueError("optimizer got an empty parameter list")

    def add_param_group(self, group: dict) -> None:
        """Add a group of parameters with its own hyperparameters (missing ones: defaults)."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError("a parameter group is a dict with a 'params' key")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                hint = " (pass model.parameters(), not named_parameters())" if isinstance(p, tuple) else ""
                raise TypeError(f"optimizers take Tensors, got a {type(p).__name__}{hint}")
            if not np.issubdtype(p.dtype, np.floating):
                raise TypeError(f"can only optimize floating-point tensors, got one of dtype {p.dtype}")
            if id(p) in seen:
                raise ValueError("a parameter appears twice in the optimizer's groups (tied weights "
                                 "should be passed once)")
            seen.add(id(p))
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(f"unknown hyperparameters {sorted(unknown)} for {type(self).__name__}; "
                             f"expected some of {sorted(self.defaults)}")
        full = {**self.defaults, **group, "params": params}
        self._check_hyperparameters(full)
        self.param_groups.append(full)

    @staticmethod
    def _check_hyperparameters(group: dict) -> None:
        """Refuse values that would make the update meaningless, naming the culprit."""
        for key in ("lr", "eps", "weight_decay", "momentum", "dampening"):
            if key not in group:
                continue
            if isinstance(group[key], bool) or not isinstance(group[key], numbers.Real):
                raise TypeError(f"{key} must be a number, got {type(group[key]).__name__} {group[key]!r}")
            if not 0 <= group[key] < math.inf:
                raise ValueError(f"{key} must be a finite number >= 0, got {group[key]!r}")
        if "betas" in group and not group["eps"] > 0:  # Adam's ε keeps √v + ε away from 0
            raise ValueError(f"eps must be > 0, got {group['eps']!r}: with ε = 0 a coordinate whose "
                             f"gradient is 0 would become 0/0 = NaN")
        if "betas" in group:
            betas = group["betas"]
            if (not isinstance(betas, (tuple, list)) or len(betas) != 2
                    or not all(isinstance(b, numbers.Real) and 0.0 <= b < 1.0 for b in betas)):
                raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        if group.get("nesterov") and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")

    # ------------------------------------------------------------------ the training loop
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient, ready for the next backward: ``p.grad = None``,
        or, with ``set_to_none=False``, zeros written into the existing gradient arrays."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad[...] = 0

    def step(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no step()")

    def _check_gradients(self) -> None:
        """Before any parameter changes: every gradient is an array of its parameter's shape,
        dtype and device, and the state was made on the parameter's device (a model moved
        after the first step). A step either happens whole or not at all."""
        name = type(self).__name__
        for index, p in enumerate(self._parameters()):
            g = p.grad
            if g is None:
                continue
            if not isinstance(g, p._device.array_type):
                where = backend.array_device(g)
                got = f"on {where.name!r}" if where is not None else f"a {type(g).__name__}"
                raise RuntimeError(f"{name}: parameter {index} {p.shape} is on {p.device!r} but its gradient "
                                   f"is {got}; gradients must be arrays on the parameter's device")
            if g.shape != p.data.shape:
                raise ValueError(f"{name}: parameter {index} has shape {p.shape} but its gradient has "
                                 f"shape {tuple(g.shape)}")
            if g.dtype != p.dtype:
                raise TypeError(f"{name}: parameter {index} is {p.dtype} but its gradient is {g.dtype}")
            for key, value in self.state.get(p, {}).items():
                if hasattr(value, "shape") and not isinstance(value, p._device.array_type):
                    where = backend.array_device(value)
                    raise RuntimeError(f"{name}: parameter {index} is on {p.device!r} but its state "
                                       f"{key!r} is on {getattr(where, 'name', '?')!r} (the parameter moved "
                                       f"after the optimizer's first step); move the model before "
                                       f"making the optimizer, or load its state_dict again")

    # ------------------------------------------------------------------ saving and loading
    def _parameters(self) -> list:
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self, copy: bool = True) -> dict:
        """A snapshot of the optimizer, made of NumPy arrays and plain Python values only::

            {"state": {index: {"step": int, name: np.ndarray, ...}},
             "param_groups": [{"lr": ..., ..., "params": [index, ...]}]}

        Parameters are numbered in group order, as in ``torch.optim``. Arrays are host copies,
        so the snapshot does not change as training goes on; with ``copy=False`` they are the
        state's own arrays where it lives on the host (for writing them out at once).
        """
        index = {id(p): i for i, p in enumerate(self._parameters())}
        groups = []
        for group in self.param_groups:
            saved = {k: v for k, v in group.items() if k != "params"}
            saved["params"] = [index[id(p)] for p in group["params"]]
            groups.append(saved)
        state = {}
        for p, entry in self.state.items():
            state[index[id(p)]] = {name: (_host_copy(value) if copy else backend.to_host(value))
                                   if backend.array_device(value) is not None else value
                                   for name, value in entry.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a :meth:`state_dict` (the same parameters, in the same groups and order).

        Arrays are copied onto each parameter's device and cast to its dtype; the groups'
        hyperparameters (lr included) are taken from the snapshot. Nothing changes if the
        snapshot does not fit.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"the state dict has {len(saved_groups)} parameter groups, "
                             f"this optimizer {len(self.param_groups)}")
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"parameter group {i} has {len(group['params'])} parameters, "
                                 f"the state dict's has {len(saved['params'])}")
        by_index = {}
        for saved, group in zip(saved_groups, self.param_groups):
            by_index.update({int(i): p for i, p in zip(saved["params"], group["params"])})

        new_state = {}
        for key, entry in state_dict["state"].items():
            if int(key) not in by_index:
                raise ValueError(f"the state dict has state for parameter {key}, which no group lists")
            p = by_index[int(key)]
            restored = {}
            for name, value in entry.items():
                if backend.array_device(value) is None:
                    restored[name] = value
                    continue
                if tuple(value.shape) != p.shape:
                    raise ValueError(f"state {name!r} of parameter {key} has shape {tuple(value.shape)}, "
                                     f"the parameter {p.shape}")
                host = np.array(backend.to_host(value), dtype=p.dtype)  # a copy: never alias the input
                restored[name] = backend.to_device(host, p.device)
            missing = [k for k in self._state_keys if k not in restored]
            if missing:
                raise ValueError(f"the state dict's state for parameter {key} lacks {missing} "
                                 f"({type(self).__name__} keeps {list(self._state_keys)})")
            new_state[p] = restored

        for saved, group in zip(saved_groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    # JSON turns tuples (betas) into lists; keep the type the group had
                    group[k] = tuple(v) if isinstance(group.get(k), tuple) else v
        self.state = new_state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            settings = ", ".join(f"{k}={v}" for k, v in group.items() if k != "params")
            lines.append(f"  group {i}: {len(group['params'])} tensors, {settings}")
        return "\n".join(lines + [")"])


def _host_copy(array) -> np.ndarray:
    """A host NumPy copy of a backend array (``to_host`` copies device arrays already)."""
    host = backend.to_host(array)
    return host.copy() if host is array else host


# ----------------------------------------------------------------------------- SGD
class SGD(Optimizer):
    r"""Stochastic gradient descent, with optional momentum, Nesterov momentum and L2 decay.

    For each parameter θ with gradient g, weight decay λ, momentum μ, dampening τ:

    .. math::

        g &\leftarrow g + λθ                                \\
        b &\leftarrow μ b + (1 - τ) g \quad (b = g \text{ at the first step}) \\
        g &\leftarrow g + μ b \text{ (Nesterov)} \quad\text{or}\quad g \leftarrow b \\
        θ &\leftarrow θ - \text{lr}\, g

    With μ = 0 it is plain θ ← θ − lr·g. Arguments and their order as ``torch.optim.SGD``.
    """

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def step(self) -> None:
        """Update every parameter that has a gradient (the others are left alone)."""
        self._check_gradients()
        for group in self.param_groups:
            lr, momentum = float(group["lr"]), float(group["momentum"])
            dampening, weight_decay = float(group["dampening"]), float(group["weight_decay"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad + weight_decay * p.data if weight_decay else p.grad  # g + λθ
                if momentum:
                    state = self.state.setdefault(p, {})
                    buffer = state.get("momentum_buffer")
                    if buffer is None:
                        buffer = state["momentum_buffer"] = g.copy()
                    else:  # b ← μb + (1 − τ)g, in place: the state keeps the same array
                        buffer *= momentum
                        buffer += (1.0 - dampening) * g
                    g = g + momentum * buffer if group["nesterov"] else buffer
                p.data -= lr * g
                p.bump_version()


# ----------------------------------------------------------------------------- Adam, AdamW
class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015): momentum and a per-coordinate step size from running averages.

    At step t, for each parameter θ with gradient g (weight decay λ as L2, added to g):

    .. math::

        g &\leftarrow g + λθ                                   \\
        m &\leftarrow β_1 m + (1-β_1)\, g                      \\
        v &\leftarrow β_2 v + (1-β_2)\, g^2                    \\
        \hat m = m / (1-β_1^t), &\quad \hat v = v / (1-β_2^t)   \\
        θ &\leftarrow θ - \text{lr}\, \hat m / (\sqrt{\hat v} + ε)

    ``m`` and ``v`` start at zero, which is why the bias corrections divide by 1 − βᵗ.
    The state per parameter is ``step``, ``exp_avg`` (m) and ``exp_avg_sq`` (v), as torch.
    """

    decoupled_weight_decay = False
    _state_keys = ("step", "exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        betas = tuple(betas) if isinstance(betas, (list, tuple)) else betas
        self._eps_checked = set()  # (dtype, ε·√(1−β₂)) pairs already found representable
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def step(self) -> None:
        """Update every parameter that has a gradient (the others keep their state and step)."""
        self._check_gradients()
        self._check_eps()
        for group in self.param_groups:
            lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
            beta1, beta2 = (float(b) for b in group["betas"])
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, lr, beta1, beta2, eps, weight_decay)

    def _check_eps(self) -> None:
        """Refuse an ε that rounds to 0 in a parameter's dtype (in float16 the default 1e-8
        does): the denominator √v + ε would then be 0 wherever a gradient is 0, and θ would
        become 0/0 = NaN. The smallest term added is ε·√(1−β₂), at the first step."""
        for group in self.param_groups:
            eps, beta2 = float(group["eps"]), float(group["betas"][1])
            term = eps * math.sqrt(1.0 - beta2)
            for p in group["params"]:
                if p.grad is None or (p.dtype, term) in self._eps_checked:
                    continue
                if p.dtype.type(term) == 0:
                    smallest = float(np.finfo(p.dtype).smallest_subnormal) / math.sqrt(1.0 - beta2)
                    usual = " (1e-4 is usual for float16)" if p.dtype == np.float16 else ""
                    index = next(i for i, q in enumerate(self._parameters()) if q is p)
                    raise ValueError(f"{type(self).__name__}: eps={eps:g} is too small for {p.dtype} parameters "
                                     f"(parameter {index}): ε·√(1−β₂) = {term:.2g} rounds to 0 in {p.dtype}, so "
                                     f"a coordinate whose gradient is 0 would become 0/0 = NaN; use eps >= "
                                     f"{smallest:.1g}{usual} or float32 parameters")
                self._eps_checked.add((p.dtype, term))

    def _update(self, p, lr, beta1, beta2, eps, weight_decay):
        state = self.state.get(p)
        if state is None:
            state = self.state[p] = {"step": 0, "exp_avg": p.xp.zeros_like(p.data),
                                     "exp_avg_sq": p.xp.zeros_like(p.data)}
        state["step"] += 1
        adam_update(p._device, p.data, p.grad, state["exp_avg"], state["exp_avg_sq"], state["step"],
                    lr, beta1, beta2, eps, weight_decay, self.decoupled_weight_decay)
        p.bump_version()


@kernels.replaceable
def adam_update(device, theta, g, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    """One Adam step of one parameter, in place on θ, m and v (the formulas of :class:`Adam`
    and :class:`AdamW`); ``step`` is t, counted from 1."""
    if decoupled:
        theta *= 1.0 - lr * weight_decay          # AdamW: θ ← θ − lr·λθ
    elif weight_decay:
        g = g + weight_decay * theta              # Adam: g ← g + λθ
    m *= beta1
    m += (1.0 - beta1) * g                        # m ← β₁m + (1−β₁)g
    v *= beta2
    v += (1.0 - beta2) * g * g                    # v ← β₂v + (1−β₂)g²
    m_hat = m / (1.0 - beta1 ** step)
    v_hat = v / (1.0 - beta2 ** step)
    theta -= lr * m_hat / (device.xp.sqrt(v_hat) + eps)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    The decay shrinks θ directly instead of entering g, so it is not rescaled by √v̂:

    .. math::

        θ &\leftarrow θ - \text{lr}\,λ\,θ                      \\
        m &\leftarrow β_1 m + (1-β_1)\, g, \quad v \leftarrow β_2 v + (1-β_2)\, g^2 \\
        θ &\leftarrow θ - \text{lr}\, \hat m / (\sqrt{\hat v} + ε)

    Default λ = 0.01, as ``torch.optim.AdamW``. Use :func:`param_groups` to keep biases,
    norms and embeddings out of the decay.
    """

    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


# ----------------------------------------------------------------------------- helpers
def _is_embedding_name(name: str) -> bool:
    modules = name.lower().split(".")[:-1]  # the last part is the attribute ("weight")
    return any(m in ("wte", "wpe") or "emb" in m for m in modules)


def param_groups(named_params, weight_decay: float, decay_embeddings: bool = False) -> list[dict]:
    """The usual two groups for (Adam)W: decayed matrices, and everything else undecayed.

    The rule: a parameter is decayed when it has 2 or more dimensions (the weights of
    Linear-like layers), unless a module in its name is an embedding (``wte``, ``wpe``, or
    any name containing ``emb``: ``embedding``, ``tok_emb``...). Biases, LayerNorm weights
    and other 1-D gains are never decayed: shrinking them toward 0 has no regularising
    meaning. nanoGPT decays embeddings too (it decays every 2-D tensor); pass
    ``decay_embeddings=True`` to do the same.

    ``named_params``: ``(name, tensor)`` pairs or a dict, e.g. ``model.named_parameters()``.
    A tensor listed twice (tied weights) goes into the group of its first name.
    Returns ``[{"params": decay, "weight_decay": weight_decay},
    {"params": no_decay, "weight_decay": 0.0}]``, ready for ``AdamW(groups, lr=...)``.
    """
    items = named_params.items() if hasattr(named_params, "items") else named_params
    decay, no_decay, seen = [], [], set()
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Tensor)):
            raise TypeError(f"param_groups takes (name, tensor) pairs such as model.named_parameters(), "
                            f"got a {type(item).__name__}")
        name, p = item
        if id(p) in seen:
            continue
        seen.add(id(p))
        if p.ndim >= 2 and (decay_embeddings or not _is_embedding_name(name)):
            decay.append(p)
        else:
            no_decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def clip_grad_norm_(params, max_norm: float) -> float:
    r"""Scale all gradients together so that their joint L2 norm is at most ``max_norm``.

    .. math::

        \lVert g \rVert = \sqrt{\textstyle\sum_{θ} \sum_i g_{θ,i}^2}, \qquad
        g \leftarrow g \cdot \frac{\text{max\_norm}}{\lVert g \rVert + 10^{-6}}
        \ \text{ when that factor is below 1}

    Returns the norm before clipping, as a Python float (one device-to-host sync). As in
    torch, a non-finite norm makes the factor NaN or 0, which spreads to the gradients.
    Gradients are replaced (``p.grad = p.grad * coef``, keeping their dtype), never changed in
    place. Half-precision gradients are squared and summed in float32, as torch does: in
    float16, 300² already overflows to inf.
    """
    params = [params] if isinstance(params, Tensor) else list(params)
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) or not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be a number >= 0, got {max_norm!r}")
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"clip_grad_norm_ takes Tensors (model.parameters()), got a {type(p).__name__}")
    grads = [p for p in params if p.grad is not None]
    if not grads:
        return 0.0
    squares = 0.0
    for p in grads:
        flat = p.grad.reshape(-1)
        if flat.dtype.itemsize < 4:
            flat = flat.astype(np.float32)
        squares = squares + p.xp.vdot(flat, flat)  # Σ g², on the device, no temporary
    total_norm = math.sqrt(float(squares))
    coef = max_norm / (total_norm + 1e-6)
    if not coef >= 1.0:  # also true for NaN, as torch
        for p in grads:
            p.grad = p.grad * coef
    return total_norm
