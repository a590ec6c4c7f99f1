"""tinyllm.distributed in one process (the N-rank proofs are in test_distributed_mpi.py).

With one rank every collective is the identity, so here the code paths are checked against
plain tinyllm on every device (the strict one included): DDP, ZeRO-1 and the tensor-parallel
layers equal the one-process model, optimizer and layers; f and g pass the gradient check;
the helpers split batches and ranges correctly; errors name what was expected.
"""
import importlib.util
import types

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyllm as tl
from tinyllm import backend
from tinyllm.distributed import (CollectiveTimeout, ColumnParallelLinear, DistributedDataParallel, FlatBuffer,
                                 ParallelCausalSelfAttention, ParallelMLP, RowParallelLinear,
                                 SingleProcessCommunicator, ZeroRedundancyAdamW, batch_share,
                                 copy_to_tensor_parallel, init_communicator, parallel_gradcheck,
                                 reduce_from_tensor_parallel, shard_range)
from tinyllm.distributed.launch import launch_environment, rank_command
from tinyllm.models.gpt import MLP, CausalSelfAttention, GPTConfig
from tinyllm.optim import AdamW, clip_grad_norm_, param_groups

from helpers import shapes, tensor, values

COMM = SingleProcessCommunicator()


def on(array, device):
    return backend.to_device(np.array(array, dtype=np.float64), device)


# ----------------------------------------------------------------------------- communicators
def test_one_process_collectives_are_the_identity(device):
    x = on(np.arange(6.0).reshape(3, 2), device)
    assert COMM.all_reduce(x) is x and COMM.broadcast(x, root=0) is x
    for result in (COMM.all_gather(x), COMM.reduce_scatter(x)):
        assert result is not x and backend.array_device(result) is backend.get_device(device)
        np.testing.assert_array_equal(backend.to_host(result), np.arange(6.0).reshape(3, 2))
    COMM.barrier()
    assert (COMM.rank, COMM.size) == (0, 1) and init_communicator("auto").size == 1


def test_collectives_refuse_what_they_cannot_use(device):
    x = on(np.arange(6.0).reshape(3, 2), device)
    with pytest.raises(ValueError, match="C-contiguous"):
        COMM.all_reduce(x.T)
    with pytest.raises(ValueError, match="op must be one of"):
        COMM.all_reduce(x, op="mean")
    with pytest.raises(ValueError, match="root must be a rank in"):
        COMM.broadcast(x, root=1)
    with pytest.raises(TypeError, match="pass tensor.data"):
        COMM.all_reduce(tl.Tensor([1.0]))
    with pytest.raises(ValueError, match="at least 1 dimension"):
        COMM.all_gather(on(1.0, device))
    with pytest.raises(ValueError, match="backend must be"):
        init_communicator("gloo")
    with pytest.raises(ValueError, match="timeout must be"):
        SingleProcessCommunicator(timeout=0)


def test_a_wait_past_the_timeout_names_the_call_and_the_rank():
    comm = SingleProcessCommunicator(timeout=0.05)
    with pytest.raises(CollectiveTimeout, match=r"rank 0 of 1: all_reduce did not finish within 0.05 s"):
        comm._poll(lambda: False, "all_reduce")


def test_with_one_rank_an_error_propagates_instead_of_ending_the_process():
    with pytest.raises(ZeroDivisionError):
        with COMM.abort_on_error():
            1 / 0


def test_nccl_without_cupy_says_what_to_install():
    pytest.importorskip("mpi4py")
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed")
    with pytest.raises(ImportError, match="NCCL backend needs CuPy"):
        init_communicator("nccl")


@pytest.mark.gpu
def test_one_rank_nccl_all_reduce_on_the_gpu():
    pytest.importorskip("mpi4py")
    if not tl.cuda_available():
        pytest.skip("needs CuPy and a GPU")
    comm = init_communicator("nccl")
    x = backend.to_device(np.arange(4.0), "cuda")
    comm.all_reduce(x)
    np.testing.assert_array_equal(backend.to_host(comm.all_gather(x)), np.arange(4.0))


# ----------------------------------------------------------------------------- splitting
@given(n=st.integers(1, 40), size=st.integers(1, 7))
def test_shard_ranges_cover_the_range_in_nearly_equal_contiguous_blocks(n, size):
    blocks = [shard_range(n, r, size) for r in range(size)]
    assert blocks[0].start == 0 and blocks[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(blocks, blocks[1:]))
    lengths = [b.stop - b.start for b in blocks]
    assert max(lengths) - min(lengths) <= 1 and lengths == sorted(lengths, reverse=True)


def test_batch_share_weights_sum_to_one_and_refuse_empty_ranks():
    shares = [batch_share(10, r, 3) for r in range(3)]
    assert [s.stop - s.start for s, _ in shares] == [4, 3, 3]
    assert sum(w for _, w in shares) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least one row per rank"):
        batch_share(2, 0, 3)


