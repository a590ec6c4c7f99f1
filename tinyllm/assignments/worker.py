"""The grader's worker process: one student's file, one assignment's tests, task by task.

The grader (:mod:`tinyllm.assignments.grader`) starts it as::

    python -m tinyllm.assignments.worker SPEC.json

with SPEC ``{"source": teacher's file, "submission": student's file, "tasks": [ids],
"results": path, "timeout": seconds, "visible_only": bool}``. For each task it

1. makes a fresh module and runs the student's code cells in it (the solution cells and any
   code the student added; never the teacher's solutions), statement by statement, so one
   broken statement does not hide the rest of the file;
2. runs the teacher's tests cell for the task (hidden tests included) in that module;
3. appends ``{"event": "done", "task", "passed", "hint", "seconds"}`` to the results file.

A ``{"event": "start"}`` line before each task tells the grader which task was running if
this process dies (a crash, ``os._exit``) or hangs where the time limit cannot reach (inside
a long C call); the grader then restarts a worker for the remaining tasks. The time limit
itself is a SIGALRM that raises inside the student's code, where signals exist.
"""
from __future__ import annotations

import ast
import json
import os
import signal
import sys
import time
import traceback
import types
from contextlib import contextmanager
from pathlib import Path

from .source import load_assignment, parse_py, release_code

MODULE_NAME = "submission"


class TaskTimeout(BaseException):
    """Raised by the alarm; a BaseException so that ``except Exception`` in student code
    does not swallow it."""


@contextmanager
def time_limit(seconds):
    if not hasattr(signal, "setitimer") or not seconds:
        yield  # no SIGALRM (Windows): the grader's watchdog still kills a hung process
        return

    def on_alarm(signum, frame):
        raise TaskTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def student_cells(path: Path):
    """(filename for tracebacks, cell) for each code cell of the student's file that the
    grader runs: everything except markdown and the student's copy of the tests."""
    if path.suffix == ".ipynb":
        from .notebook import cells_from_notebook, read_notebook

        cells = cells_from_notebook(read_notebook(path))
        return [(f"{path} (cell {c.metadata['cell_index'] + 1})", c) for c in cells
                if c.kind in ("code", "solution")]
    text = path.read_text(encoding="utf-8", errors="replace")
    cells = parse_py(text, str(path), strict=False)
    return [(str(path), c) for c in cells if c.kind in ("code", "solution")]


def _padded(cell):
    return "\n" * (cell.line - 1) + cell.source  # so line numbers are the file's


def run_student_code(cells, namespace, load_errors):
    """Run each top-level statement on its own; record what fails and carry on."""
    for filename, cell in cells:
        try:
            tree = ast.parse(_padded(cell), filename)
        except SyntaxError as exc:
            load_errors.append(f"SyntaxError at {_short(filename)} line {exc.lineno}: {exc.msg}")
            continue
        for statement in tree.body:
            code = compile(ast.Module([statement], type_ignores=[]), filename, "exec")
            try:
                exec(code, namespace)
            except (Exception, SystemExit) as exc:
                load_errors.append(f"{type(exc).__name__} at {_short(filename)} line {statement.lineno}: "
                                   f"{_one_line(exc)}")


def _short(filename):
    """``/long/path/a2.py`` → ``a2.py``; notebooks keep their ``(cell N)``."""
    path, sep, rest = filename.partition(" (cell")
    return Path(path).name + sep + rest


def _one_line(exc):
    text = " ".join(str(exc).split())
    return text if len(text) <= 400 else text[:400] + "…"


def describe_failure(exc, submission_files, tests_file):
    """The hint: the exception's message, where in the student's code it happened."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if f.filename in submission_files]
    where = ""
    if mine:
        frame = mine[-1]
        where = f"{_short(frame.filename)} line {frame.lineno}"
        if frame.name != "<module>":
            where += f", in {frame.name}"
    if isinstance(exc, NotImplementedError):
        return f"not done yet: NotImplementedError ({where})" if where else "not done yet: NotImplementedError"
    message = _one_line(exc)
    if isinstance(exc, AssertionError):  # GradcheckError is one: its message is the hint
        if not message:
            tests = [f for f in frames if f.filename == tests_file]
            message = f"failed: {tests[-1].line}" if tests else "a test failed"
        hint = message
    elif isinstance(exc, SystemExit):
        hint = f"the code called exit({exc.code!r})"
    else:
        hint = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return f"{hint} ({where})" if where else hint


def run_task(task, cells, tests_source, tests_file, timeout):
    """Grade one task in a fresh module; returns (passed, hint)."""
    module = types.ModuleType(MODULE_NAME)
    module.__file__ = cells[0][0] if cells else MODULE_NAME
    sys.modules[MODULE_NAME] = module  # dataclasses and pickle look classes up here
    files = {name for name, _ in cells}
    load_errors = []
    _reseed()
    try:
        with time_limit(timeout):
            run_student_code(cells, module.__dict__, load_errors)
            code = compile("\n" * (task.tests.line - 1) + tests_source, tests_file, "exec")
            exec(code, module.__dict__)
    except TaskTimeout:
        return False, f"timed out after {timeout:g} s (an endless loop?)"
    except (Exception, SystemExit) as exc:
        hint = describe_failure(exc, files, tests_file)
        if load_errors:
            hint += f"; your file did not load cleanly: {load_errors[0]}"
        return False, hint
    finally:
        sys.modules.pop(MODULE_NAME, None)
    return True, ""


def _reseed():
    import numpy as np

    import tinyllm as tl

    np.random.seed(0)
    tl.manual_seed(0)


def starter_load_errors(path) -> list:
    """Run a (released) file's code cells here, in this process, and return what failed:
    an empty list means the starter code loads. For the teacher's own files only."""
    errors = []
    module = types.ModuleType(MODULE_NAME)
    sys.modules[MODULE_NAME] = module
    try:
        run_student_code(student_cells(Path(path)), module.__dict__, errors)
    finally:
        sys.modules.pop(MODULE_NAME, None)
    return errors


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    assignment = load_assignment(spec["source"])
    submission = Path(spec["submission"])
    with open(spec["results"], "a", encoding="utf-8") as results:
        def report(**event):
            results.write(json.dumps(event) + "\n")
            results.flush()

        try:
            cells = student_cells(submission)
        except Exception as exc:  # an unreadable file: every task fails with the reason
            for task_id in spec["tasks"]:
                report(event="done", task=task_id, passed=False, seconds=0.0,
                       hint=f"could not read the submission: {type(exc).__name__}: {_one_line(exc)}")
            return 0
        for task_id in spec["tasks"]:
            task = assignment.task(task_id)
            tests = task.tests.source
            if spec.get("visible_only"):
                tests = release_code(tests)
            report(event="start", task=task_id)
            start = time.perf_counter()
            passed, hint = run_task(task, cells, tests, str(assignment.path), spec["timeout"])
            report(event="done", task=task_id, passed=passed, hint=hint,
                   seconds=round(time.perf_counter() - start, 3))
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # do not wait for threads the student's code may have left running

