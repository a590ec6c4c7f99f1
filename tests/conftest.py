"""Shared fixtures: every device test runs on each backend present.

* "cpu"    NumPy.
* "strict" NumPy behind CuPy's rules (tinyllm.testing.strict): fails wherever CuPy would.
* "cuda"   CuPy on a GPU, only when one is present (tests marked ``gpu``).

TINYLLM_TEST_DEVICES=cpu,strict (comma-separated) narrows the list.
"""
import os

import pytest
from hypothesis import HealthCheck, settings

import tinyllm as tl
from tinyllm.testing import strict

strict.register()

# Hypothesis: deterministic, no deadline (gradchecks take variable time), fixtures per test
settings.register_profile(
    "tinyllm", max_examples=int(os.environ.get("TINYLLM_HYPOTHESIS_EXAMPLES", "12")), deadline=None,
    derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile("tinyllm")


def _devices():
    wanted = os.environ.get("TINYLLM_TEST_DEVICES")
    devices = ["cpu", "strict"]
    if tl.cuda_available():
        devices.append("cuda")
    if wanted:
        devices = [d for d in devices if d in wanted.split(",")]
    return [pytest.param(d, marks=pytest.mark.gpu) if d == "cuda" else d for d in devices]


DEVICES = _devices()


@pytest.fixture(params=DEVICES)
def device(request):
    """The name of a tinyllm device to run the test on."""
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    tl.manual_seed(0)
    yield


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs CuPy and a GPU (skipped otherwise)")
    config.addinivalue_line("markers", "slow: long-running (deselect with -m 'not slow')")
