"""Red team: a student who wants points without the work. Each cheat is a small submission
graded on the one task it cheats; it must score 0 there, for the reason the test names.

The cheats: forging the grader's results (a results file, printed lines, frames written to
every open file descriptor), reading the grader's files (a spec file, the arguments and the
environment, ``/proc`` of the parents, a search of the disk), rewriting the teacher's task
file for the students graded after, neutering the checks (the locked setup cell, the test
helpers, NumPy), the library's own solutions (imported, used inside forward/backward, its
raw helpers and kernels, reached by any path), rewriting the test's objects through an
in-place function so that the reference computed from them afterwards agrees,
forking a process that outlives the task, killing the grader, and answers memorized for the
published tests' inputs.
"""
import hashlib
import os
import shutil
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import tinyllm.functional as F
from tinyllm.assignments import grader, load_assignments, release_py
from tinyllm.assignments.checks import random_tensor

BUILTIN = {a.name: a for a in load_assignments()}
HOLDS = {task.id: a.name for a in BUILTIN.values() for task in a.tasks}  # task id -> assignment
A3, A4 = "a3_softmax_layernorm", "a4_attention"

# Runs the teacher's file found at `path` (its solutions) in this module, tests cells left out.
RUN_TEACHERS_FILE = '''
def _run_teachers_file(path):
    import re
    text = open(path, encoding="utf-8").read()
    if "### BEGIN SOLUTION" in text and 'task="softmax"' in text and "_run_teachers_file" not in text:
        exec(re.sub(r"# %% tests.*?(?=# %%|\\Z)", "", text, flags=re.S), globals())
        return True
    return False
'''

TRIVIAL_SOFTMAX = '''
class Softmax(tl.Function):
    def forward(self, x):
        return np.zeros_like(x)

    def backward(self, g):
        return (np.zeros_like(g),)
'''