@given(shape_list=st.lists(shapes, min_size=1, max_size=4))
def test_flat_buffer_packs_and_views_each_tensor(shape_list):
    tensors = [tl.Tensor(np.random.default_rng(i).standard_normal(s)) for i, s in enumerate(shape_list)]
    flat = FlatBuffer(tensors, extra=2)
    flat.pack([t.data for t in tensors[:-1]] + [None])
    assert flat.array.size == sum(t.size for t in tensors) + 2
    for t, view in zip(tensors[:-1], flat.views()):
        np.testing.assert_array_equal(view, t.data)
    assert not flat.views()[-1].any()


# ----------------------------------------------------------------------------- DDP and ZeRO on one rank
def small_gpt(device):
    tl.manual_seed(0)
    model = tl.models.GPT(GPTConfig(vocab_size=7, block_size=4, n_layer=1, n_head=2, n_embd=4),
                          dtype=np.float64).to(device)
    model.transformer.wpe.weight.requires_grad_(False)
    return model


def batch(step, device):
    x = np.random.default_rng(step).integers(0, 7, size=(3, 4))
    return tl.Tensor(x, device=device), tl.Tensor(np.roll(x, -1, axis=1), device=device)


def test_ddp_and_zero_on_one_rank_train_exactly_as_plain_adamw(device):
    reference, ddp_model, zero_model = (small_gpt(device) for _ in range(3))
    ddp = DistributedDataParallel(ddp_model, COMM)
    plain = AdamW(param_groups(reference.named_parameters(), 0.1), lr=1e-2)
    adamw = AdamW(param_groups(ddp_model.named_parameters(), 0.1), lr=1e-2)
    zero = ZeroRedundancyAdamW(param_groups(zero_model.named_parameters(), 0.1), COMM, lr=1e-2, max_grad_norm=0.3)
    for step in range(3):
        for opt in (plain, adamw, zero):
            opt.zero_grad()
        reference(*batch(step, device))[1].backward()
        ddp.backward(ddp(*batch(step, device))[1])
        zero_model(*batch(step, device))[1].backward()
        clip_grad_norm_(reference.parameters(), 0.3)
        clip_grad_norm_(ddp_model.parameters(), 0.3)
        plain.step(), adamw.step(), zero.step()
    for p, q, r in zip(reference.parameters(), ddp_model.parameters(), zero_model.parameters()):
        np.testing.assert_allclose(backend.to_host(q.data), backend.to_host(p.data), rtol=0, atol=1e-14)
        np.testing.assert_allclose(backend.to_host(r.data), backend.to_host(p.data), rtol=0, atol=1e-14)
    assert reference.transformer.wpe.weight.grad is None and ddp_model.transformer.wpe.weight.grad is None
    assert list(ddp.state_dict())[0].startswith("module.")
    assert zero.state_nbytes() == sum(v.nbytes for e in plain.state.values() for v in e.values()
                                      if hasattr(v, "nbytes"))


def test_no_sync_accumulates_until_the_next_synced_backward(device):
    model = DistributedDataParallel(small_gpt(device), COMM)
    with model.no_sync():
        model.backward(model(*batch(0, device))[1])
    model.backward(model(*batch(1, device))[1], weight=0.5)
    reference = small_gpt(device)
    (reference(*batch(0, device))[1] * 0.5 + reference(*batch(1, device))[1] * 0.5).backward()
    for p, q in zip(reference.parameters(), model.parameters()):
        if p.grad is not None:
            np.testing.assert_allclose(backend.to_host(q.grad), backend.to_host(p.grad), rtol=0, atol=1e-15)


def test_ddp_wraps_only_modules_and_zero_wants_one_dtype():
    with pytest.raises(TypeError, match="wraps a tl.nn.Module"):
        DistributedDataParallel(object(), COMM)
    mixed = [tl.nn.Parameter(np.ones(2)), tl.nn.Parameter(np.ones(2, dtype=np.float32))]
    with pytest.raises(TypeError, match="one dtype and device"):
        ZeroRedundancyAdamW(mixed, COMM)


# ----------------------------------------------------------------------------- tensor parallelism on one rank
@given(data=st.data())
def test_f_and_g_gradcheck(device, data):
    shape = data.draw(shapes)
    for function in (copy_to_tensor_parallel, reduce_from_tensor_parallel):
        x = tensor(values(data.draw, shape), device)
        assert tl.gradcheck(lambda t: function(t, COMM) * t, x)
        assert parallel_gradcheck(lambda t: function(t, COMM) * t, [x], COMM)


