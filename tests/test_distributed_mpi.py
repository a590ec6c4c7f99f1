"""The proofs on real MPI ranks: N processes under ``mpiexec`` equal one process (float64).

Each test starts ``mpiexec -n 2`` (or ``-n 3``, so that batches, hidden layers and heads split
unevenly) on this file: the ``__main__`` part below is the program every rank runs. Each rank
computes the distributed result *and* the one-process reference (plain tinyllm: whole
batch, plain AdamW, unsplit layers), prints one JSON line of measured differences, and
fails (ending all ranks) on any mismatch; the test checks the exit status and the numbers.
Every launch has a timeout, so a hang fails the test instead of hanging CI.

Run a scenario by hand: ``mpiexec -n 2 python tests/test_distributed_mpi.py ddp``.
"""
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 1e-12


def mpi_ready():
    try:
        import mpi4py  # noqa: F401
        from tinyllm.distributed.launch import find_mpiexec
        find_mpiexec()
    except (ImportError, FileNotFoundError):
        return False
    return True


needs_mpi = pytest.mark.skipif(not mpi_ready(), reason="needs mpi4py and mpiexec: pip install mpich mpi4py")


def launch(n, *args, module=None, timeout=120, env=None):
    """Run this file (or ``python -m module``) on n ranks; return (returncode, stdout, stderr, seconds)."""
    from tinyllm.distributed.launch import find_mpiexec, launch_environment
    program = ["-m", module] if module else [os.path.abspath(__file__)]
    environment = {**launch_environment(n), "PYTHONPATH": REPO, **(env or {})}
    start = time.monotonic()
    done = subprocess.run([find_mpiexec(), "-n", str(n), sys.executable, *program, *map(str, args)],
                          cwd=REPO, env=environment, capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr, time.monotonic() - start


def run_scenarios(n, names, tmp_path):
    code, out, err, _ = launch(n, *names, env={"TINYLLM_TEST_REPORTS": str(tmp_path)})
    assert code == 0, f"mpiexec -n {n} failed ({code}):\n{out}\n{err[-4000:]}"
    found = [json.loads(line) for r in range(n) for line in (tmp_path / f"rank{r}.jsonl").read_text().splitlines()]
    assert sorted({r["rank"] for r in found}) == list(range(n))
    return found


# ----------------------------------------------------------------------------- the tests
@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_collectives_ddp_zero_and_tensor_parallel_equal_one_process(n, tmp_path):
    found = run_scenarios(n, ["collectives", "ddp", "zero", "tensor_parallel"], tmp_path)
    by_scenario = {}
    for r in found:
        by_scenario.setdefault(r["scenario"], []).append(r)
    assert set(by_scenario) == {"collectives", "ddp", "zero", "tensor_parallel"}
    for scenario, rows in by_scenario.items():
        assert len(rows) == n, scenario
        for row in rows:
            for key, value in row.items():
                if key.startswith("diff"):
                    assert value <= TOLERANCE, (scenario, row)
    for row in by_scenario["zero"]:  # 1/N of AdamW's state, give or take a few numbers (padding, the
        # parameter without gradients, which takes a place on the line but gets no state)
        assert abs(row["state_bytes"] - row["adamw_state_bytes"] / n) <= 16 * (n + 3)
    for row in by_scenario["tensor_parallel"]:
        assert row["gradchecks"] == 6 and row["wrong_rule_caught"]


@needs_mpi
def test_a_run_saved_on_two_ranks_resumes_on_three_as_if_uninterrupted(tmp_path, monkeypatch):
    """float64 trainer: 3 steps on 2 ranks, saved; 3 more on 3 ranks = 6 steps in one process."""
    from tinyllm.checkpoint import load_checkpoint
    out = tmp_path / "run"
    for n, args in ((2, ["--stop-after", 3]), (3, ["--resume"])):
        code, stdout, stderr, _ = launch(n, "trainer", out, *args)
        assert code == 0, stderr[-4000:]
    use_float64(monkeypatch.setattr)  # undone after the test
    reference = reference_trainer(tmp_path / "reference")
    reference.train()
    tensors, meta = load_checkpoint(out / "ckpt.safetensors")
    assert meta["step"] == reference.step == 6
    np.testing.assert_allclose(meta["train_losses"], reference.train_losses, rtol=0, atol=TOLERANCE)
    for name, array in reference.model.state_dict().items():
        np.testing.assert_allclose(tensors[f"model.{name}"], array, rtol=0, atol=TOLERANCE, err_msg=name)
    exp_avg = {k: v for k, v in tensors.items() if k.endswith("exp_avg_sq")}
    assert len(exp_avg) == len(list(reference.model.parameters()))


@needs_mpi
def test_a_rank_that_fails_ends_all_ranks_with_its_error():
    code, out, err, seconds = launch(2, "fail", timeout=60, env={"TINYLLM_COLLECTIVE_TIMEOUT": "30"})
    assert code != 0
    assert "error on rank 1 of 2: rank 1 fails at step 2" in err
    assert seconds < 25  # ended by the failing rank, not by the others' 30 s timeout


@needs_mpi
def test_a_rank_that_hangs_is_reported_by_the_others_timeout():
    code, out, err, seconds = launch(2, "hang", timeout=60, env={"TINYLLM_COLLECTIVE_TIMEOUT": "2"})
    assert code != 0
    assert "rank 0 of 2: all_reduce did not finish within 2 s" in err
    assert seconds < 30


CLI_TINY = ["--eval-iters", "2", "--n-layer", "1", "--n-embd", "8", "--n-head", "2", "--block-size", "8",
            "--batch-size", "5", "--progress", "false", "--no-sample"]


@needs_mpi
def test_the_command_line_on_two_ranks_prints_once_and_matches_one_process(tmp_path, capsys):
    """`train --nproc 2` (= mpiexec -n 2 ... --distributed): rank 0 alone prints, and the result is
    the one-process run's (float32)."""
    from tinyllm.cli import main
    args = ["train", "--max-iters", "4", "--eval-interval", "2", *CLI_TINY]
    assert main(args + ["--out", str(tmp_path / "one")]) == 0
    one = json.loads(capsys.readouterr().out.splitlines()[-1])
    done = subprocess.run([sys.executable, "-m", "tinyllm", *args, "--out", str(tmp_path / "two"), "--nproc", "2"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "data parallel: 2 ranks (mpi), global batch 5 = 3 + 2 rows per rank"
    assert len(lines) == 3 and lines[1].startswith("training gpt")  # and the result: rank 0's lines only
    two = json.loads(lines[-1])
    assert two.keys() == one.keys() and two["step"] == 4
    for key in ("train_loss", "val_loss"):
        assert abs(two[key] - one[key]) < 1e-5


@needs_mpi
def test_sigterm_stops_every_rank_at_the_same_step_with_one_resumable_checkpoint(tmp_path):
    from tinyllm.distributed.launch import find_mpiexec
    from tinyllm.train import Trainer
    out = tmp_path / "run"
    process = subprocess.Popen([find_mpiexec(), "-n", "2", sys.executable, "-m", "tinyllm", "train", "--distributed",
                                "--max-iters", "1000000", "--eval-interval", "1000000", *CLI_TINY, "--out", str(out)],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, process.kill)  # nothing here may hang CI
    watchdog.start()
    try:
        while not process.stdout.readline().startswith("training gpt"):
            assert process.poll() is None, process.stderr.read()
        time.sleep(1.0)  # some steps
        process.terminate()  # mpiexec passes SIGTERM on to the ranks
        stdout, stderr = process.communicate(timeout=60)
    finally:
        watchdog.cancel()
        process.kill()
    assert process.returncode == 130, stderr[-3000:]
    saved = [line for line in stdout.splitlines() if line.startswith("SIGTERM: saved a resumable checkpoint")]
    assert len(saved) == 1
    step = int(saved[0].split("at step ")[1].split()[0])
    assert step > 0 and Trainer.from_checkpoint(str(out)).step == step


# ----------------------------------------------------------------------------- what the ranks run
TINY = dict(dataset="tinytales", batch_size=5, max_iters=6, eval_interval=100, eval_iters=1, schedule="constant",
            learning_rate=3e-3, grad_clip=0.5, weight_decay=0.1, progress=False)
TINY_MODEL = dict(n_layer=1, n_head=2, n_embd=8, block_size=8, tie_embeddings=True)  # (a GPTConfig's)


def tiny_config(out_dir):
    from tinyllm.models import GPTConfig
    from tinyllm.train import TrainConfig
    return TrainConfig(**TINY, model=GPTConfig(**TINY_MODEL), out_dir=str(out_dir))


def reference_trainer(out_dir):
    """The one-process run the distributed trainer must repeat (float64 after use_float64)."""
    from tinyllm.train import Trainer
    return Trainer(tiny_config(out_dir))


def use_float64(setattr=setattr):
    """Make the trainer build float64 models (the test's precision); in the test process,
    pass monkeypatch.setattr so that other tests get float32 again."""
    from tinyllm import train
    build = train.LanguageModelingTask.build_model

    def build_float64(self):
        return build(self).double()
    setattr(train.LanguageModelingTask, "build_model", build_float64)


def report(comm, scenario, **values):
    """One JSON line of results: into TINYLLM_TEST_REPORTS/rank<r>.jsonl (ranks printing to one
    pipe may run their lines together), or printed when run by hand."""
    line = json.dumps({"rank": comm.rank, "scenario": scenario, **values})
    folder = os.environ.get("TINYLLM_TEST_REPORTS")
    if folder is None:
        print(line, flush=True)
        return
    with open(os.path.join(folder, f"rank{comm.rank}.jsonl"), "a") as f:
        f.write(line + "\n")


def max_diff(a, b):
    from tinyllm import backend
    a, b = backend.to_host(a), backend.to_host(b)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def scenario_collectives(comm):
    """Each collective against its definition, on NumPy, on the strict device (device arrays
    through the host) and, when there is one, on the GPU (the ranks sharing it through the host)."""
    from tinyllm import backend
    diffs = {}
    for device in ("cpu", "strict") + (("cuda",) if backend.cuda_available() else ()):
        def on(a):
            return backend.to_device(np.array(a, dtype=np.float64), device)
        rows = np.arange(6.0).reshape(3, 2)
        mine = rows * (comm.rank + 1)  # (copied by on(...) below: the collectives write in place)
        total = rows * sum(range(1, comm.size + 1))
        x = on(mine)
        assert comm.all_reduce(x) is x
        diffs[f"diff_all_reduce_{device}"] = max_diff(x, total)
        biggest = on(mine)
        comm.all_reduce(biggest, op="max")
        diffs[f"diff_all_reduce_max_{device}"] = max_diff(biggest, rows * comm.size)
        y = on(mine)
        comm.broadcast(y, root=comm.size - 1)
        diffs[f"diff_broadcast_{device}"] = max_diff(y, rows * comm.size)
        gathered = comm.all_gather(on(mine))
        diffs[f"diff_all_gather_{device}"] = max_diff(
            gathered, np.concatenate([rows * (r + 1) for r in range(comm.size)]))
        tall = np.arange(comm.size * 4.0).reshape(comm.size * 2, 2)
        block = comm.reduce_scatter(on(tall * (comm.rank + 1)))
        expected = (tall * sum(range(1, comm.size + 1)))[2 * comm.rank:2 * comm.rank + 2]
        diffs[f"diff_reduce_scatter_{device}"] = max_diff(block, expected)
        assert backend.array_device(block) is backend.get_device(device)
    comm.barrier()
    report(comm, "collectives", **diffs)


def tiny_model(seed):
    """A float64 GPT with tied embeddings, a frozen position table and a parameter no forward
    uses (its gradient must stay None)."""
    import tinyllm as tl
    from tinyllm.models import GPT, GPTConfig

    class Model(tl.nn.Module):
        def __init__(self):
            super().__init__()
            self.gpt = GPT(GPTConfig(vocab_size=11, block_size=6, n_layer=1, n_head=2, n_embd=8,
                                     tie_embeddings=True), dtype=np.float64)
            self.gpt.transformer.wpe.weight.requires_grad_(False)
            self.unused = tl.nn.Parameter(np.ones(3))

        def forward(self, x, y):
            return self.gpt(x, y)[1]

    tl.manual_seed(seed)
    return Model()


def global_batch(step, batch_size=7):
    rng = np.random.default_rng(100 + step)
    x = rng.integers(0, 11, size=(batch_size, 6))
    return x, np.roll(x, -1, axis=1)


def scenario_ddp(comm):
    """Gradients and 3 AdamW steps (clipping, tied, frozen and unused parameters) on 7 rows
    split over the ranks equal one process on all 7 rows; and so does gradient accumulation."""
    import tinyllm as tl
    from tinyllm.distributed import DistributedDataParallel, batch_share
    from tinyllm.optim import AdamW, clip_grad_norm_, param_groups
    reference = tiny_model(seed=0)
    model = DistributedDataParallel(tiny_model(seed=comm.rank), comm)  # rank 0's weights win
    diffs = {"diff_broadcast": max(max_diff(p.data, q.data) for p, q in
                                   zip(reference.parameters(), model.module.parameters()))}
    optimizers = [AdamW(param_groups(m.named_parameters(), 0.1), lr=1e-2) for m in (reference, model)]
    rows, weight = batch_share(7, comm.rank, comm.size)
    for step in range(3):
        x, y = global_batch(step)
        for m, opt in zip((reference, model), optimizers):
            opt.zero_grad()
        reference(tl.Tensor(x), tl.Tensor(y)).backward()
        model.backward(model(tl.Tensor(x[rows]), tl.Tensor(y[rows])), weight)
        if step == 0:
            pairs = list(zip(reference.parameters(), model.module.parameters()))
            assert all((p.grad is None) == (q.grad is None) for p, q in pairs)
            assert model.module.unused.grad is None and model.module.gpt.transformer.wpe.weight.grad is None
            diffs["diff_gradients"] = max(max_diff(p.grad, q.grad) for p, q in pairs if p.grad is not None)
        for m, opt in zip((reference, model), optimizers):
            clip_grad_norm_(m.parameters(), 0.5)
            opt.step()
    diffs["diff_parameters_after_3_steps"] = max(
        max_diff(p.data, q.data) for p, q in zip(reference.parameters(), model.module.parameters()))
    # gradient accumulation: two micro-batches (rows 0-3 and 4-6), the first under no_sync
    x, y = global_batch(5)
    reference.zero_grad()
    model.zero_grad()
    reference(tl.Tensor(x), tl.Tensor(y)).backward()
    for micro in (slice(0, 4), slice(4, 7)):  # each loss weighted by its rows' share of all 7 rows
        part, _ = batch_share(micro.stop - micro.start, comm.rank, comm.size)
        loss = model(tl.Tensor(x[micro][part]), tl.Tensor(y[micro][part])) * ((part.stop - part.start) / 7)
        if micro.start == 0:
            with model.no_sync():
                model.backward(loss)
        else:
            model.backward(loss, weight=1.0)
    diffs["diff_accumulated_gradients"] = max(max_diff(p.grad, q.grad) for p, q in
                                              zip(reference.parameters(), model.module.parameters())
                                              if p.grad is not None)
    report(comm, "ddp", **diffs)


def scenario_zero(comm):
    """ZeRO-1 (two parameter groups, global-norm clipping) equals AdamW + clip_grad_norm_ for 4
    steps; its gathered state_dict equals AdamW's; it resumes from AdamW's state_dict."""
    import tinyllm as tl
    from tinyllm.distributed import ZeroRedundancyAdamW, batch_share, broadcast_parameters
    from tinyllm.optim import AdamW, clip_grad_norm_, param_groups
    reference, model = tiny_model(seed=0), tiny_model(seed=comm.rank)
    broadcast_parameters(model, comm)
    plain = AdamW(param_groups(reference.named_parameters(), 0.1), lr=1e-2)
    zero = ZeroRedundancyAdamW(param_groups(model.named_parameters(), 0.1), comm, lr=1e-2, max_grad_norm=0.5)
    rows, weight = batch_share(7, comm.rank, comm.size)

    def train(steps, offset=0):
        for step in range(offset, offset + steps):
            x, y = global_batch(step)
            plain.zero_grad()
            zero.zero_grad()
            reference(tl.Tensor(x), tl.Tensor(y)).backward()
            model(tl.Tensor(x[rows]), tl.Tensor(y[rows])).backward()
            norm = clip_grad_norm_(reference.parameters(), 0.5)
            plain.step()
            zero.step(weight)
            assert abs(norm - zero.last_grad_norm) < 1e-12 * norm
    train(4)
    diffs = {"diff_parameters_after_4_steps": max(max_diff(p.data, q.data) for p, q in
                                                  zip(reference.parameters(), model.parameters()))}
    mine, theirs = zero.state_dict(), plain.state_dict()
    assert mine["state"].keys() == theirs["state"].keys() and mine["param_groups"] == theirs["param_groups"]
    diffs["diff_state_dict"] = max(max_diff(mine["state"][i][k], theirs["state"][i][k])
                                   for i in theirs["state"] for k in ("exp_avg", "exp_avg_sq"))
    assert all(mine["state"][i]["step"] == theirs["state"][i]["step"] for i in theirs["state"])
    # resume: a fresh ZeRO optimizer loads plain AdamW's state and goes on as AdamW does
    zero = ZeroRedundancyAdamW(param_groups(model.named_parameters(), 0.1), comm, lr=1e-2, max_grad_norm=0.5)
    zero.load_state_dict(theirs)
    train(2, offset=4)
    diffs["diff_parameters_after_resume"] = max(max_diff(p.data, q.data) for p, q in
                                                zip(reference.parameters(), model.parameters()))
    adamw_bytes = sum(v.nbytes for entry in plain.state.values() for v in entry.values() if hasattr(v, "nbytes"))
    report(comm, "zero", state_bytes=zero.state_nbytes(), adamw_state_bytes=adamw_bytes, **diffs)


def scenario_tensor_parallel(comm):
    """GPT's MLP and attention split over the ranks equal the unsplit layers in forward and
    backward (weights' gradients = slices of the full ones); f, g, both linear layers, the
    split MLP and the split attention pass the cross-rank gradient check."""
    import tinyllm as tl
    from tinyllm.distributed import (ColumnParallelLinear, CopyToTensorParallel, ParallelCausalSelfAttention,
                                     ParallelMLP, RowParallelLinear, copy_to_tensor_parallel, parallel_gradcheck,
                                     reduce_from_tensor_parallel)
    from tinyllm.models.gpt import MLP, CausalSelfAttention, GPTConfig
    tl.manual_seed(3)
    config = GPTConfig(vocab_size=11, block_size=5, n_layer=1, n_head=4, n_embd=8, bias=True)
    x_host = np.random.default_rng(7).standard_normal((2, 5, 8))
    diffs = {}
    for name, full, split in (("mlp", MLP(config, dtype=np.float64), ParallelMLP),
                              ("attention", CausalSelfAttention(config, dtype=np.float64),
                               ParallelCausalSelfAttention)):
        part = split(full, comm)
        x, xs = tl.Tensor(x_host, requires_grad=True), tl.Tensor(x_host, requires_grad=True)
        cotangent = tl.Tensor(np.random.default_rng(8).standard_normal((2, 5, 8)))
        y, ys = full(x), part(xs)
        (y * cotangent).sum().backward()
        (ys * cotangent).sum().backward()
        diffs[f"diff_{name}_forward"] = max_diff(y.data, ys.data)
        diffs[f"diff_{name}_input_gradient"] = max_diff(x.grad, xs.grad)
        for layer in ("c_fc", "c_attn", "c_proj"):
            if not hasattr(part, layer):
                continue
            whole, piece = getattr(full, layer), getattr(part, layer)
            if layer == "c_proj":  # row-parallel: this rank's columns; the bias is whole
                columns = _columns_of(part, name, config, comm)
                expected_weight, expected_bias = whole.weight.grad[:, columns], whole.bias.grad
            else:
                rows = _columns_of(part, name, config, comm, packed=(layer == "c_attn"))
                expected_weight, expected_bias = whole.weight.grad[rows], whole.bias.grad[rows]
            diffs[f"diff_{name}_{layer}_gradients"] = max(max_diff(piece.weight.grad, expected_weight),
                                                          max_diff(piece.bias.grad, expected_bias))
    # the cross-rank gradient checks (small layers: every element is perturbed)
    rng = np.random.default_rng(11 + comm.rank)
    x = tl.Tensor(np.random.default_rng(12).standard_normal((2, 3)), requires_grad=True)
    mine = tl.Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    checks = [parallel_gradcheck(lambda t: copy_to_tensor_parallel(t, comm) * (comm.rank + 1.0), [x], comm,
                                 output="sharded"),
              parallel_gradcheck(lambda t: reduce_from_tensor_parallel(t, comm), [mine], comm, sharded=[0])]
    tl.manual_seed(5)
    column, row = (cls(3, 5, comm, dtype=np.float64) for cls in (ColumnParallelLinear, RowParallelLinear))
    x_row = tl.Tensor(rng.standard_normal((2, row.in_features)), requires_grad=True)
    checks.append(parallel_gradcheck(lambda t, w, b: column.forward(t), [x, column.weight, column.bias], comm,
                                     sharded=[1, 2], output="sharded"))
    checks.append(parallel_gradcheck(lambda t, w, b: row.forward(t), [x_row, row.weight, row.bias], comm,
                                     sharded=[0, 1]))
    small = GPTConfig(vocab_size=5, block_size=3, n_layer=1, n_head=1, n_embd=3)
    mlp = ParallelMLP(MLP(small, dtype=np.float64), comm)
    checks.append(parallel_gradcheck(lambda t, *params: mlp(t), [x, *mlp.parameters()], comm,
                                     sharded=[1, 2, 3]))
    # the split attention: one head per rank (its c_attn weight and bias, c_proj's weight sharded;
    # c_proj's bias whole)
    heads = GPTConfig(vocab_size=5, block_size=3, n_layer=1, n_head=comm.size, n_embd=2 * comm.size, bias=True)
    attention = ParallelCausalSelfAttention(CausalSelfAttention(heads, dtype=np.float64), comm)
    x_attention = tl.Tensor(np.random.default_rng(13).standard_normal((1, 3, heads.n_embd)), requires_grad=True)
    checks.append(parallel_gradcheck(lambda t, *params: attention(t), [x_attention, *attention.parameters()],
                                     comm, sharded=[1, 2, 3]))
    # and the check fails on a wrong rule: f without its all-reduce in backward
    class CopyWithoutReduce(CopyToTensorParallel):
        def backward(self, g):
            return (g,)
    try:
        parallel_gradcheck(lambda t: CopyWithoutReduce.apply(t, communicator=comm) * (comm.rank + 1.0), [x], comm,
                           output="sharded")
        caught = False
    except tl.GradcheckError as error:
        caught = "replicated" in str(error)
    report(comm, "tensor_parallel", gradchecks=sum(checks), wrong_rule_caught=caught, **diffs)


def _columns_of(part, name, config, comm, packed=False):
    """The rows/columns of the full layer that this rank's piece holds."""
    from tinyllm.distributed import shard_range
    if name == "mlp":
        block = shard_range(4 * config.n_embd, comm.rank, comm.size)
        return np.arange(block.start, block.stop)
    heads = shard_range(config.n_head, comm.rank, comm.size)
    d = config.n_embd // config.n_head
    columns = np.arange(heads.start * d, heads.stop * d)
    return np.concatenate([columns, config.n_embd + columns, 2 * config.n_embd + columns]) if packed else columns


def run_trainer(comm, out_dir, *options):
    """The float64 trainer on this world: ``--stop-after K`` or ``--resume``."""
    from tinyllm.distributed.training import DistributedTrainer
    use_float64()
    resume = "--resume" in options
    stop_after = int(options[options.index("--stop-after") + 1]) if "--stop-after" in options else None
    trainer = DistributedTrainer(tiny_config(out_dir), resume=resume, communicator=comm)
    trainer.train(stop_after=stop_after)
    trainer.save()


def run_failing_trainer(comm, hang=False):
    """Rank 1 raises (or hangs) at step 2 of a training run."""
    from tinyllm.distributed.training import DistributedTrainer
    import tempfile
    trainer = DistributedTrainer(tiny_config(tempfile.mkdtemp()), communicator=comm)
    batch = trainer.task.task.batch

    def failing_batch(split, rng):
        if comm.rank == 1 and trainer.step == 2:
            if hang:
                time.sleep(60)
            raise RuntimeError("rank 1 fails at step 2")
        return batch(split, rng)
    trainer.task.task.batch = failing_batch
    trainer.train()


def main(argv):
    from tinyllm.distributed.mpi import MPICommunicator
    from tinyllm.testing import strict
    strict.register()
    comm = MPICommunicator()
    with comm.abort_on_error():
        if argv[0] == "trainer":
            run_trainer(comm, *argv[1:])
        elif argv[0] in ("fail", "hang"):
            run_failing_trainer(comm, hang=argv[0] == "hang")
        else:
            for name in argv:
                globals()[f"scenario_{name}"](comm)


if __name__ == "__main__":
    main(sys.argv[1:])