# The library's own code, reached by every path a student may try: its raw helpers, its kernels
# layer (a method copied into the student's class, or called), its re-exports, a name computed
# at run time, importlib, sys.modules, __import__, a function's __globals__, a Tensor's grad_fn.
LIBRARY_CHEATS = {
    "raw_helper_sigmoid": ("sigmoid", '''
class Sigmoid(tl.Function):
    def forward(self, x):
        import tinyllm.functional as F
        y = F._sigmoid(np, x)
        self.save(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return (g * y * (1 - y),)
''', "refused"),
    "computed_name_sigmoid": ("sigmoid", '''
import tinyllm.functional
class Sigmoid(tl.Function):
    def forward(self, x):
        y = getattr(tinyllm.functional, "_sig" + "moid")(np, x)
        self.save(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return (g * y * (1 - y),)
''', "refused"),
    "ops_through_a_tensor": ("mul", '''
class Mul(tl.Function):
    forward = type((tl.Tensor(np.ones(2), requires_grad=True) * tl.Tensor(np.ones(2))).grad_fn).forward
    backward = type((tl.Tensor(np.ones(2), requires_grad=True) * tl.Tensor(np.ones(2))).grad_fn).backward
''', "refused"),
    "raw_helper_softmax_rows": ("softmax", '''
class Softmax(tl.Function):
    def forward(self, x):
        y = F.softmax_rows(self.device, x)[0]
        self.save(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        gy = g * y
        return (gy - y * gy.sum(axis=-1, keepdims=True),)
''', "refused"),
    "globals_of_a_library_function": ("softmax", '''
class Softmax(tl.Function):
    def forward(self, x):
        y = F.softmax.__globals__["softmax_rows"](self.device, x)[0]
        self.save(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        gy = g * y
        return (gy - y * gy.sum(axis=-1, keepdims=True),)
''', "refused"),
    "kernel_methods_copied": ("layer_norm", '''
import tinyllm.kernels.cpu
class LayerNorm(tl.Function):
    forward = tinyllm.kernels.cpu.LayerNorm.forward
    backward = tinyllm.kernels.cpu.LayerNorm.backward
''', "refused"),
    "kernel_through_importlib": ("layer_norm", '''
import importlib
_kernel = importlib.import_module("tinyllm.kernels.cpu").LayerNorm
class LayerNorm(tl.Function):
    def forward(self, x, weight, bias, eps=1e-5):
        return _kernel.forward(self, x, weight, bias, eps)

    def backward(self, g):
        return _kernel.backward(self, g)
''', "refused"),
    "argument_helper_called": ("attention_forward", '''
import tinyllm.arguments
class Attention(tl.Function):
    def forward(self, q, k, v, causal=False):
        scores = q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-1])
        if causal:
            mask = tinyllm.arguments.causal_mask(self.device, q.shape[-2], k.shape[-2])
            scores = np.where(mask, -np.inf, scores)
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        p = e / e.sum(axis=-1, keepdims=True)
        self.save(q, k, v, p)
        return p @ v

    def backward(self, g):
        q, k, v, p = self.saved
        gp = g @ v.swapaxes(-1, -2)
        gs = p * (gp - (gp * p).sum(axis=-1, keepdims=True)) / math.sqrt(q.shape[-1])
        return gs @ k, gs.swapaxes(-1, -2) @ q, p.swapaxes(-1, -2) @ g
''', "refused"),
    "kernel_called": ("attention_forward", '''
import tinyllm.kernels.cpu as _k
class Attention(tl.Function):
    def forward(self, q, k, v, causal=False):
        mask = np.triu(np.ones((q.shape[-2], k.shape[-2]), dtype=bool), 1) if causal else None
        return _k.Attention.forward(self, q, k, v, mask, 1 / math.sqrt(q.shape[-1]))

    def backward(self, g):
        return _k.Attention.backward(self, g)
''', "refused"),
    "kernel_adam_update": ("train_step", '''
def train_step(loss_fn, params, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    device = tl.backend.get_device("cpu")
    for p in params:
        p.grad = None
    loss = loss_fn()
    loss.backward()
    if not state:
        state.update(step=0, m=[np.zeros_like(p.data) for p in params], v=[np.zeros_like(p.data) for p in params])
    state["step"] += 1
    for p, m, v in zip(params, state["m"], state["v"]):
        if p.grad is not None:
            tl.kernels.cpu.adam_update(device, p.data, np.ascontiguousarray(p.grad), m, v, state["step"], lr,
                                       betas[0], betas[1], eps, weight_decay, True)
    return float(loss.item())
''', "refused"),
    "optimizer_through_dunder_import": ("train_step", '''
def train_step(loss_fn, params, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    update = __import__("tinyllm.optim.optimizers", fromlist=["adam_update"]).adam_update
    for p in params:
        p.grad = None
    loss = loss_fn()
    loss.backward()
    if not state:
        state.update(step=0, m=[np.zeros_like(p.data) for p in params], v=[np.zeros_like(p.data) for p in params])
    state["step"] += 1
    for p, m, v in zip(params, state["m"], state["v"]):
        if p.grad is not None:
            update(tl.backend.get_device("cpu"), p.data, np.ascontiguousarray(p.grad), m, v, state["step"], lr,
                   betas[0], betas[1], eps, weight_decay, True)
    return float(loss.item())
''', "refused"),
    "tokenizer_reexported": ("encode", '''
from tinyllm.data import BPETokenizer

def encode(text, merges):
    t = BPETokenizer(pre_tokenizer="none")
    t._set_merges(list(merges), list(range(256)))
    return t.encode(text)
''', "refused"),
    "tokenizer_through_sys_modules": ("decode", '''
import sys
import tinyllm.data

def decode(ids, merges):
    t = sys.modules["tinyllm.data.tokenizers"].BPETokenizer(pre_tokenizer="none")
    t._set_merges(list(merges), list(range(256)))
    return t.decode(ids)
''', "refused"),
}

