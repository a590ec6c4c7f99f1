"""``Module``: the base class of every layer and model, as ``torch.nn.Module``.

A module owns *parameters* (tensors an optimizer trains), *buffers* (tensors that are part
of its state but not trained, such as a positional-encoding table) and *submodules*. Each
is registered simply by assigning it to an attribute::

    class TwoLayer(Module):
        def __init__(self):
            super().__init__()
            self.hidden = Linear(4, 8)      # a submodule: its parameters become ours
            self.scale = Parameter(np.ones(8, dtype=np.float32))
        def forward(self, x):
            return self.hidden(x) * self.scale

Registration order is assignment order, so ``parameters()``, ``named_parameters()`` and
``state_dict()`` always list the same names in the same order ("hidden.weight",
"hidden.bias", "scale"), the names torch gives the same module. A tensor reachable under two
names (tied weights) is listed once by ``parameters()`` and under both names by
``state_dict()``, exactly as torch does.

``state_dict()`` returns host NumPy copies; ``load_state_dict`` accepts NumPy arrays (or
tensors) and copies them *into* the existing parameters, so an optimizer holding those
parameter objects keeps working. ``to(device)`` and ``to(dtype)`` also convert in place,
keeping every ``Parameter`` object.
"""
from __future__ import annotations

import collections
import collections.abc
from typing import Iterator, NamedTuple

import numpy as np

from .. import backend
from ..backend import Device, get_device
from ..tensor import Tensor

__all__ = ["Parameter", "Buffer", "Module", "Sequential", "ModuleList", "ModuleDict", "LoadResult"]


