r"""What data parallelism costs here: all-reduce times against the ring model, the time of a
training step, and the memory of each rank, for 1, 2, 4… ranks.

    python -m tinyllm.distributed.bench                  # 1, 2 and 4 ranks; prints tables
    python -m tinyllm.distributed.bench --ranks 1,2 --json out.json

Each world size runs ``mpiexec -n N python -m tinyllm.distributed.bench --rank`` with one BLAS
thread per rank (``--threads``): N ranks then use N cores, the same work per core for every N
(more ranks than cores share them). Every rank then:

1. times ``all_reduce`` of float32 buffers from 4 KB to 16 MB (median of several calls) and
   fits the ring model t(n) = 2(N−1)·α + 2(N−1)/N · n·β to them (least squares in α, β);
2. trains the ``shakespeare-char`` GPT (4 layers, 128 wide, block 64, global batch 12,
   float32) on random tokens with :class:`DistributedDataParallel` + AdamW, then with
   :class:`ZeroRedundancyAdamW`, timing each part of a step (the slowest rank's time, as the
   step waits for it; a barrier before the gradients' reduction, there for the measurement,
   separates the wait for the slowest rank from the reduction itself), and the CPU time one rank spends on a step (which other jobs on a
   shared machine do not inflate, as they do wall time);
3. counts the optimizer state it holds (bytes of m and v) and the bytes that stay allocated
   after a step (``tracemalloc``: state, flat buffers, scratch; gradients released), and its
   peak resident memory.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

__all__ = ["main"]

SIZES = [1 << k for k in range(12, 25)]  # bytes: 4 KB, 8 KB, … 16 MB
LARGE = 4 << 20  # from here on, buffers no longer fit in the caches: β is fitted on these
MODEL = dict(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, bias=False, tie_embeddings=False)
BATCH = 12


def time_all_reduce(comm, nbytes, repeats):
    buffer = np.ones(nbytes // 4, dtype=np.float32)
    times = []
    for _ in range(repeats):
        comm.barrier()
        start = time.perf_counter()
        comm.all_reduce(buffer)
        times.append(time.perf_counter() - start)
    slowest = np.array([np.median(times)])
    return float(comm.all_reduce(slowest, op="max")[0])


def fit_ring(sizes, times, n):
    """α and β of t = 2(N−1)α + 2(N−1)/N·nβ: α from the smallest buffer (where nβ is
    negligible), β by least squares on the buffers of LARGE bytes and more (those that do not
    fit in the caches, as a model's gradients do not). None for one rank: no messages."""
    if n == 1:
        return None, None
    sizes, times = np.asarray(sizes, float), np.asarray(times)
    alpha = times[0] / (2 * (n - 1))
    large = sizes >= LARGE
    x, y = 2 * (n - 1) / n * sizes[large], times[large] - 2 * (n - 1) * alpha
    return float(alpha), float(x @ y / (x @ x))


def time_training(comm, steps, zero):
    """Median time of each part of a step (slowest rank), and the memory this rank holds."""
    import tinyllm as tl
    from tinyllm.models import GPT, GPTConfig
    from tinyllm.optim import AdamW, param_groups
    from .data_parallel import DistributedDataParallel, batch_share
    from .zero import ZeroRedundancyAdamW
    tl.manual_seed(0)
    model = DistributedDataParallel(GPT(GPTConfig(**MODEL)), comm)
    for block in model.module.transformer.h:
        block.attn.keep_attention_weights = False  # no attention maps kept for plots
    groups = param_groups(model.module.named_parameters(), 0.1, decay_embeddings=True)
    rows, weight = batch_share(BATCH, comm.rank, comm.size)
    rng = np.random.default_rng(0)

    def step():
        """One training step; the times of its parts."""
        x = rng.integers(0, MODEL["vocab_size"], size=(BATCH, MODEL["block_size"] + 1))
        comm.barrier()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        _, loss = model(tl.Tensor(x[rows, :-1]), tl.Tensor(x[rows, 1:]))
        optimizer.zero_grad()
        loss.backward()
        t1 = time.perf_counter()
        comm.barrier()  # for the measurement only: the wait for the slowest rank, apart from the sync
        t1b = time.perf_counter()
        if not zero:
            model.sync_gradients(weight)
        t2 = time.perf_counter()
        optimizer.step(weight) if zero else optimizer.step()
        t3 = time.perf_counter()
        return t1 - t0, t1b - t1, t2 - t1b, t3 - t2, t3 - t0, time.process_time() - cpu0

    # memory: what the optimizer and the gradient buffers keep after a step (gradients released)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    optimizer = (ZeroRedundancyAdamW(groups, comm, lr=1e-3, betas=(0.9, 0.99)) if zero
                 else AdamW(groups, lr=1e-3, betas=(0.9, 0.99)))
    step()
    optimizer.zero_grad()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    step()  # one more warm-up step, untimed
    times = np.array([step() for _ in range(steps)])
    medians = np.median(times, axis=0)
    comm.all_reduce(medians, op="max")
    state = (optimizer.state_nbytes() if zero else
             sum(v.nbytes for entry in optimizer.state.values() for v in entry.values() if hasattr(v, "nbytes")))
    names = ("forward_backward", "wait", "gradient_sync", "optimizer", "step", "step_cpu")
    return {**{f"{name}_ms": 1e3 * float(m) for name, m in zip(names, medians)},
            "optimizer_state_bytes": int(state), "held_after_step_bytes": int(held),
            "parameters": model.module.num_parameters()}


