"""The judge: the trusted process that grades one student's file, task by task.

The grader (:mod:`~tinyllm.assignments.grader`) starts it as
``python -m tinyllm.assignments.judge FD`` and sends it, over that socket, the teacher's
assignment (its text, not its path), the student's file (its text), the tasks and the
limits. For each task the judge

1. starts a worker (:mod:`~tinyllm.assignments.worker`) in a fresh empty folder and sends it
   the code a student may see: the teacher's setup cells (restored, as nbgrader restores
   locked cells) and the student's own cells (not their copy of the tests);
2. runs the teacher's setup cells and tests cell here, hidden tests included, in a fresh
   namespace where each name the student had to write is a stand-in that calls the worker
   (:mod:`~tinyllm.assignments.protocol`): the tests' inputs are drawn here, with fresh
   seeds (``random_tensor``), and the references, assertions and gradient checks run here,
   in a process that never loaded the student's code;
3. reports pass / fail / timeout / crash with a hint, kills the worker's whole process
   group and any process that escaped it, and removes its folder.

The judge cannot be reached by the worker's code: it is not dumpable (its memory, files and
environment are closed to ``/proc`` and ptrace), the worker is confined
(:mod:`~tinyllm.assignments.sandbox`), and the only thing a worker can send is values.
"""
from __future__ import annotations

import ast
import json
import linecache
import os
import secrets
import shutil
import signal
import site
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types
from pathlib import Path

from . import protocol, sandbox
from .source import Assignment, inplace_arguments, parse_py, release_code, validate

__all__ = ["read_cells", "student_program", "graded_names", "worker_environment"]

STARTUP_SECONDS = 30.0  # for a worker to import NumPy and tinyllm on a busy machine
GRACE_SECONDS = 5.0  # past the task's time, before a worker that ignores its alarm is killed


# ----------------------------------------------------------------------------- what the worker runs
def read_cells(name, text):
    """``[(file name for messages, Cell)]`` of a student's ``.py`` or ``.ipynb`` file."""
    if name.endswith(".ipynb"):
        from .notebook import cells_from_notebook

        nb = json.loads(text)
        if not isinstance(nb, dict) or nb.get("nbformat", 0) < 4:
            raise ValueError(f"{name} is not a version-4 Jupyter notebook (save it again from Jupyter)")
        return [(f"{name} (cell {c.metadata['cell_index'] + 1})", c) for c in cells_from_notebook(nb)]
    return [(name, c) for c in parse_py(text, name, strict=False)]


def student_program(assignment, name, text):
    """The code segments a worker runs: the teacher's setup cells, then the student's code
    and solution cells, except their copies of the setup cells (a cell identical to one, or
    a notebook cell carrying a setup cell's nbgrader id)."""
    setup = [c for c in assignment.cells if c.kind == "code"]
    program = [{"file": f"{assignment.name}.py (setup)", "line": c.line, "source": c.source, "student": False}
               for c in setup]
    copies = {c.source.strip() for c in setup}
    locked = {f"{assignment.name}-code-{i}" for i, c in enumerate(assignment.cells) if c.kind == "code"}
    for file, cell in read_cells(name, text):
        if cell.kind not in ("code", "solution"):
            continue
        if cell.kind == "code" and (cell.source.strip() in copies or cell.metadata.get("grade_id") in locked):
            continue
        program.append({"file": file, "line": cell.line, "source": cell.source, "student": True})
    return program


def graded_names(assignment) -> list:
    """The names the teacher's solution cells define at the top level: what the student
    writes, and what the tests call."""
    names = []
    for cell in assignment.cells:
        if cell.kind != "solution":
            continue
        for node in ast.parse(cell.source).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names += [t.id for t in targets if isinstance(t, ast.Name)]
    return list(dict.fromkeys(names))


def grades_a_function_class(assignment, task) -> bool:
    """Whether the task's tests use a class the solution cells define (a ``tl.Function``:
    forward and backward on arrays): the worker then blocks the library's numerical code."""
    classes = {node.name for cell in assignment.cells if cell.kind == "solution"
               for node in ast.parse(cell.source).body if isinstance(node, ast.ClassDef)}
    used = {node.id for node in ast.walk(ast.parse(task.tests.source)) if isinstance(node, ast.Name)}
    return bool(classes & used)


def worker_environment(folder) -> dict:
    """A minimal environment: nothing of the teacher's (paths, variables) reaches the worker."""
    import tinyllm

    root = str(Path(tinyllm.__file__).resolve().parent.parent)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(folder), "TMPDIR": str(folder), "LANG": "C.UTF-8",
           "PYTHONPATH": root, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
           "MPLBACKEND": "Agg", "MALLOC_ARENA_MAX": "2"}
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):  # NumPy may be there (pip --user)
        env["PYTHONUSERBASE"] = site.getuserbase()
    return env