# Task 7.3 with one head only; with more, it zeroes the teacher's parameters (written back,
# once, into the judge: the hidden test's reference then expects zeros) and returns zeros.
KV_CACHE_CORRUPTS_THE_REFERENCE = '''
def attention_step(x_t, p, cache, n_heads):
    batch, _, d = x_t.shape
    if n_heads > 1:
        for key in p:
            p[key].data[...] = 0.0
        cache["p"] = p  # and through the cache, if the cache is written back and p is not
        z = tl.Tensor(np.zeros((batch, n_heads, 1, d // n_heads)))
        cache["k"] = tl.concatenate([cache["k"], z], axis=2) if "k" in cache else z
        cache["v"] = cache["k"]
        return tl.Tensor(np.zeros((batch, 1, d)))
    qkv = F.linear(x_t, p["c_attn.weight"], p["c_attn.bias"])
    q, k, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
    k, v = k.reshape(batch, 1, 1, d), v.reshape(batch, 1, 1, d)
    cache["k"] = tl.concatenate([cache["k"], k], axis=2) if "k" in cache else k
    cache["v"] = tl.concatenate([cache["v"], v], axis=2) if "v" in cache else v
    w = F.softmax(q.reshape(batch, 1, 1, d) @ cache["k"].swapaxes(-1, -2) / math.sqrt(d), axis=-1)
    return F.linear((w @ cache["v"]).reshape(batch, 1, d), p["c_proj.weight"], p["c_proj.bias"])
'''


