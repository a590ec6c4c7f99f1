"""``python -m tinyllm bench``: tinyllm and PyTorch side by side, in one run.

For each GPT config it times one training step (forward, backward, AdamW) in tinyllm and in
PyTorch with the same weights and the same batch, *interleaved* (tinyllm, torch, tinyllm,
…, so both see the same machine state), and reports medians after warm-up and their ratio;
the model FLOPs utilisation of each against the float32 matmul peak it measures; the peak
memory of each side (each in a fresh process: the rise of the resident set from just before
the first step to the highest point during the steps); and generation of 256 tokens with
and without the KV cache.

    S: n_layer 4, n_head 4, n_embd 128, block 64, batch 12   (the shakespeare-char recipe)
    M: n_layer 6, n_head 6, n_embd 384, block 256, batch 8   (vocab 65)

``--device cuda`` runs the same on CuPy against PyTorch on the GPU.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from . import backend
from .compress.flops import (STANDARD_SIZES, STANDARD_VOCAB, gpt_training_flops_per_step, matmul_peak_flops,
                             mfu)
from .models import GPT, GPTConfig
from .optim import AdamW, param_groups
from .tensor import Tensor
from .torch_reference import TorchGPT
from .generate import generate

__all__ = ["CONFIGS", "run_bench"]

CONFIGS, VOCAB = STANDARD_SIZES, STANDARD_VOCAB


def _gpt_config(name):
    c = dict(CONFIGS[name])
    c.pop("batch_size")
    return GPTConfig(vocab_size=VOCAB, dropout=0.0, bias=True, **c)


def _batch(name, seed=0):
    c = CONFIGS[name]
    rng = np.random.default_rng(seed)
    shape = (c["batch_size"], c["block_size"])
    return rng.integers(0, VOCAB, size=shape), rng.integers(0, VOCAB, size=shape)


def _tinyllm_side(name, device):
    """A tinyllm GPT, its AdamW and a step function."""
    backend.manual_seed(0)
    model = GPT(_gpt_config(name)).to(device)
    opt = AdamW(param_groups(model.named_parameters(), 0.1, decay_embeddings=True), lr=1e-3, betas=(0.9, 0.99))
    x, y = (Tensor(a, device=device) for a in _batch(name))
    dev = backend.get_device(device)

    def step():
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        dev.synchronize()
        return loss
    return model, step


def _torch_side(name, device, state):
    import torch
    tdev = "cuda" if device == "cuda" else "cpu"
    model = TorchGPT(_gpt_config(name)).load_tinyllm_state(state).to(tdev)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99))
    x, y = (torch.from_numpy(a).to(tdev) for a in _batch(name))

    def step():
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if tdev == "cuda":
            torch.cuda.synchronize()
        return loss
    return model, step


def _time_interleaved(steps_a, steps_b, warmup, repeats):
    for _ in range(warmup):
        steps_a()
        steps_b()
    times_a, times_b = [], []
    for _ in range(repeats):
        for fn, times in ((steps_a, times_a), (steps_b, times_b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(times_a), statistics.median(times_b)


def _peak_memory(side, name, device):
    """Peak memory of ``side``'s training steps, measured in a fresh Python process."""
    cmd = [sys.executable, "-m", "tinyllm.bench", "--memory-worker", side, name, device]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(__file__)),
                                                        os.environ.get("PYTHONPATH", "")]))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])["peak_bytes"]
    except (subprocess.SubprocessError, ValueError, KeyError, IndexError):
        return None


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _hwm_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def _memory_worker(side, name, device):
    """Run 3 training steps; print the rise in memory over the steps as JSON."""
    if side == "tinyllm":
        model, step = _tinyllm_side(name, device)
    else:
        backend.manual_seed(0)
        model, step = _torch_side(name, device, GPT(_gpt_config(name)).state_dict())
    if device == "cuda":
        if side == "tinyllm":
            import cupy
            pool = cupy.get_default_memory_pool()
            before = pool.used_bytes()
            for _ in range(3):
                step()
            peak = pool.total_bytes() - before
        else:
            import torch
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            for _ in range(3):
                step()
            peak = torch.cuda.max_memory_allocated() - before
    else:
        try:  # reset the high-water mark, so the peak is the steps' own (Linux ≥ 4.0)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        before = _rss_bytes()
        for _ in range(3):
            step()
        peak = _hwm_bytes() - before
    print(json.dumps({"peak_bytes": int(peak)}))


def _generation(device, new_tokens=255):
    """Seconds to generate with and without the KV cache on config M (prompt 1 token:
    1 + 255 = 256 positions, the whole block)."""
    backend.manual_seed(0)
    model = GPT(_gpt_config("M")).to(device)
    prompt = np.zeros((1, 1), dtype=np.int64)
    generate(model, prompt, 8, temperature=0)  # warm-up
    out = {}
    for use_cache in (True, False):
        start = time.perf_counter()
        ids = generate(model, prompt, new_tokens, temperature=0, use_cache=use_cache)
        out["cache" if use_cache else "no_cache"] = time.perf_counter() - start
        out.setdefault("tokens", {})["cache" if use_cache else "no_cache"] = ids
    same = bool((out["tokens"]["cache"] == out["tokens"]["no_cache"]).all())
    return {"with_cache_s": out["cache"], "without_cache_s": out["no_cache"],
            "speedup": out["no_cache"] / out["cache"], "identical_tokens": same, "new_tokens": new_tokens}


