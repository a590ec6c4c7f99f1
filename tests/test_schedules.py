"""Learning-rate schedules: values at the key points, the shape of each piece, and the
Schedule object driving an optimizer (checked against torch's LambdaLR step indexing)."""
import math

import numpy as np
import pytest

import tinyllm as tl
from tinyllm.optim import AdamW, SGD, Schedule, cosine_with_warmup, noam

MAX, MIN, WARMUP, DECAY = 1e-3, 1e-4, 100, 2000


def lr(step):
    return cosine_with_warmup(step, MAX, MIN, WARMUP, DECAY)


def test_cosine_key_points():
    assert lr(0) == pytest.approx(MAX / WARMUP)
    assert lr(49) == pytest.approx(MAX * 50 / WARMUP)
    assert lr(WARMUP - 1) == pytest.approx(MAX)           # warmup ends at the peak
    assert lr(WARMUP) == pytest.approx(MAX)               # where the cosine starts
    assert lr((WARMUP + DECAY) // 2) == pytest.approx((MAX + MIN) / 2)
    assert lr(DECAY) == pytest.approx(MIN)
    assert lr(DECAY + 1) == lr(10 * DECAY) == MIN


def test_cosine_pieces_are_monotone_and_peak_at_warmup():
    values = np.array([lr(s) for s in range(DECAY + 50)])
    assert np.all(np.diff(values[:WARMUP]) > 0)            # warmup: strictly rising, linear
    np.testing.assert_allclose(np.diff(values[:WARMUP]), MAX / WARMUP)
    assert np.all(np.diff(values[WARMUP:DECAY + 1]) < 0)   # cosine: strictly falling
    assert np.all(values[DECAY:] == MIN)
    assert values.max() == pytest.approx(MAX) and values.argmax() in (WARMUP - 1, WARMUP)
    assert values[WARMUP:].min() == pytest.approx(MIN)


def test_cosine_matches_nanogpt_formula_after_warmup():
    for step in range(WARMUP, DECAY + 1, 37):
        ratio = (step - WARMUP) / (DECAY - WARMUP)
        expected = MIN + 0.5 * (1 + math.cos(math.pi * ratio)) * (MAX - MIN)
        assert lr(step) == pytest.approx(expected, rel=1e-12)


def test_cosine_edge_cases():
    assert cosine_with_warmup(0, MAX, MIN, 0, 10) == MAX       # no warmup: start at the top
    assert cosine_with_warmup(5, MAX, MIN, 5, 5) == MIN        # no decay phase
    with pytest.raises(ValueError):
        cosine_with_warmup(0, MAX, MIN, 10, 5)
    with pytest.raises(ValueError):
        cosine_with_warmup(-1, MAX, MIN, 10, 50)


def test_noam_key_points_and_shape():
    d_model, warmup = 512, 4000
    peak = noam(warmup - 1, d_model, warmup)
    assert peak == pytest.approx((d_model * warmup) ** -0.5)
    assert noam(0, d_model, warmup) == pytest.approx(d_model ** -0.5 * warmup ** -1.5)
    assert noam(0, d_model, warmup, factor=2.0) == pytest.approx(2 * noam(0, d_model, warmup))
    values = np.array([noam(s, d_model, warmup) for s in range(3 * warmup)])
    assert values.argmax() == warmup - 1
    assert np.all(np.diff(values[:warmup]) > 0) and np.all(np.diff(values[warmup - 1:]) < 0)
    # after the peak: the inverse square root of the paper's step_num = step + 1
    assert noam(4 * warmup - 1, d_model, warmup) == pytest.approx(peak / 2)
    with pytest.raises(ValueError):
        noam(0, d_model, 0)


def test_noam_matches_the_annotated_transformer():
    def rate(step, model_size, factor, warmup):  # its `rate`, with step counted from 1
        return factor * (model_size ** -0.5 * min(step ** -0.5, step * warmup ** -1.5))
    for step in (0, 1, 10, 399, 400, 401, 5000):
        assert noam(step, 256, 400, factor=1.5) == pytest.approx(rate(step + 1, 256, 1.5, 400), rel=1e-12)


def _optimizer():
    a = tl.Tensor(np.zeros(3), requires_grad=True)
    b = tl.Tensor(np.zeros(2), requires_grad=True)
    return AdamW([{"params": [a]}, {"params": [b], "weight_decay": 0.0}], lr=123.0)


def test_schedule_sets_every_group_and_steps():
    opt = _optimizer()
    schedule = Schedule(opt, lr)
    assert [g["lr"] for g in opt.param_groups] == [lr(0), lr(0)]
    for _ in range(150):
        schedule.step()
    assert schedule.current_step == 150
    assert schedule.lr == lr(150)
    assert all(g["lr"] == lr(150) for g in opt.param_groups)


def test_schedule_state_dict_round_trip():
    opt = _optimizer()
    schedule = Schedule(opt, lr)
    for _ in range(42):
        schedule.step()
    saved = schedule.state_dict()
    assert saved == {"step": 42}
    opt2 = _optimizer()
    resumed = Schedule(opt2, lr)
    resumed.load_state_dict(saved)
    assert opt2.param_groups[1]["lr"] == lr(42)
    schedule.step()
    resumed.step()
    assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"] == lr(43)


def test_schedule_indexing_matches_torch_lambda_lr():
    torch = pytest.importorskip("torch")
    base = 0.1
    p = torch.zeros(2, requires_grad=True)
    topt = torch.optim.SGD([p], lr=base)
    tsched = torch.optim.lr_scheduler.LambdaLR(topt, lambda s: lr(s) / MAX)
    opt = SGD([tl.Tensor(np.zeros(2), requires_grad=True)], lr=base)
    schedule = Schedule(opt, lambda s: base * lr(s) / MAX)
    for _ in range(120):
        assert opt.param_groups[0]["lr"] == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)
        topt.step()
        tsched.step()
        schedule.step()