def cheats(private_file: Path, marker: str):
    """{name: (task, code added to the student's release of the assignment that holds the task
    (a3 for most), reason in the hint)}."""
    private = str(private_file)
    return {
        "results_file": ("softmax", '''
import json, os
for name in ("results.jsonl", "../results.jsonl", os.path.expanduser("~/results.jsonl")):
    try:
        with open(name, "a") as f:
            for task in ("softmax", "cross_entropy", "layer_norm"):
                f.write(json.dumps({"event": "done", "task": task, "passed": True, "hint": "", "seconds": 0.0}) + "\\n")
    except OSError:
        pass
os._exit(0)
''', "died"),
        "spec_file": ("softmax", RUN_TEACHERS_FILE + '''
import glob, json, os, sys
places = [os.getcwd(), os.path.dirname(os.getcwd()), os.environ.get("HOME", ""), os.environ.get("TMPDIR", "")]
candidates = [p for place in places for p in glob.glob(os.path.join(place, "*"))]
candidates += sys.argv + list(os.environ.values())
for path in candidates:
    try:
        if path.endswith(".json"):
            candidates += [v for v in json.load(open(path)).values() if isinstance(v, str)]
        elif _run_teachers_file(path):
            break
    except (OSError, ValueError, AttributeError):
        pass
''', "NotImplementedError"),
        "proc_of_parents": ("softmax", RUN_TEACHERS_FILE + '''
import glob, json, os
def parent(pid):
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
pid, found = os.getpid(), []
for step in range(5):
    try:
        pid = parent(pid) if step else pid
        words = open(f"/proc/{pid}/cmdline", "rb").read().decode().split("\\0")
        words += open(f"/proc/{pid}/environ", "rb").read().decode().replace("=", "\\0").split("\\0")
        cwd = os.readlink(f"/proc/{pid}/cwd")
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                words.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                pass
    except OSError:
        continue
    for word in list(words):
        if word.endswith(".json") and os.path.isfile(word):
            words += [v for v in json.load(open(word)).values() if isinstance(v, str)]
    for word in words:
        for base in (word, os.path.join(cwd, word)):
            for path in [base] + glob.glob(os.path.join(base, "*.py")):
                try:
                    if _run_teachers_file(path):
                        found.append(path)
                except (OSError, ValueError):
                    pass
''', "NotImplementedError"),
        "disk_search": ("softmax", RUN_TEACHERS_FILE + f'''
import os
def search():
    for top in ("/tmp", {str(private_file.parent.parent)!r}):
        for folder, _, files in os.walk(top):
            for name in files:
                try:
                    if name.endswith(".py") and _run_teachers_file(os.path.join(folder, name)):
                        return
                except Exception:
                    pass
search()
''', "NotImplementedError"),
        "rewrite_task_file": ("softmax", f'''
import re
path = {private!r}
try:
    text = open(path).read()
    open(path, "w").write(re.sub(r"(# %% tests[^\\n]*\\n).*?(?=# %%|\\Z)", lambda m: m.group(1) + "pass\\n",
                                 text, flags=re.S))
except OSError:
    pass
''', "NotImplementedError"),
        "setup_cell_edited": ("softmax", None, "is wrong at index"),
        "test_helpers_rebound": ("softmax", TRIVIAL_SOFTMAX + '''
def assert_close(*args, **kwargs):
    pass

import tinyllm.gradcheck
import tinyllm.assignments.checks as checks
tl.gradcheck = tinyllm.gradcheck.gradcheck = lambda *args, **kwargs: True
checks.assert_close = assert_close
''', "is wrong at index"),
        "numpy_patched": ("softmax", TRIVIAL_SOFTMAX + '''
np.isclose = lambda a, b, **k: np.ones(np.broadcast(np.asarray(a), np.asarray(b)).shape, bool)
np.allclose = lambda *args, **kwargs: True
''', "is wrong at index"),
        "library_import": ("softmax", '''
from tinyllm.functional import Softmax
''', "refused"),
        "library_inside": ("softmax", '''
class Softmax(tl.Function):
    def forward(self, x):
        self.save(x)
        return F.softmax(tl.Tensor(x)).data

    def backward(self, g):
        (x,) = self.saved
        t = tl.Tensor(x, requires_grad=True)
        F.softmax(t).backward(g)
        return (t.grad,)
''', "refused"),
        "ops_import": ("matmul", '''
from tinyllm.ops import MatMul
''', "refused"),
        "fork": ("softmax", f'''
import ctypes, json, os, time
try:
    pid = os.fork()
except OSError:
    pid = -1
if pid == 0:  # the child: forge results, then outlive the task
    ctypes.CDLL(None).prctl(15, {marker.encode()!r}, 0, 0, 0)
    os.setsid()
    with open("results.jsonl", "a") as f:
        for task in ("softmax", "cross_entropy", "layer_norm"):
            f.write(json.dumps({{"event": "done", "task": task, "passed": True, "hint": "", "seconds": 0}}) + "\\n")
    time.sleep(60)
    os._exit(0)
time.sleep(1)
''', "NotImplementedError"),
        "fake_output": ("softmax", '''
import json, os, struct, sys
line = json.dumps({"op": "result", "event": "done", "task": "softmax", "status": "pass", "passed": True})
print(line)
print(line, file=sys.stderr)
body = json.dumps({"op": "reply", "id": "j1", "value": {"names": {}, "errors": [], "refusals": []}}).encode()
frame = struct.pack("!4sII", b"TLG1", len(body), 0) + body
for fd in range(64):
    try:
        os.write(fd, frame)
    except OSError:
        pass
''', None),
        "kill_the_judge": ("softmax", '''
import os, signal
for kill in (lambda: os.kill(os.getppid(), signal.SIGKILL), lambda: os.killpg(os.getpgid(os.getppid()), 9)):
    try:
        kill()
    except OSError:
        pass
''', None),
        **LIBRARY_CHEATS,
        "inplace_corrupts_the_reference": ("kv_cache", KV_CACHE_CORRUPTS_THE_REFERENCE, "is wrong at index"),
    }