def rank_program(steps, repeats):
    from .mpi import MPICommunicator
    comm = MPICommunicator()
    with comm.abort_on_error():
        times = [time_all_reduce(comm, n, repeats) for n in SIZES]
        alpha, beta = fit_ring(SIZES, times, comm.size)
        result = {"ranks": comm.size, "all_reduce": dict(zip(SIZES, times)), "alpha_s": alpha, "beta_s_per_byte": beta,
                  "ddp": time_training(comm, steps, zero=False), "zero": time_training(comm, steps, zero=True)}
        peak = np.array([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0])  # KB on Linux
        result["peak_rss_bytes_max_rank"] = int(comm.all_reduce(peak, op="max")[0])
        for kind in ("ddp", "zero"):  # memory is per rank: report every rank's
            for key in ("optimizer_state_bytes", "held_after_step_bytes"):
                result[kind][key] = [int(v) for v in comm.all_gather(np.array([result[kind][key]]))]
        if comm.rank == 0:
            print(json.dumps(result), flush=True)


def run(ranks, steps, repeats, threads):
    from .launch import find_mpiexec
    results = []
    for n in ranks:
        env = {**os.environ, **{name: str(threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                                "MKL_NUM_THREADS")}}
        done = subprocess.run([find_mpiexec(), "-n", str(n), sys.executable, "-m", "tinyllm.distributed.bench",
                               "--rank", "--steps", str(steps), "--repeats", str(repeats)],
                              env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise RuntimeError(f"{n} ranks failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


def print_tables(results):
    print("all_reduce of float32 buffers (median, slowest rank), against the ring model (α fitted on the smallest buffer, β on 4 MB and more)")
    print(f"{'bytes':>10} " + " ".join(f"{r['ranks']:>3} ranks: measured / ring model" for r in results if r["ranks"] > 1))
    for size in SIZES:
        cells = []
        for r in results:
            n = r["ranks"]
            if n == 1:
                continue
            model = 2 * (n - 1) * r["alpha_s"] + 2 * (n - 1) / n * size * r["beta_s_per_byte"]
            cells.append(f"{1e3 * r['all_reduce'][str(size)]:14.3f} ms / {1e3 * model:8.3f} ms")
        print(f"{size:>10} " + " ".join(cells))
    for r in results:
        if r["ranks"] > 1:
            print(f"{r['ranks']} ranks: α = {1e6 * r['alpha_s']:.1f} µs, 1/β = {1e-9 / r['beta_s_per_byte']:.2f} GB/s")
    print("\ntraining step, shakespeare-char GPT, global batch 12, float32 (median ms, slowest rank)")
    print(f"{'ranks':>5} {'optimizer':>9} {'fwd+bwd':>8} {'wait':>6} {'sync':>7} {'update':>7} {'step':>7} "
          f"{'CPU/rank':>8}  "
          f"{'state bytes per rank':>22} {'held after step per rank':>26}")
    for r in results:
        for kind in ("ddp", "zero"):
            t = r[kind]
            print(f"{r['ranks']:>5} {('AdamW' if kind == 'ddp' else 'ZeRO-1'):>9} {t['forward_backward_ms']:8.1f} "
                  f"{t['wait_ms']:6.1f} {t['gradient_sync_ms']:7.2f} {t['optimizer_ms']:7.2f} {t['step_ms']:7.1f} "
                  f"{t['step_cpu_ms']:8.1f}  "
                  f"{max(t['optimizer_state_bytes']):>22,} {max(t['held_after_step_bytes']):>26,}")
    print(f"\nparameters: {results[0]['ddp']['parameters']:,}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tinyllm.distributed.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", default="1,2,4", help="world sizes to run, comma-separated")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--repeats", type=int, default=30, help="all_reduce calls per size")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads per rank")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the results here")
    parser.add_argument("--rank", action="store_true", help=argparse.SUPPRESS)  # one rank of a run
    args = parser.parse_args(argv)
    if args.rank:
        rank_program(args.steps, args.repeats)
        return 0
    results = run([int(n) for n in args.ranks.split(",")], args.steps, args.repeats, args.threads)
    print_tables(results)
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