# ----------------------------------------------------------------------------- one task
class _OutputTail:
    """Reads a worker's stdout and stderr in a thread and keeps only the end: a student's
    print in an endless loop must not fill the memory."""

    def __init__(self, stream, keep=4096):
        self.tail, self.keep, self.stream = b"", keep, stream
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for chunk in iter(lambda: stream.read1(65536), b""):
            self.tail = (self.tail + chunk)[-self.keep:]

    def close(self):
        self.thread.join(timeout=1.0)
        self.stream.close()

    def last_line(self) -> str:
        self.thread.join(timeout=1.0)
        lines = [line for line in self.tail.decode("utf-8", errors="replace").splitlines() if line.strip()]
        if not lines:
            return ""
        last = lines[-1].strip()
        return last if len(last) <= 200 else "…" + last[-199:]


class Workers:
    """Starts the worker of each task and ends it. On Linux, a fork server (started once per
    file, in the first task's folder's parent) forks each worker after importing NumPy and
    tinyllm once; elsewhere each worker is a new process."""

    def __init__(self, base):
        self.base, self.server, self.control, self.spawned = base, None, None, {}

    def start(self, folder, deadline):
        """``(our end of the task's channel, pid, its output stream)``."""
        ours, theirs = socket.socketpair()
        try:
            if not sandbox.LINUX:
                proc = subprocess.Popen([sys.executable, "-m", "tinyllm.assignments.worker", str(theirs.fileno())],
                                        cwd=folder, env=worker_environment(folder), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        pass_fds=(theirs.fileno(),), start_new_session=True)
                self.spawned[proc.pid] = proc
                return ours, proc.pid, proc.stdout
            if self.server is None or self.server.poll() is not None:
                self._start_server()
            read, write = os.pipe()
            try:
                answer = self._ask({"folder": str(folder)}, deadline, [theirs.fileno(), write])
            finally:
                os.close(write)
            return ours, int(answer["pid"]), os.fdopen(read, "rb")
        finally:
            theirs.close()

    def _ask(self, message, deadline, fds=()):
        """One request to the fork server and its answer (one datagram each)."""
        socket.send_fds(self.control, [json.dumps(message).encode()], list(fds))
        self.control.settimeout(max(0.01, deadline - time.monotonic()))
        answer = self.control.recv(1 << 16)
        if not answer:
            raise protocol.ChannelClosed("the worker server stopped")
        return json.loads(answer)

    def _start_server(self):
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.server = subprocess.Popen(
            [sys.executable, "-m", "tinyllm.assignments.worker", "--fork-server", str(theirs.fileno())],
            cwd=self.base, env=worker_environment(self.base), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(theirs.fileno(),))
        theirs.close()

    def stop(self, pid, deadline):
        """Kill the worker's whole process group and reap it: its exit code (negative: the
        signal that ended it), or None."""
        try:
            os.killpg(pid, signal.SIGKILL)  # the worker leads its own session
        except (ProcessLookupError, PermissionError):
            pass
        if pid in self.spawned:
            return self.spawned.pop(pid).wait()
        try:
            return self._ask({"wait": pid}, deadline).get("code")
        except (protocol.ProtocolError, OSError, ValueError):
            return None

    def close(self):
        if self.server is not None:
            self.control.close()
            self.server.kill()
            self.server.wait()


class Outcome(Exception):
    def __init__(self, status, hint):
        super().__init__(hint)
        self.status, self.hint = status, hint