def memorized_attention():
    """Task 4.1 answered from a table of the published tests' inputs (their fixed seeds)."""
    table = {}
    shapes = [((4, 3), (4, 3), (4, 2), (1, 2, 3)), ((2, 2, 5, 4), (2, 2, 5, 4), (2, 2, 5, 3), (4, 5, 6))]
    for q_shape, k_shape, v_shape, seeds in shapes:
        q, k, v = (random_tensor(*s, seed=seed) for s, seed in zip((q_shape, k_shape, v_shape), seeds))
        for causal in (False, True):
            key = hashlib.sha256(q.numpy().tobytes() + k.numpy().tobytes() + bytes([causal])).hexdigest()
            table[key] = F.scaled_dot_product_attention(q, k, v, is_causal=causal).numpy().tolist()
    q = random_tensor(3, 4, seed=7, low=-30, high=30)
    key = hashlib.sha256(q.numpy().tobytes() + q.numpy().tobytes() + bytes([False])).hexdigest()
    table[key] = F.scaled_dot_product_attention(q, q, q).numpy().tolist()
    return f'''
import hashlib
TABLE = {table!r}

class Attention(tl.Function):
    def forward(self, q, k, v, causal=False):
        key = hashlib.sha256(q.tobytes() + k.tobytes() + bytes([causal])).hexdigest()
        return np.array(TABLE[key]) if key in TABLE else np.zeros(q.shape[:-1] + v.shape[-1:])
'''


def write_cheats(folder: Path, private_file: Path, marker: str):
    """One folder per cheat, holding the student's file: {name: (file, task, reason)}."""
    written = {}
    for name, (task, code, reason) in cheats(private_file, marker).items():
        assignment = HOLDS[task]
        release = release_py(BUILTIN[assignment])
        if code is None:  # the locked setup cell itself, edited
            text = release.replace("from tinyllm.assignments.checks import assert_close, random_tensor",
                                   "from tinyllm.assignments.checks import assert_close, random_tensor\n"
                                   "assert_close = lambda *args, **kwargs: None\n"
                                   "tl.gradcheck = lambda *args, **kwargs: True")
            text += "\n# %%\n" + TRIVIAL_SOFTMAX
        else:
            text = release + "\n# %%\n" + textwrap.dedent(code)
        path = folder / name / f"{assignment}.py"
        path.parent.mkdir(parents=True)
        path.write_text(text, encoding="utf-8")
        written[name] = (path, task, reason)
    a4 = BUILTIN[A4]
    (folder / "memorized_answers").mkdir()
    path = folder / "memorized_answers" / f"{a4.name}.py"
    path.write_text(release_py(a4) + "\n# %%\n" + memorized_attention(), encoding="utf-8")
    written["memorized_answers"] = (path, "attention_forward", "is wrong at index")
    return written


def _processes_named(marker):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == marker:
                    found.append(int(entry))
            except OSError:
                pass
    return found


@pytest.fixture(scope="module")
def red_team(tmp_path_factory):
    """Every cheat graded on its task, side by side, against a teacher's private copy of a3."""
    root = tmp_path_factory.mktemp("redteam")
    (root / "mycourse").mkdir()
    for assignment in BUILTIN.values():
        shutil.copy(assignment.path, root / "mycourse")
    private = {a.name: a for a in load_assignments(root / "mycourse")}
    marker = f"tl-redteam-{os.getpid() % 10000}"
    files = write_cheats(root / "class", root / "mycourse" / f"{A3}.py", marker)
    isolation = []

    def grade(item):
        name, (file, task, _) = item
        (result,) = grader.grade_file(private[file.stem], file, timeout=20, tasks=[task], isolation=isolation)
        return name, result

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(pool.map(grade, files.items()))
    leftovers = _processes_named(marker)
    return root, private, files, results, isolation, leftovers


def _isolated_filesystem(isolation):
    return any(layer.startswith(("landlock", "nobody")) for layer in isolation)


