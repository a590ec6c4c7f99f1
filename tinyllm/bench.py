"""``python -m tinyllm bench``: tinyllm against PyTorch, each timed alone in its own process.

Every measurement runs in a fresh Python process that loads one framework only, so neither
side's BLAS/OpenMP threads spin while the other computes (timed interleaved in one process,
PyTorch's S step measured 102 ms against 36-44 ms alone). The processes alternate
(tinyllm, PyTorch, then PyTorch, tinyllm, ...) for several rounds; each process warms up,
then times a number of repetitions and reports their median; the table gives the median of
those medians over the rounds and their spread (lowest-highest). What is measured, on the
same GPT with the same weights and the same batch:

* **train**: one training step (forward, backward, AdamW update), milliseconds;
* **eval**: the forward pass with its loss under ``no_grad`` in eval mode, as evaluation runs;
* **memory**: the peak memory of training, from just before the model is built to the
  highest point of three training steps (resident set on the CPU, the allocator's on a GPU):
  weights, gradients, optimizer state, saved activations and allocator caches;
* **generate**: greedy generation of 255 tokens after a one-token prompt with a KV cache on
  config M (PyTorch's side uses the cache written in :mod:`tinyllm.torch_reference`), tokens/s.

``--end-to-end`` also runs ``train --preset shakespeare-char`` against the same recipe written
in PyTorch (same data, batches, schedule, evaluations and checkpoints; ``torch_reference``).

    S: n_layer 4, n_head 4, n_embd 128, block 64, batch 12   (the shakespeare-char recipe)
    M: n_layer 6, n_head 6, n_embd 384, block 256, batch 8   (vocab 65)

Each process records its thread settings (BLAS pools through ``threadpoolctl``, PyTorch's
intra- and inter-op threads, the OMP/BLAS environment variables) and library versions.
``--device cuda`` runs CuPy against PyTorch on the GPU. Reproduce with the command printed
under the table.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from . import backend, profiler
from .compress.flops import STANDARD_SIZES, STANDARD_VOCAB, gpt_training_flops_per_step, matmul_peak_flops, mfu
from .generate import generate
from .kernels import cpu
from .models import GPT, GPTConfig
from .optim import AdamW, param_groups
from .tensor import Tensor, no_grad

__all__ = ["CONFIGS", "TASKS", "run_bench", "format_table"]

CONFIGS, VOCAB = STANDARD_SIZES, STANDARD_VOCAB
TASKS = ("train", "eval", "memory", "generate")
SIDES = ("tinyllm", "torch")
# repetitions timed inside one process (after warm-up), per task and config; quick: a smoke test
REPEATS = {("train", "S"): 20, ("train", "M"): 4, ("eval", "S"): 30, ("eval", "M"): 6}
WARMUP = {"S": 3, "M": 1}
GENERATED = 255          # new tokens after a one-token prompt: 256 positions, config M's whole block
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TINYLLM_NUM_THREADS",
                    "TINYLLM_KERNELS")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- the model and batch
def gpt_config(name):
    """The GPTConfig of bench config ``name`` (no dropout, biases, tanh GELU: the same on both sides)."""
    c = dict(CONFIGS[name])
    c.pop("batch_size")
    return GPTConfig(vocab_size=VOCAB, dropout=0.0, bias=True, **c)


def _batch(name, seed=0):
    c = CONFIGS[name]
    rng = np.random.default_rng(seed)
    shape = (c["batch_size"], c["block_size"])
    return rng.integers(0, VOCAB, size=shape), rng.integers(0, VOCAB, size=shape)


def _tinyllm_model(name, device):
    backend.manual_seed(0)
    return GPT(gpt_config(name)).to(device)


def _tinyllm_training(name, device):
    """A tinyllm GPT of config ``name``, its AdamW (nanoGPT's groups) and the batch."""
    model = _tinyllm_model(name, device)
    opt = AdamW(param_groups(model.named_parameters(), 0.1, decay_embeddings=True), lr=1e-3, betas=(0.9, 0.99))
    x, y = (Tensor(a, device=device) for a in _batch(name))
    return model, opt, x, y


def _tinyllm_side(name, device, task):
    """The function one repetition of ``task`` runs in tinyllm."""
    model, opt, x, y = _tinyllm_training(name, device)
    dev = backend.get_device(device)
    if task == "eval":
        model.eval()

        def run():
            with no_grad():
                _, loss = model(x, y)
            dev.synchronize()
        return run

    def run():
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        dev.synchronize()
    return run


def _torch_model(name, tdev, state=None):
    """The PyTorch twin of config ``name`` on ``tdev`` with the tinyllm model's weights (or ``state``)."""
    from .torch_reference import TorchGPT
    state = _tinyllm_model(name, "cpu").state_dict() if state is None else state
    return TorchGPT(gpt_config(name)).load_tinyllm_state(state).to(tdev)


def _torch_side(name, device, task, state=None):
    """The function one repetition of ``task`` runs in PyTorch, on the same weights (those of
    the tinyllm model, or ``state``)."""
    import torch

    from .torch_reference import adamw
    tdev = "cuda" if device == "cuda" else "cpu"
    model = _torch_model(name, tdev, state)
    x, y = (torch.from_numpy(a).to(tdev) for a in _batch(name))
    sync = torch.cuda.synchronize if tdev == "cuda" else (lambda: None)
    if task == "eval":
        model.eval()

        def run():
            with torch.no_grad():
                model(x, y)
            sync()
        return run
    opt = adamw(model, weight_decay=0.1, lr=1e-3, betas=(0.9, 0.99))

    def run():
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()
    return run


# ----------------------------------------------------------------------------- what one process measures
def _timed(run, warmup, repeats):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _hwm_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no VmHWM line")


def _peak_bytes(side, name, device, build):
    """The memory a training run of config ``name`` takes at its highest: from just before
    the model is built (the framework imported) to the peak of three training steps, so the
    weights, gradients, optimizer state, saved activations and the allocator's cache all
    count. ``build()`` makes the model and returns the step function."""
    if device == "cuda":
        if side == "tinyllm":
            import cupy
            pool = cupy.get_default_memory_pool()
            before = pool.total_bytes()
            run = build()
            for _ in range(3):
                run()
            return pool.total_bytes() - before
        import torch
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        run = build()
        for _ in range(3):
            run()
        return torch.cuda.max_memory_allocated() - before
    with open("/proc/self/clear_refs", "w") as f:   # reset the high-water mark (Linux >= 4.0)
        f.write("5")
    before = _rss_bytes()
    run = build()
    for _ in range(3):
        run()
    return _hwm_bytes() - before


def _generation_seconds(side, device, new_tokens):
    """Seconds for greedy generation of ``new_tokens`` after a one-token prompt on config M
    with a KV cache, and the tokens."""
    prompt = np.zeros((1, 1), dtype=np.int64)
    if side == "tinyllm":
        model = _tinyllm_model("M", device)
        generate(model, prompt, 8, temperature=0)      # warm-up
        start = time.perf_counter()
        ids = generate(model, prompt, new_tokens, temperature=0)
        return time.perf_counter() - start, ids[0].tolist()
    import torch
    tdev = "cuda" if device == "cuda" else "cpu"
    model = _torch_model("M", tdev)
    prompt_t = torch.from_numpy(prompt).to(tdev)
    model.generate_greedy(prompt_t, 8)
    start = time.perf_counter()
    ids = model.generate_greedy(prompt_t, new_tokens)
    if tdev == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, ids[0].tolist()


def thread_settings(side):
    """Thread pools and the variables that size them, as this process sees them."""
    info = {"cpu_count": os.cpu_count(),
            "environment": {k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ}}
    try:
        from threadpoolctl import threadpool_info
        info["pools"] = [{k: pool.get(k) for k in ("user_api", "internal_api", "num_threads", "version")}
                         for pool in threadpool_info()]
    except ImportError:
        info["pools"] = "threadpoolctl is not installed"
    if side == "torch":
        import torch
        info["torch_threads"] = torch.get_num_threads()
        info["torch_interop_threads"] = torch.get_num_interop_threads()
    else:
        info["tinyllm_threads"] = cpu.thread_count()
    return info


def measure(side, task, name, device, quick=False):
    """What one process reports: ``samples`` (seconds per repetition, or bytes, or one
    generation's seconds), the framework's version and the thread settings."""
    if side == "torch":
        import torch
        version = torch.__version__
    else:
        version = np.__version__
    out = {"side": side, "task": task, "config": name, "device": device, "version": version}
    if task == "generate":
        seconds, tokens = _generation_seconds(side, device, 16 if quick else GENERATED)
        out.update(samples=[seconds], tokens=tokens)
    else:
        if task == "memory":
            if side == "tinyllm":
                build = lambda: _tinyllm_side(name, device, "train")   # noqa: E731
            else:   # the weights to copy are read before the count starts
                state = _tinyllm_model(name, "cpu").state_dict()
                build = lambda: _torch_side(name, device, "train", state)   # noqa: E731
            out["samples"] = [_peak_bytes(side, name, device, build)]
        else:
            run = (_tinyllm_side if side == "tinyllm" else _torch_side)(name, device, "eval" if task == "eval" else "train")
            repeats = 2 if quick else REPEATS[task, name]
            out["samples"] = _timed(run, 1 if quick else WARMUP[name], repeats)
    out["threads"] = thread_settings(side)
    return out


# ----------------------------------------------------------------------------- the parent: alternating processes
def _environment():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH", "")) if p)
    return env


def run_worker(side, task, name, device, quick=False, timeout=1800):
    """One measurement in a fresh process: the JSON it printed."""
    cmd = [sys.executable, "-m", "tinyllm.bench", "--worker", side, task, name, device] + (["--quick"] if quick else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_environment())
    if proc.returncode != 0:
        raise RuntimeError(f"bench worker {side} {task} {name} on {device} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _summary(values):
    return {"median": statistics.median(values), "low": min(values), "high": max(values), "rounds": values}


def _compare(task, name, device, rounds, quick, sides, log):
    """``rounds`` alternating pairs of processes; per side the median of each process's
    median, with the spread over the rounds."""
    per_side = {side: [] for side in sides}
    reports = {}
    for r in range(rounds):
        for side in (sides if r % 2 == 0 else sides[::-1]):
            report = run_worker(side, task, name, device, quick)
            per_side[side].append(statistics.median(report["samples"]))
            reports[side] = report
        log(f"  {task} {name}: round {r + 1}/{rounds} done")
    return {side: _summary(values) for side, values in per_side.items()}, reports


def _torch_available():
    return importlib.util.find_spec("torch") is not None


def run_bench(device="cpu", configs=("S", "M"), rounds=None, json_path=None, quick=False, plot_path=None,
              end_to_end=False, log=print):
    """Run the benchmark, print the table, optionally write JSON and a chart; returns the results."""
    if device == "cuda" and not backend.cuda_available():
        raise RuntimeError("--device cuda: " + str(backend._cuda_error))
    sides = SIDES if _torch_available() else ("tinyllm",)
    if len(sides) == 1:
        log("PyTorch is not installed: timing tinyllm alone (pip install torch==2.13.0 for the comparison)")
    rounds = rounds or (1 if quick else 3)
    results = {"device": device, "rounds": rounds, "python": platform.python_version(),
               "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs", "configs": {}}
    peak = matmul_peak_flops(device=device)
    results["matmul_peak_gflops"] = peak / 1e9
    for name in configs:
        if name not in CONFIGS:
            raise ValueError(f"unknown bench config {name!r}; expected one of {sorted(CONFIGS)}")
        row = {}
        for task in ("train", "eval", "memory"):
            summary, reports = _compare(task, name, device, 1 if task == "memory" else rounds, quick, sides, log)
            row[task] = summary
            for side, report in reports.items():
                results.setdefault("versions", {})[side] = report["version"]
                results.setdefault("threads", {})[side] = report["threads"]
        flops = gpt_training_flops_per_step(gpt_config(name), GPT(gpt_config(name)).num_params(),
                                            CONFIGS[name]["batch_size"])
        row["flops_per_step"] = flops
        row["mfu"] = {side: mfu(flops, row["train"][side]["median"], peak) for side in sides}
        results["configs"][name] = row
    generated, reports = _compare("generate", "M", device, rounds, quick, sides, log)
    new_tokens = len(reports["tinyllm"]["tokens"]) - 1
    results["generation"] = {"new_tokens": new_tokens,
                             **{side: {**generated[side], "tokens_per_s": new_tokens / generated[side]["median"]}
                                for side in sides}}
    if "torch" in sides:
        results["generation"]["same_tokens"] = reports["tinyllm"]["tokens"] == reports["torch"]["tokens"]
    if end_to_end:
        results["end_to_end"] = run_end_to_end(sides=sides, quick=quick, log=log)
    results["ratios"] = ratios(results)
    results["reproduce"] = reproduce_command(device, configs, rounds, quick, end_to_end)
    print(format_table(results))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(results, f, indent=2)
    if plot_path:
        plot(results, plot_path)
    return results


def ratios(results):
    """tinyllm / PyTorch for every measured quantity (time, memory; for generation, time per
    token); empty without PyTorch."""
    out = {}
    for name, row in results["configs"].items():
        for task in ("train", "eval", "memory"):
            if "torch" in row[task]:
                out[f"{name} {task}"] = row[task]["tinyllm"]["median"] / row[task]["torch"]["median"]
    g = results["generation"]
    if "torch" in g:
        out["generate (KV cache)"] = g["tinyllm"]["median"] / g["torch"]["median"]
    e = results.get("end_to_end")
    if e and "torch" in e:
        out["end to end"] = e["tinyllm"]["seconds"] / e["torch"]["seconds"]
    return out


def reproduce_command(device, configs, rounds, quick, end_to_end):
    parts = ["python -m tinyllm bench", f"--device {device}", f"--configs {','.join(configs)}", f"--rounds {rounds}"]
    return " ".join(parts + (["--quick"] if quick else []) + (["--end-to-end"] if end_to_end else []))


# ----------------------------------------------------------------------------- end to end: the whole preset
def run_end_to_end(sides=SIDES, quick=False, log=print):
    """``python -m tinyllm train --preset shakespeare-char`` and the same recipe in PyTorch
    (``python -m tinyllm.torch_reference``), each a process timed from start to exit; the
    final validation loss of each. ``quick``: 40 steps, evaluations every 20 of 10 batches."""
    overrides = ["--max-iters", "40", "--lr-decay-iters", "40", "--eval-interval", "20", "--eval-iters", "10",
                 "--max-new-tokens", "20"] if quick else []
    out = {}
    with tempfile.TemporaryDirectory(prefix="tinyllm-bench-") as folder:
        for side in sides:
            run_dir = os.path.join(folder, side)
            if side == "tinyllm":
                cmd = [sys.executable, "-m", "tinyllm", "train", "--preset", "shakespeare-char", "--out", run_dir,
                       *overrides]
            else:
                cmd = [sys.executable, "-m", "tinyllm.torch_reference", "--out", run_dir, *overrides]
            log(f"  end to end: {side}: {' '.join(cmd[1:])}")
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=_environment())
            seconds = time.perf_counter() - start
            if proc.returncode != 0:
                raise RuntimeError(f"end to end, {side}: exit status {proc.returncode}\n{proc.stderr[-3000:]}")
            out[side] = {"seconds": seconds, "val_loss": _last_val_loss(proc.stdout + proc.stderr)}
    return out


def _last_val_loss(text):
    """The final validation loss from the JSON line both trainers print when they finish."""
    for line in reversed(text.splitlines()):
        if line.startswith("{") and '"val_loss"' in line:
            return json.loads(line)["val_loss"]
    return None


# ----------------------------------------------------------------------------- where a step's time goes
# ops whose work is mostly matrix products (BLAS); the rest are passes over arrays
MATRIX_OPS = ("Linear", "MatMul", "Attention")


def _median_ms(values):
    return statistics.median(values) * 1e3


def engine_overhead_us(repeats=2000):
    """Microseconds the engine spends per op when the arithmetic costs nothing: forward and
    backward of ``a * b`` on one-element tensors (Function object, graph links, version
    bookkeeping, the backward walk's visit), the Tensor API included."""
    a = Tensor(np.ones(1, np.float32), requires_grad=True)
    b = Tensor(np.ones(1, np.float32), requires_grad=True)
    chain = 50

    def run():
        y = a
        for _ in range(chain):
            y = y * b
        y.sum().backward()
    run()
    start = time.perf_counter()
    for _ in range(repeats // chain):
        run()
    per_op = (time.perf_counter() - start) / (repeats // chain * chain) * 1e6
    return per_op, _numpy_chain_us(chain, repeats // chain)


def _numpy_chain_us(chain, rounds):
    """The same chain's arithmetic written on NumPy arrays by hand (forward and backward)."""
    a, b = np.ones(1, np.float32), np.ones(1, np.float32)
    start = time.perf_counter()
    for _ in range(rounds):
        ys = [a]
        for _ in range(chain):
            ys.append(ys[-1] * b)
        g, gb = np.ones(1, np.float32), np.zeros(1, np.float32)
        for y in reversed(ys[:-1]):
            gb += g * y
            g = g * b
    return (time.perf_counter() - start) / (rounds * chain) * 1e6


def profile_report(name="S", device="cpu", steps=10):
    """Where one training step of config ``name`` spends its time: the phases (forward,
    backward, optimizer), each op's forward and backward (tinyllm.profiler), the share of
    matrix products, the Python time between ops, and what the engine costs per op.
    Returns (text, numbers)."""
    model, opt, x, y = _tinyllm_training(name, device)
    dev = backend.get_device(device)
    phases = {"forward": [], "backward": [], "optimizer": []}

    def step(times=None):
        marks = [time.perf_counter()]
        _, loss = model(x, y)
        dev.synchronize()
        marks.append(time.perf_counter())
        opt.zero_grad()
        loss.backward()
        dev.synchronize()
        marks.append(time.perf_counter())
        opt.step()
        dev.synchronize()
        marks.append(time.perf_counter())
        if times is not None:
            for phase, a, b in zip(phases, marks, marks[1:]):
                times[phase].append(b - a)
    for _ in range(WARMUP[name]):
        step()
    for _ in range(steps):
        step(phases)
    phase_ms = {k: _median_ms(v) for k, v in phases.items()}
    with profiler.profile() as prof:
        for _ in range(steps):
            _, loss = model(x, y)
            opt.zero_grad()
            loss.backward()
    rows = prof.rows()
    per_step = {r["op"]: {k: r[k] / steps if k.endswith("ms") or k.endswith("calls") else r[k]
                          for k in r if k != "op"} for r in rows}
    fwd_ops = sum(r["forward_ms"] for r in per_step.values())
    bwd_ops = sum(r["backward_ms"] for r in per_step.values())
    matrix = sum(r["total_ms"] for op, r in per_step.items() if op in MATRIX_OPS)
    op_count = sum(r["forward_calls"] for r in per_step.values())
    overhead_us, numpy_us = engine_overhead_us()
    total = sum(phase_ms.values())
    numbers = {"config": name, "step_ms": total, "phases_ms": phase_ms, "ops": per_step,
               "ops_per_step": op_count, "op_forward_ms": fwd_ops, "op_backward_ms": bwd_ops,
               "matrix_ms": matrix, "engine_us_per_op": overhead_us, "numpy_us_per_op": numpy_us,
               "threads": thread_settings("tinyllm")}
    lines = [f"one training step of config {name} on {device} ({', '.join(f'{k}={v}' for k, v in CONFIGS[name].items())}),"
             f" median of {steps} steps: {total:.1f} ms",
             f"  forward {phase_ms['forward']:.1f} ms, backward {phase_ms['backward']:.1f} ms, "
             f"AdamW step {phase_ms['optimizer']:.1f} ms",
             f"  {op_count:.0f} ops per step; inside ops: forward {fwd_ops:.1f} ms, backward {bwd_ops:.1f} ms "
             f"(profiled run, one step's share)",
             f"  matrix products (Linear, MatMul, Attention): {matrix:.1f} ms = {matrix / total:.0%} of the step",
             f"  between ops in the forward (modules, argument checks, graph building): "
             f"{max(phase_ms['forward'] - fwd_ops, 0):.1f} ms",
             f"  between ops in the backward (the graph walk, gradient accumulation): "
             f"{max(phase_ms['backward'] - bwd_ops, 0):.1f} ms",
             f"  the engine per op (a one-element multiply, forward and backward): {overhead_us:.1f} µs "
             f"against {numpy_us:.1f} µs for the same arithmetic on bare NumPy arrays; "
             f"x {op_count:.0f} ops = {op_count * (overhead_us - numpy_us) / 1e3:.1f} ms per step",
             "", "per op, per step (ms):",
             f"{'op':<22}{'calls':>7}{'forward':>10}{'backward':>10}{'total':>10}{'share':>8}"]
    for op, r in sorted(per_step.items(), key=lambda kv: -kv[1]["total_ms"]):
        lines.append(f"{op:<22}{r['forward_calls']:>7.0f}{r['forward_ms']:>10.2f}{r['backward_ms']:>10.2f}"
                     f"{r['total_ms']:>10.2f}{r['total_ms'] / total:>8.1%}")
    return "\n".join(lines), numbers


# ----------------------------------------------------------------------------- output
def _ms(summary):
    return f"{summary['median'] * 1e3:.1f} ({summary['low'] * 1e3:.1f}-{summary['high'] * 1e3:.1f})"


def format_table(results):
    """The table: per config and task the median over rounds (and lowest-highest), the ratio."""
    versions = results.get("versions", {})
    lines = [f"tinyllm bench: device {results['device']}, {results['machine']}, Python {results['python']}, "
             f"NumPy {versions.get('tinyllm', np.__version__)}, PyTorch {versions.get('torch', '-')}",
             f"each side alone in its own process, {results['rounds']} alternating rounds; "
             f"float32 matmul peak {results['matmul_peak_gflops']:.0f} GFLOP/s",
             f"{'measure':<22}{'tinyllm':>24}{'PyTorch':>24}{'ratio':>8}"]
    r = results["ratios"]
    units = {"train": "step ms", "eval": "eval fwd ms"}
    for name, row in results["configs"].items():
        for task in ("train", "eval"):
            lines.append(f"{name + ' ' + units[task]:<22}{_ms(row[task]['tinyllm']):>24}"
                         f"{_ms(row[task]['torch']) if 'torch' in row[task] else '-':>24}"
                         f"{r.get(f'{name} {task}', float('nan')):>8.2f}")
        mem = row["memory"]
        lines.append(f"{name + ' peak memory MB':<22}{mem['tinyllm']['median'] / 2**20:>24.0f}"
                     f"{mem['torch']['median'] / 2**20 if 'torch' in mem else float('nan'):>24.0f}"
                     f"{r.get(f'{name} memory', float('nan')):>8.2f}")
        lines.append(f"{name + ' MFU':<22}{row['mfu']['tinyllm']:>24.1%}"
                     f"{row['mfu'].get('torch', float('nan')):>24.1%}")
    g = results["generation"]
    lines.append(f"{'M generate tokens/s':<22}{g['tinyllm']['tokens_per_s']:>24.1f}"
                 f"{g['torch']['tokens_per_s'] if 'torch' in g else float('nan'):>24.1f}"
                 f"{r.get('generate (KV cache)', float('nan')):>8.2f}")
    e = results.get("end_to_end")
    if e:
        def side(s):
            return f"{e[s]['seconds']:.1f} s, val {e[s]['val_loss']:.4f}" if s in e else "-"
        lines.append(f"{'end to end':<22}{side('tinyllm'):>24}{side('torch'):>24}{r.get('end to end', float('nan')):>8.2f}")
    lines.append(f"ratio: tinyllm / PyTorch (time, memory, time per generated token); "
                 f"generation: {g['new_tokens']} greedy tokens with a KV cache"
                 + (f", the same tokens on both sides: {g['same_tokens']}" if "same_tokens" in g else ""))
    lines.append(f"reproduce: {results['reproduce']}")
    return "\n".join(lines)


def plot(results, path):
    """A bar chart of the ratios (1 = as fast as PyTorch; the targets drawn as ticks)."""
    from matplotlib.figure import Figure
    r = results["ratios"]
    if not r:
        return
    fig = Figure(figsize=(8, 3.4))
    ax = fig.subplots()
    names = list(r)
    ax.barh(range(len(names)), [r[n] for n in names], color=["tab:green" if r[n] <= 1.2 else "tab:orange" for n in names])
    ax.axvline(1.0, color="black", linewidth=1)
    ax.axvline(1.2, color="gray", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("tinyllm / PyTorch (lower is better; dashed: 1.2)")
    ax.set_title(f"tinyllm bench ({results['device']}), each side alone, median of {results['rounds']} rounds")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tinyllm.bench", description="one bench measurement (a worker)")
    parser.add_argument("--worker", nargs=4, metavar=("SIDE", "TASK", "CONFIG", "DEVICE"), required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    side, task, name, device = args.worker
    if side not in SIDES or task not in TASKS or name not in CONFIGS:
        parser.error(f"--worker: expected SIDE in {SIDES}, TASK in {TASKS}, CONFIG in {sorted(CONFIGS)}; got {args.worker}")
    print(json.dumps(measure(side, task, name, device, quick=args.quick)))


if __name__ == "__main__":
    main()