def test_split_layers_on_one_rank_equal_the_whole_layers(device):
    tl.manual_seed(1)
    config = GPTConfig(vocab_size=5, block_size=3, n_layer=1, n_head=2, n_embd=4)
    x_host = np.random.default_rng(2).standard_normal((2, 3, 4))
    for full, split in ((MLP(config, dtype=np.float64), ParallelMLP),
                        (CausalSelfAttention(config, dtype=np.float64), ParallelCausalSelfAttention)):
        full.to(device)
        part = split(full, COMM)
        x, xs = (tl.Tensor(x_host, requires_grad=True, device=device) for _ in range(2))
        y, ys = full(x), part(xs)
        y.sum().backward(), ys.sum().backward()
        np.testing.assert_allclose(backend.to_host(ys.data), backend.to_host(y.data), atol=1e-14)
        np.testing.assert_allclose(backend.to_host(xs.grad), backend.to_host(x.grad), atol=1e-14)
    tl.manual_seed(4)
    whole = tl.nn.Linear(3, 5, dtype=np.float64)
    for cls in (ColumnParallelLinear, RowParallelLinear):
        tl.manual_seed(4)
        layer = cls(3, 5, COMM, dtype=np.float64)  # the same seed, the same numbers as the unsplit layer
        np.testing.assert_array_equal(layer.weight.data, whole.weight.data)


def test_parallel_gradcheck_fails_on_a_wrong_rule():
    class Twice(tl.Function):
        def forward(self, x):
            return 2 * x

        def backward(self, g):
            return (g,)  # should be 2g
    x = tl.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(tl.GradcheckError, match="input 0 .replicated, shape .3,.. on rank 0 of 1"):
        parallel_gradcheck(lambda t: Twice.apply(t), [x], COMM)


# ----------------------------------------------------------------------------- the trainer and the launcher
def test_the_distributed_trainer_on_one_rank_repeats_the_plain_trainer(tmp_path, capsys):
    from tinyllm.cli import main
    common = ["train", "--max-iters", "3", "--eval-interval", "3", "--eval-iters", "1", "--n-layer", "1",
              "--n-embd", "8", "--n-head", "2", "--block-size", "8", "--batch-size", "3", "--no-sample",
              "--progress", "false"]
    assert main(common + ["--out", str(tmp_path / "plain")]) == 0
    plain = capsys.readouterr().out.splitlines()[-1]
    assert main(common + ["--out", str(tmp_path / "ddp"), "--distributed"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "data parallel: 1 ranks (single), global batch 3 = 3 rows per rank"
    assert lines[-1] == plain


def test_seq2seq_batches_are_split_along_their_batch_axis():
    from tinyllm.data import Seq2SeqBatch
    from tinyllm.distributed.training import DataParallelTask
    src = np.arange(12).reshape(3, 4)                                   # (S, B)
    tgt = np.array([[1, 2, 3, 4], [5, -100, 7, -100], [-100, -100, 9, -100]])  # (T, B), -100 = padding
    whole = Seq2SeqBatch(src, tgt, tgt, np.zeros((4, 3), bool), np.zeros((4, 3), bool))
    inner = types.SimpleNamespace(batch=lambda split, rng: whole)
    trainer = types.SimpleNamespace(communicator=types.SimpleNamespace(rank=1, size=2),
                                    cfg=types.SimpleNamespace(batch_size=4))
    task = DataParallelTask(inner, trainer)
    local = task.batch("train", None)
    np.testing.assert_array_equal(local.src, src[:, 2:])
    assert local.src_padding_mask.shape == (2, 3)
    assert task.weight == pytest.approx(4 / 7)  # 4 of the 7 predicted tokens are in rows 2 and 3
    with tl.no_grad():
        assert task.batch("val", None) is whole


def test_nproc_reruns_the_command_under_mpiexec_with_distributed(monkeypatch):
    monkeypatch.setattr("tinyllm.distributed.launch.find_mpiexec", lambda: "/bin/mpiexec")
    command = rank_command(["train", "--nproc", "4", "--preset", "default", "--nproc=4"], 4)
    assert command[:3] == ["/bin/mpiexec", "-n", "4"] and command[4:] == ["-m", "tinyllm", "train", "--preset",
                                                                          "default", "--distributed"]
    assert rank_command(["train", "--distributed", "mpi"], 2)[-2:] == ["--distributed", "mpi"]
    with pytest.raises(ValueError, match="--nproc must be"):
        rank_command(["train"], 0)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert int(launch_environment(64)["OMP_NUM_THREADS"]) == 1


@pytest.mark.parametrize("argv, message", [
    (["train", "--np", "2"], "unrecognized arguments: --np 2"),  # never read as --nproc (it would recurse)
    (["train", "--npro=2"], "unrecognized arguments: --npro=2"),
])
def test_a_shortened_option_is_refused_not_guessed(argv, message, capsys):
    from tinyllm.cli import main
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["train", "--nproc", "2"], "already is one of 2 ranks that mpiexec started; use --distributed"),
    (["train", "--max-iters", "1"], "one of 2 ranks without --distributed: each rank would train alone"),
])
def test_ranks_started_by_mpiexec_must_say_distributed(argv, message, monkeypatch, capsys):
    """Under `mpiexec -n 2`, `train --nproc 2` would start mpiexec again in every rank, and a plain
    `train` would run two independent copies writing one checkpoint: both refused before any work."""
    from tinyllm.cli import main
    monkeypatch.setenv("PMI_SIZE", "2")
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err
