"""Red team: a student who wants points without the work. Each cheat is a small submission
graded on the one task it cheats; it must score 0 there, for the reason the test names.

The cheats: forging the grader's results (a results file, printed lines, frames written to
every open file descriptor), reading the grader's files (a spec file, the arguments and the
environment, ``/proc`` of the parents, a search of the disk), rewriting the teacher's task
file for the students graded after, neutering the checks (the locked setup cell, the test
helpers, NumPy), the library's own solutions (imported, or used inside forward/backward),
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
A2, A3, A4 = "a2_matmul_reductions", "a3_softmax_layernorm", "a4_attention"

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


def cheats(private_file: Path, marker: str):
    """{name: (task, code added to the student's release of a3 (a2 for a MatMul task), reason in
    the hint)}."""
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
        release = release_py(BUILTIN[A3 if task != "matmul" else A2])
        if code is None:  # the locked setup cell itself, edited
            text = release.replace("from tinyllm.assignments.checks import assert_close, random_tensor",
                                   "from tinyllm.assignments.checks import assert_close, random_tensor\n"
                                   "assert_close = lambda *args, **kwargs: None\n"
                                   "tl.gradcheck = lambda *args, **kwargs: True")
            text += "\n# %%\n" + TRIVIAL_SOFTMAX
        else:
            text = release + "\n# %%\n" + textwrap.dedent(code)
        path = folder / name / f"{A3 if task != 'matmul' else A2}.py"
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
    for name in (A2, A3, A4):
        shutil.copy(BUILTIN[name].path, root / "mycourse")
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
    for name in (A2, A3, A4):
        shutil.copy(BUILTIN[name].path, out / "mycourse")
    for cheat, (file, task, _) in write_cheats(out / "class", out / "mycourse" / f"{A3}.py", "tl-marker").items():
        print(cheat, task, file)