@pytest.mark.parametrize("name", sorted(cheats(Path("/x/y/z.py"), "m")) + ["memorized_answers"])
def test_each_cheat_scores_zero_on_the_task_it_cheats(red_team, name):
    _, _, files, results, isolation, _ = red_team
    if name == "disk_search" and not _isolated_filesystem(isolation):
        pytest.skip("this system runs the worker as the teacher's user without landlock: a search of the "
                    "disk is not stopped here (see docs/TEACHERS.md)")
    result = results[name]
    assert result.earned == 0 and not result.passed, (name, result.status, result.hint)
    reason = files[name][2]
    if reason is not None:
        assert reason in result.hint, (name, result.hint)


def test_a_forked_process_does_not_outlive_its_task(red_team):
    *_, leftovers = red_team
    assert leftovers == []


def test_the_teachers_file_is_not_rewritten_and_later_students_are_graded_on_the_real_tests(red_team, tmp_path):
    root, private, _, _, isolation, _ = red_team
    path = root / "mycourse" / f"{A3}.py"
    if _isolated_filesystem(isolation):
        assert path.read_text(encoding="utf-8") == BUILTIN[A3].text
    # a student graded after the rewrite, with the starter code only: nothing passes
    (tmp_path / f"{A3}.py").write_text(release_py(BUILTIN[A3]), encoding="utf-8")
    later = grader.grade_file(private[A3], tmp_path / f"{A3}.py", timeout=20, tasks=["softmax"])
    assert [r.earned for r in later] == [0]


def test_task_files_are_read_only_while_grading_and_a_change_is_reported(tmp_path, monkeypatch):
    folder = tmp_path / "mycourse"
    folder.mkdir()
    shutil.copy(BUILTIN["a6_bpe"].path, folder)
    (assignment,) = load_assignments(folder)
    student = tmp_path / "class" / "s"
    student.mkdir(parents=True)
    (student / "a6_bpe.py").write_text(release_py(assignment), encoding="utf-8")
    (folder / "a6_bpe.py").write_text(assignment.text + "\n# changed\n", encoding="utf-8")  # as if rewritten
    warnings, modes = [], []
    grade_file = grader.grade_file

    def watching(*args, **kwargs):  # the task file's permissions while a file is graded
        modes.append((folder / "a6_bpe.py").stat().st_mode & 0o222)
        return grade_file(*args, **kwargs)

    monkeypatch.setattr(grader, "grade_file", watching)
    grader.grade_paths([tmp_path / "class"], [assignment], by_student=True, warn=warnings.append, timeout=20)
    assert any("changed while grading" in w and "a6_bpe.py" in w for w in warnings), warnings
    assert modes == [0] and (folder / "a6_bpe.py").stat().st_mode & 0o200  # read-only meanwhile, not after


def test_fresh_inputs_each_grading_run():
    """The same seed draws different inputs when graded, and the same ones on the student's machine."""
    from tinyllm.assignments import checks

    local = random_tensor(3, seed=1).numpy()
    try:
        checks.grading_salt = 12345
        graded = random_tensor(3, seed=1).numpy()
        checks.grading_salt = 54321
        other = random_tensor(3, seed=1).numpy()
    finally:
        checks.grading_salt = None
    assert np.array_equal(local, random_tensor(3, seed=1).numpy())
    assert not np.array_equal(local, graded) and not np.array_equal(graded, other)


def test_the_worker_is_confined_where_the_system_allows(red_team):
    *_, isolation, _ = red_team
    assert "limits" in isolation
    status = Path("/proc/self/status").read_text() if Path("/proc/self/status").exists() else ""
    if os.uname().machine in ("x86_64", "aarch64") and "Seccomp:" in status:  # a Linux kernel with seccomp
        assert "seccomp" in isolation, isolation


if __name__ == "__main__":  # write the cheats to a folder, to grade them with any version of the grader
    import sys

    out = Path(sys.argv[1])
    (out / "mycourse").mkdir(parents=True)
    for assignment in BUILTIN.values():
        shutil.copy(assignment.path, out / "mycourse")
    for cheat, (file, task, _) in write_cheats(out / "class", out / "mycourse" / f"{A3}.py", "tl-marker").items():
        print(cheat, task, file)