def run_bench(device="cpu", configs=("S", "M"), steps=None, json_path=None, quick=False, plot_path=None):
    """Run the benchmark, print the table, optionally write JSON; returns the results."""
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch is not installed: timing tinyllm alone (pip install torch for the comparison)")
    if device == "cuda" and not backend.cuda_available():
        raise RuntimeError("--device cuda: " + str(backend._cuda_error))
    results = {"device": device, "numpy": np.__version__, "torch": getattr(torch, "__version__", None),
               "threads": os.cpu_count(), "configs": {}}
    peak = matmul_peak_flops(device=device)
    results["matmul_peak_gflops"] = peak / 1e9
    for name in configs:
        if name not in CONFIGS:
            raise ValueError(f"unknown bench config {name!r}; expected one of {sorted(CONFIGS)}")
        repeats = steps or (3 if quick else {"S": 20, "M": 6}[name])
        model, ours = _tinyllm_side(name, device)
        row = {"tinyllm_step_ms": None, "torch_step_ms": None}
        if torch is not None:
            _, theirs = _torch_side(name, device, model.state_dict())
            a, b = _time_interleaved(ours, theirs, warmup=1 if quick else 2, repeats=repeats)
            row.update(tinyllm_step_ms=a * 1e3, torch_step_ms=b * 1e3, ratio=a / b)
        else:
            a, _ = _time_interleaved(ours, lambda: None, warmup=2, repeats=repeats)
            row.update(tinyllm_step_ms=a * 1e3)
        flops = gpt_training_flops_per_step(model.config, model.num_params(), CONFIGS[name]["batch_size"])
        row["flops_per_step"] = flops
        row["tinyllm_mfu"] = mfu(flops, row["tinyllm_step_ms"] / 1e3, peak)
        if row.get("torch_step_ms"):
            row["torch_mfu"] = mfu(flops, row["torch_step_ms"] / 1e3, peak)
        if not quick:
            row["tinyllm_peak_mb"] = (_peak_memory("tinyllm", name, device) or 0) / 2**20
            if torch is not None:
                row["torch_peak_mb"] = (_peak_memory("torch", name, device) or 0) / 2**20
                if row["torch_peak_mb"]:
                    row["memory_ratio"] = row["tinyllm_peak_mb"] / row["torch_peak_mb"]
        row["steps_timed"] = repeats
        results["configs"][name] = row
    results["generation"] = _generation(device, new_tokens=32 if quick else 255)
    print(format_table(results))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(results, f, indent=2)
    if plot_path:
        plot(results, plot_path)
    return results


def plot(results, path):
    """A bar chart of step times (tinyllm vs PyTorch per config) and generation times."""
    from matplotlib.figure import Figure
    names = list(results["configs"])
    fig = Figure(figsize=(8, 3.2))
    axes = fig.subplots(1, 2)
    ours = [results["configs"][n]["tinyllm_step_ms"] for n in names]
    theirs = [results["configs"][n].get("torch_step_ms") or 0 for n in names]
    xs = np.arange(len(names))
    axes[0].bar(xs - 0.2, ours, 0.4, label="tinyllm")
    axes[0].bar(xs + 0.2, theirs, 0.4, label="PyTorch")
    axes[0].set_xticks(xs, [f"config {n}" for n in names])
    axes[0].set_ylabel("ms per training step")
    axes[0].set_yscale("log")
    axes[0].legend()
    g = results["generation"]
    axes[1].bar([0, 1], [g["without_cache_s"], g["with_cache_s"]], color=["tab:gray", "tab:green"])
    axes[1].set_xticks([0, 1], ["no cache", "KV cache"])
    axes[1].set_ylabel(f"seconds for {g['new_tokens']} tokens")
    axes[1].set_title(f"generation, {g['speedup']:.1f}x faster")
    fig.suptitle(f"tinyllm bench ({results['device']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def format_table(results):
    lines = [f"tinyllm bench — device {results['device']}, NumPy {results['numpy']}, PyTorch {results['torch']}, "
             f"float32 matmul peak {results['matmul_peak_gflops']:.0f} GFLOP/s",
             f"{'config':<7}{'tinyllm ms':>11}{'torch ms':>10}{'ratio':>7}{'MFU tl':>8}{'MFU pt':>8}"
             f"{'mem tl MB':>10}{'mem pt MB':>10}{'mem ratio':>10}"]

    def f(v, spec):
        if isinstance(v, (int, float)):
            return format(v, spec)
        return format("-", ">" + spec.split(".")[0])
    for name, r in results["configs"].items():
        lines.append(f"{name:<7}{f(r.get('tinyllm_step_ms'), '11.1f')}{f(r.get('torch_step_ms'), '10.1f')}"
                     f"{f(r.get('ratio'), '7.2f')}{f(r.get('tinyllm_mfu'), '8.1%')}{f(r.get('torch_mfu'), '8.1%')}"
                     f"{f(r.get('tinyllm_peak_mb'), '10.0f')}{f(r.get('torch_peak_mb'), '10.0f')}"
                     f"{f(r.get('memory_ratio'), '10.2f')}")
    g = results["generation"]
    lines.append(f"generation (config M, {g['new_tokens']} new tokens, greedy): with KV cache "
                 f"{g['with_cache_s']:.2f} s, without {g['without_cache_s']:.2f} s, speed-up "
                 f"{g['speedup']:.1f}x, identical tokens: {g['identical_tokens']}")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory-worker", nargs=3, metavar=("SIDE", "CONFIG", "DEVICE"))
    args = parser.parse_args()
    if args.memory_worker:
        _memory_worker(*args.memory_worker)