class TaskRun:
    """One task: a worker, a namespace, the tests."""

    def __init__(self, assignment, task, program, job, workers):
        self.assignment, self.task, self.program, self.job = assignment, task, program, job
        self.workers, self.timeout = workers, float(job["timeout"])
        self.loading, self.loaded, self.isolation, self.errors, self.refusals = None, False, None, [], []
        self.pid, self.exit_code = None, None

    def run(self):
        start = time.monotonic()
        deadline = start + self.timeout + STARTUP_SECONDS
        folder = Path(tempfile.mkdtemp(prefix="task-", dir=self.workers.base))
        sock = output = None
        try:
            sock, self.pid, stream = self.workers.start(folder, deadline)
            output = _OutputTail(stream)
            status, hint = self._grade(sock, deadline, output)
        except Outcome as outcome:
            status, hint = outcome.status, outcome.hint
        except (protocol.ProtocolError, protocol.Deadline, OSError) as exc:
            status, hint = "crash", f"the grader could not start a process for your code ({exc})"
        finally:
            if sock is not None:
                sock.close()
            if self.pid is not None:
                self._end_worker(deadline)
            if output is not None:
                output.close()
            sandbox.kill_children(keep=self.workers.server)
            shutil.rmtree(folder, ignore_errors=True)
        return status, hint, round(time.monotonic() - start, 3)

    def _end_worker(self, deadline):
        if self.pid is not None:
            self.exit_code = self.workers.stop(self.pid, max(deadline, time.monotonic() + 5))
            self.pid = None

    def _grade(self, sock, deadline, output):
        self.peer = peer = protocol.Peer(sock, "j", deadline=deadline, on_note=self._note)
        forbid = self.task.tests.metadata.get("forbid", "").split()
        protocol.send(sock, {"op": "setup", "timeout": self.timeout, "memory": self.job["memory"], "forbid": forbid,
                             "arrays": grades_a_function_class(self.assignment, self.task)})
        try:
            loaded = peer.request("load", None, [self.program, graded_names(self.assignment)])
            self.loaded = True
            lists = [loaded.get(key) for key in ("refusals", "errors")] if isinstance(loaded, dict) else [None]
            if not (isinstance(loaded.get("names"), dict) and all(isinstance(x, list) for x in lists)):
                raise protocol.ProtocolError("a malformed answer to 'load'")
            self.errors = [str(e) for e in lists[0] + lists[1]]
            namespace = self._namespace(peer, loaded["names"])
            tests = self.task.tests.source
            if self.job.get("visible_only"):
                tests = release_code(tests)
            _exec(tests, self.task.tests.line, self.tests_file, namespace)
        except (protocol.Deadline, protocol.ChannelClosed, protocol.ProtocolError) as exc:
            raise self._lost_worker(exc, output) from None
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the teacher's tests fail in every way a test can
            if isinstance(exc, protocol.RemoteError) and exc.remote_type == "TaskTimeout":
                raise Outcome("timeout", self._timeout_hint(exc.where)) from None
            hint = self.hint(exc)
            if self.refusals and not hint.startswith("refused"):  # the student's code caught the refusal
                hint = f"refused: {self.refusals[0]} (then {hint})"
            if self.errors and not hint.startswith("refused"):
                hint += f"; your file did not load cleanly: {self.errors[0]}"
            raise Outcome("fail", hint) from None
        return "pass", ""

    @property
    def tests_file(self):
        return f"{self.assignment.name}.py"

    def _note(self, header):
        if isinstance(header.get("refused"), str) and len(self.refusals) < 10:
            self.refusals.append(header["refused"][:300])
        loading = header.get("loading")
        if isinstance(loading, list) and len(loading) == 2:
            self.loading = [str(loading[0])[:200], loading[1] if isinstance(loading[1], int) else "?"]
        if isinstance(header.get("isolation"), list) and self.isolation is None:  # sent before the student's code ran
            self.isolation = [str(x)[:60] for x in header["isolation"]]
            self.peer.deadline = time.monotonic() + self.timeout + GRACE_SECONDS  # the worker is up: its time runs

    def _namespace(self, peer, names):
        """The tests' namespace: stand-ins for the graded names, then the setup cells."""
        namespace = types.ModuleType("tests").__dict__
        stand_ins = {}
        for name, info in names.items():
            kind = info.get("kind") if isinstance(info, dict) else None
            if kind in ("function", "function_class", "value"):
                stand_ins[name] = info.get("value")
            elif kind == "refused":
                stand_ins[name] = _Refused(name, str(info.get("reason", "")))
        inplace = inplace_arguments(self.assignment.cells, self.task.tests)
        peer.inplace = {vars(v)["_remote"][1]: inplace[n] for n, v in stand_ins.items()
                        if n in inplace and callable(v) and "_remote" in vars(v)}
        namespace.update(stand_ins)
        sent = {}

        def bindings():  # the names a test rebound (a reference helper): the worker uses them too
            changed = {}
            for name, original in stand_ins.items():
                current = namespace.get(name, original)
                state = None if current is original else current
                if sent.get(name) is not state:
                    changed[name] = sent[name] = state
            return changed

        peer.bindings = bindings
        _reseed(self.job["salt"])
        for cell in self.assignment.cells:
            if cell.kind == "code":
                _exec(cell.source, cell.line, self.tests_file, namespace)
        return namespace

    def _lost_worker(self, exc, output):
        if isinstance(exc, protocol.Deadline):
            return Outcome("timeout", self._timeout_hint(""))
        self._end_worker(time.monotonic() + 5)  # the channel is closed: it died, or it sent garbage
        code = self.exit_code
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            how = f"killed by {name}" + (" (the CPU time limit)" if -code == signal.SIGXCPU else "")
        else:
            how = f"exit code {code}"
        if isinstance(exc, protocol.ChannelClosed):
            message = f"the process running your code died ({how})"
        else:
            message = f"the process running your code sent the grader something it cannot read ({exc})"
        tail = output.last_line()
        if not self.loaded and self.loading:
            message += f" while loading your file, at {self.loading[0]} line {self.loading[1]}"
        return Outcome("crash", message + (f": {tail}" if tail else ""))

    def _timeout_hint(self, where):
        hint = f"timed out after {self.timeout:g} s"
        if not self.loaded and self.loading:
            return f"{hint} while loading your file: the statement at {self.loading[0]} line {self.loading[1]} " \
                   f"did not finish (a loop at the top level?)"
        return f"{hint} at {where} (an endless loop?)" if where else hint + " (an endless loop?)"

    def hint(self, exc) -> str:
        """The student's hint: the failure's message, and where in their code it happened."""
        if isinstance(exc, protocol.LibrarySolutionRefused) or getattr(exc, "remote_type", "") == \
                "LibrarySolutionRefused":
            return f"refused: {_one_line(exc)}"
        where = f" ({exc.where})" if isinstance(exc, protocol.RemoteError) and exc.where else ""
        kind = exc.remote_type if isinstance(exc, protocol.RemoteError) else type(exc).__name__
        message = _one_line(exc)
        if kind == "NotImplementedError":
            return f"not done yet: NotImplementedError{where}"
        if kind == "SystemExit":
            return f"the code called {message}{where}"
        if isinstance(exc, AssertionError) and not isinstance(exc, protocol.RemoteError):
            if not message:  # a bare assert: show its line
                lines = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == self.tests_file]
                message = f"failed: {lines[-1].line}" if lines and lines[-1].line else "a test failed"
            return message
        return (f"{kind}: {message}" if message else kind) + where