# ----------------------------------------------------------------------------- tensors a module owns
class Parameter(Tensor):
    """A tensor that is a module parameter: ``requires_grad=True`` by default, and
    registered by the module it is assigned to.

    ``Parameter(data, requires_grad=True)``; ``data`` is a NumPy/CuPy array or a Tensor
    (whose memory is shared, as in torch).
    """

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        super().__init__(data)
        if not np.issubdtype(self.dtype, np.floating):
            raise TypeError(f"Parameter needs floating-point data, got dtype {self.dtype}")
        self.requires_grad = bool(requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Buffer(Tensor):
    """A tensor that is part of a module's state but is not trained (torch's ``nn.Buffer``).

    ``persistent=False`` keeps it out of ``state_dict()`` (for tables that are recomputed
    from the configuration, such as the sinusoidal positional encoding)."""

    __slots__ = ("persistent",)

    def __init__(self, data, persistent=True):
        super().__init__(data)
        self.persistent = bool(persistent)


class LoadResult(NamedTuple):
    """What ``load_state_dict(strict=False)`` could not match (torch's ``_IncompatibleKeys``)."""
    missing_keys: list
    unexpected_keys: list


# ----------------------------------------------------------------------------- Module
class Module:
    """Base class of layers and models (see the module docstring).

    Subclasses call ``super().__init__()`` first, assign parameters, buffers and submodules
    as attributes, and define ``forward``; calling the module calls ``forward``.
    """

    training: bool

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---------------------------------------------------------------- attribute registration
    def __setattr__(self, name, value):
        registries = self.__dict__.get("_parameters")
        if registries is None and isinstance(value, (Parameter, Buffer, Module)):
            raise AttributeError(f"cannot assign {type(value).__name__} {name!r} before "
                                 f"Module.__init__() was called: call super().__init__() first")
        if isinstance(value, Parameter):
            self._register("_parameters", name, value)
        elif isinstance(value, Module):
            self._register("_modules", name, value)
        elif isinstance(value, Buffer):
            self._register("_buffers", name, value)
        elif registries is not None and name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to parameter {name!r}: "
                                f"expected a tl.nn.Parameter or None")
            self._parameters[name] = None
        elif registries is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to submodule {name!r}: "
                                f"expected a tl.nn.Module or None")
            self._modules[name] = None
        elif registries is not None and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign a {type(value).__name__} to buffer {name!r}: "
                                f"expected a tl.Tensor or None")
            old = self._buffers[name]
            persistent = old.persistent if old is not None else True
            self._buffers[name] = None if value is None else Buffer(value, persistent=persistent)
        else:
            object.__setattr__(self, name, value)

    def _register(self, registry, name, value):
        """Put ``value`` in one registry (keeping its place if the name is already there)
        and out of the others and of the plain attributes."""
        self.__dict__.pop(name, None)
        for other in ("_parameters", "_buffers", "_modules"):
            if other != registry:
                self.__dict__[other].pop(name, None)
        self.__dict__[registry][name] = value

    def __getattr__(self, name):
        # Called only when ordinary lookup fails: look in the registries.
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Add a buffer (a non-trained tensor of the module's state); ``persistent=False``
        leaves it out of ``state_dict()``."""
        if tensor is not None and not isinstance(tensor, Tensor):
            tensor = Tensor(tensor)
        if tensor is None:
            self._register("_buffers", name, None)
        else:
            setattr(self, name, Buffer(tensor, persistent=persistent))

    def register_parameter(self, name: str, param) -> None:
        if param is None:
            self._register("_parameters", name, None)
        else:
            setattr(self, name, param if isinstance(param, Parameter) else Parameter(param))

    def add_module(self, name: str, module) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a tl.nn.Module, got {type(module).__name__}")
        if module is None:
            self._register("_modules", name, None)
        else:
            setattr(self, name, module)

    # ---------------------------------------------------------------- walking the tree
    def named_modules(self, prefix: str = "", memo=None) -> Iterator[tuple[str, "Module"]]:
        """(name, module) for this module and every submodule, parents before children,
        each module once."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(prefix + ("." if prefix else "") + name, memo)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self) -> Iterator["Module"]:
        for _, child in self.named_children():
            yield child

    def _named_members(self, registry, prefix, recurse, remove_duplicate):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, t in getattr(module, registry).items():
                if t is None or (remove_duplicate and id(t) in seen):
                    continue
                seen.add(id(t))
                yield module_prefix + ("." if module_prefix else "") + name, t

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(name, parameter) pairs in registration order; a tied parameter appears once,
        under the first name that reaches it."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter once (what an optimizer should update)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Buffer]]:
        return self._named_members("_buffers", prefix, recurse, True)

    def buffers(self, recurse: bool = True) -> Iterator[Buffer]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn) -> "Module":
        """Call ``fn(module)`` on every submodule (children first) and on this module."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---------------------------------------------------------------- state
    def _state_entries(self, prefix=""):
        """name -> tensor for every parameter and persistent buffer, in torch's order (a
        module's own parameters, then its buffers, then its children), tied names included."""
        entries = collections.OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                entries[prefix + name] = p
        for name, b in self._buffers.items():
            if b is not None and b.persistent:
                entries[prefix + name] = b
        for name, child in self._modules.items():
            if child is not None:
                entries.update(child._state_entries(prefix + name + "."))
        return entries

    def state_dict(self, copy: bool = True) -> "collections.OrderedDict[str, np.ndarray]":
        """name -> host NumPy copy of every parameter and persistent buffer.

        Tied tensors appear under each of their names (sharing one copy), as in torch.
        ``copy=False``: the host arrays themselves where the tensors are already on the host,
        as torch's ``state_dict`` gives tensors that share memory. They change as training
        goes on; for writing them out at once (a checkpoint) without spending their memory
        again."""
        out = collections.OrderedDict()
        copies = {}
        for name, t in self._state_entries().items():
            if id(t) not in copies:
                host = backend.to_host(t.data)  # a copy already, for device arrays
                copies[id(t)] = host.copy() if copy and host is t.data else host
            out[name] = copies[id(t)]
        return out

    def load_state_dict(self, state_dict, strict: bool = True) -> LoadResult:
        """Copy ``state_dict`` (name -> NumPy array or tensor) into this module's tensors.

        Values are cast to each parameter's dtype and copied onto its device, in place.
        Shapes must match. With ``strict=True`` the names must match exactly too. Every
        problem is collected first and reported in one error (nothing is copied then):
        missing keys, unexpected keys and mis-shaped keys, each with what was expected, and
        tied names (two names, one tensor here) whose values differ in ``state_dict`` (one
        would silently overwrite the other: the state comes from an untied model).
        Returns ``LoadResult(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(f"load_state_dict expects a mapping of name -> array, got {type(state_dict).__name__}")
        entries = self._state_entries()
        missing = [k for k in entries if k not in state_dict]
        unexpected = [k for k in state_dict if k not in entries]
        values, mis_shaped = {}, []
        for name, target in entries.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            if isinstance(value, Tensor):
                array = value.data
            elif backend.array_device(value) is not None:  # a NumPy or CuPy array
                array = value
            else:
                array = np.asarray(value)
            if tuple(array.shape) != target.shape:
                mis_shaped.append(f"{name}: expected shape {target.shape}, got {tuple(array.shape)}")
            values[name] = array
        first_name_of = {}
        conflicting = []
        for name in values:  # a tied tensor must get one value, whichever of its names carry it
            first = first_name_of.setdefault(id(entries[name]), name)
            if first != name and not np.array_equal(backend.to_host(values[first]), backend.to_host(values[name])):
                conflicting.append(f"{first} and {name} are one tied tensor here but differ in the state dict")
        if mis_shaped or conflicting or (strict and (missing or unexpected)):
            lines = [f"Error(s) in loading state_dict for {type(self).__name__}:"]
            if missing:
                lines.append(f"  missing keys ({len(missing)}): " + ", ".join(missing))
            if unexpected:
                lines.append(f"  unexpected keys ({len(unexpected)}): " + ", ".join(unexpected))
            if mis_shaped:
                lines.append(f"  mis-shaped keys ({len(mis_shaped)}):")
                lines.extend("    " + line for line in mis_shaped)
            if conflicting:
                lines.append(f"  tied keys with different values ({len(conflicting)}):")
                lines.extend("    " + line for line in conflicting)
            raise RuntimeError("\n".join(lines))
        for name, array in values.items():
            target = entries[name]
            target.data[...] = backend.to_device(array, target.device)  # copies, casting to the target's dtype
            target.bump_version()
        return LoadResult(missing, unexpected)

    # ---------------------------------------------------------------- modes, devices, dtypes
    def train(self, mode: bool = True) -> "Module":
        """Training mode (dropout active) for this module and all submodules."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        """Evaluation mode (dropout off): ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Turn gradients on or off for every parameter (``False`` freezes the module)."""
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``.grad = None`` (or zeros with ``set_to_none=False``)."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad[...] = 0

    def to(self, device=None, dtype=None) -> "Module":
        """Move every parameter and buffer to ``device`` and/or convert its floating-point
        data to ``dtype``, *in place*: the Parameter objects stay the same (an optimizer
        holding them keeps working). ``to(np.float64)`` is accepted for ``to(dtype=...)``.
        Returns the module."""
        if device is not None and not isinstance(device, (str, Device)):
            device, dtype = None, device  # to(np.float64)
        dev = get_device(device) if device is not None else None
        dt = np.dtype(dtype) if dtype is not None else None
        if dt is not None and not np.issubdtype(dt, np.floating):
            raise TypeError(f"Module.to: dtype must be a floating-point type, got {dt}")
        seen = set()
        for module in self.modules():
            for t in list(module._parameters.values()) + list(module._buffers.values()):
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                t.move_(dev, dt)  # in place: the Parameter object stays the same
        return self

    def double(self) -> "Module":
        return self.to(dtype=np.float64)

    def float(self) -> "Module":
        return self.to(dtype=np.float32)

    def cpu(self) -> "Module":
        return self.to("cpu")

    def cuda(self) -> "Module":
        return self.to("cuda")

    @property
    def device(self) -> str:
        """The device of the first parameter or buffer ("cpu" for a module without any)."""
        for t in self._all_tensors():
            return t.device
        return "cpu"

    @property
    def dtype(self):
        """The dtype of the first parameter or buffer (float32 for a module without any)."""
        for t in self._all_tensors():
            return t.dtype
        return np.dtype(np.float32)

    def _all_tensors(self):
        yield from self.parameters()
        yield from self.buffers()

    # ---------------------------------------------------------------- printing
    def extra_repr(self) -> str:
        """The text inside this module's parentheses in ``repr`` (its configuration)."""
        return ""

    def num_parameters(self) -> int:
        """How many numbers the parameters hold (tied parameters counted once)."""
        return sum(p.size for p in self.parameters())

    def __repr__(self):
        count = self.num_parameters()
        head = f"{type(self).__name__}({self.extra_repr()}"
        note = f"  # {count:,} parameters" if count else ""
        children = list(self.named_children())
        if not children:
            return f"{head}){note}"
        lines = [head + note]
        for name, child in children:
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        lines.append(")")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- containers
class Sequential(Module):
    """Modules applied one after another: ``Sequential(Linear(4, 8), ReLU(), Linear(8, 2))``.

    Children are named "0", "1", ... (or by the keys of an OrderedDict passed alone)."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], collections.OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, index):
        mods = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*mods[index])
        return mods[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module) -> "Sequential":
        self.add_module(str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered (children named "0", "1", ...)."""

    def __init__(self, modules=None):
        super().__init__()
        for m in modules or ():
            self.append(m)

    def __getitem__(self, index):
        mods = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(mods[index])
        return mods[index]

    def __setitem__(self, index, module):
        index = range(len(self))[index]
        self.add_module(str(index), module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module) -> "ModuleList":
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> "ModuleList":
        for m in modules:
            self.append(m)
        return self

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(): iterate over it and call each module")


class ModuleDict(Module):
    """A dict of modules whose parameters are registered, in insertion order."""

    def __init__(self, modules=None):
        super().__init__()
        for name, m in (dict(modules) if modules is not None else {}).items():
            self[name] = m

    def __getitem__(self, name):
        return self._modules[name]

    def __setitem__(self, name, module):
        self.add_module(name, module)

    def __contains__(self, name):
        return name in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict has no forward(): call its modules by name")