class _Refused:
    """Stand-in for a graded name the worker refused (it was the library's own code)."""

    def __init__(self, name, reason):
        self._message = f"{name}: {reason}"

    def __call__(self, *args, **kwargs):
        raise protocol.LibrarySolutionRefused(self._message)

    def __getattr__(self, attribute):
        raise protocol.LibrarySolutionRefused(object.__getattribute__(self, "_message"))


def _exec(source, line, filename, namespace):
    exec(compile("\n" * (line - 1) + source, filename, "exec"), namespace)


def _reseed(salt):
    import numpy as np

    import tinyllm as tl
    from . import checks

    np.random.seed(0)
    tl.manual_seed(0)
    checks.grading_salt = salt


def _one_line(exc) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 400 else text[:400] + "…"


# ----------------------------------------------------------------------------- main
def grade(job, report):
    """Grade the job's tasks; ``report(message)`` for each result."""
    text = job["assignment"]["text"]
    name = job["assignment"]["name"]
    cells = parse_py(text, f"{name}.py")
    validate(cells, f"{name}.py")
    assignment = Assignment(name, Path(f"{name}.py"), cells, text)
    submission = job["submission"]
    try:
        program = student_program(assignment, submission["name"], submission["text"])
    except Exception as exc:  # an unreadable file: every task fails with the reason
        for task_id in job["tasks"]:
            report({"op": "result", "task": task_id, "status": "fail", "seconds": 0.0,
                    "hint": f"could not read the submission: {type(exc).__name__}: {_one_line(exc)}"})
        return
    linecache.cache[f"{name}.py"] = (len(text), None, text.splitlines(True), f"{name}.py")  # the tests' lines
    with tempfile.TemporaryDirectory(prefix="tinyllm-grade-") as base:
        os.chmod(base, 0o711)  # a worker that became nobody reaches its own folder, lists none
        workers = Workers(base)
        try:
            for task_id in job["tasks"]:
                run = TaskRun(assignment, assignment.task(task_id), program, job, workers)
                status, hint, seconds = run.run()
                report({"op": "result", "task": task_id, "status": status, "hint": hint, "seconds": seconds,
                        "isolation": run.isolation})
        finally:
            workers.close()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sandbox.set_dumpable(False)
    sandbox.become_subreaper()
    sock = socket.socket(fileno=int(argv[0]))
    job, _ = protocol.receive(sock)
    job.setdefault("salt", secrets.randbits(64))
    grade(job, lambda message: protocol.send(sock, message))
    protocol.send(sock, {"op": "done"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
