"""The grader's worker: one student's code, one task, in a confined process.

The judge (:mod:`~tinyllm.assignments.judge`) starts it in an empty temporary folder, with
a minimal environment: on Linux forked from a fork server (``python -m
tinyllm.assignments.worker --fork-server FD``, :func:`serve_forks`) that imported NumPy and
tinyllm once for the file, elsewhere as ``python -m tinyllm.assignments.worker FD`` (FD: its
end of the channel). The worker

1. reads its limits (seconds, memory, the library objects the task forbids), imports NumPy
   and tinyllm, then confines itself (:func:`~tinyllm.assignments.sandbox.confine`) before
   it sees a line of the student's code;
2. on the judge's ``load``: runs the code it is sent (the teacher's setup cells, then the
   student's cells) in a fresh module, statement by statement (a broken statement does not
   hide the rest of the file; each one is announced, so a loop at the top level is reported
   with its line), and answers with what each graded name is;
3. then answers the judge's calls with values (:mod:`~tinyllm.assignments.protocol`) until
   the judge closes the channel.

It never sees the teacher's file, its path, or the tests, and nothing it sends can pass a
task: the judge decides. Inside a graded task, the library's own solutions are refused and
the refusal is reported: importing ``tinyllm.ops`` or ``tinyllm.assignments`` (its checks
excepted), anything the task lists in ``forbid``, a graded name that *is* a library object,
and any library ``Function`` running inside the student's ``forward`` or ``backward``
(which work on arrays, by hand).
"""
from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import json
import os
import signal
import socket
import sys
import time
import traceback
import types
from contextlib import contextmanager
from pathlib import Path

MODULE_NAME = "submission"


class TaskTimeout(BaseException):
    """Raised by the alarm; a BaseException so that ``except Exception`` in student code
    does not swallow it (the judge kills the process anyway when it does)."""


def _preload():
    """What student code imports, loaded before the confinement."""
    import math  # noqa: F401

    import numpy  # noqa: F401

    import tinyllm  # noqa: F401
    import tinyllm.assignments.checks  # noqa: F401
    import tinyllm.functional  # noqa: F401
    import tinyllm.models  # noqa: F401


# ----------------------------------------------------------------------------- refusals
class Guard:
    """Refuses the library's solutions to the student's code (and only to it)."""

    def __init__(self, forbid):
        import tinyllm as tl

        from .protocol import LibrarySolutionRefused

        self.tl, self.refused_error = tl, LibrarySolutionRefused
        self.forbidden, self.forbidden_modules = {}, set()  # id(object) -> dotted name; module names
        for name in forbid:
            try:
                value = _resolve(name)
            except (ImportError, AttributeError):
                continue
            if isinstance(value, types.ModuleType):
                self.forbidden_modules.add(value.__name__)
            else:
                self.forbidden[id(value)] = name
        self.active = []  # "Softmax.forward" while a student's Function method runs
        self.refusals = []
        self._views = {}

    def refuse(self, message):
        if message not in self.refusals:
            self.refusals.append(message)
        raise self.refused_error(message)

    # -- modules
    def check_module(self, name):
        if name == "tinyllm.ops" or name.startswith("tinyllm.ops."):
            self.refuse(f"importing {name} is refused: tinyllm.ops holds the library's solutions")
        if name.startswith("tinyllm.assignments") and name not in ("tinyllm.assignments",
                                                                    "tinyllm.assignments.checks"):
            self.refuse(f"importing {name} is refused: it holds the assignments' solutions")
        if any(name == m or name.startswith(m + ".") for m in self.forbidden_modules):
            self.refuse(f"importing {name} is refused in this task: it solves it")

    def check_object(self, owner, name, value):
        if isinstance(value, types.ModuleType):
            self.check_module(value.__name__)
        elif id(value) in self.forbidden:
            self.refuse(f"{owner}.{name} is refused in this task: it is the library's solution")

    def view(self, module):
        """The module as student code sees it: tinyllm's modules refuse what is forbidden."""
        if not module.__name__.startswith("tinyllm"):
            return module
        if module.__name__ not in self._views:
            self._views[module.__name__] = _ModuleView(module, self)
        return self._views[module.__name__]

    def install(self):
        real_import, real_import_module = builtins.__import__, importlib.import_module
        guard = self

        def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
            if (globals or {}).get("__name__") != MODULE_NAME:
                return real_import(name, globals, locals, fromlist, level)
            absolute = importlib.util.resolve_name("." * level + name, MODULE_NAME) if level else name
            if not fromlist:
                guard.check_module(absolute)
            module = real_import(name, globals, locals, fromlist, level)
            for item in fromlist or ():
                if item != "*" and hasattr(module, item):
                    guard.check_object(absolute, item, getattr(module, item))
            return guard.view(module)

        def guarded_import_module(name, package=None):
            module = real_import_module(name, package)
            if sys._getframe(1).f_globals.get("__name__") == MODULE_NAME:
                guard.check_module(module.__name__)
                return guard.view(module)
            return module

        builtins.__import__, importlib.import_module = guarded_import, guarded_import_module
        self._guard_library_functions()

    # -- Functions
    def _guard_library_functions(self):
        """Every library Function refuses to run inside a student's forward or backward."""
        seen, stack = set(), [self.tl.Function]
        while stack:
            cls = stack.pop()
            for sub in cls.__subclasses__():
                if sub not in seen:
                    seen.add(sub)
                    stack.append(sub)
        for cls in seen:
            if cls.__module__.startswith("tinyllm") and cls.__module__ != "tinyllm.assignments.protocol":
                for method in ("forward", "backward"):
                    if isinstance(cls.__dict__.get(method), types.FunctionType):
                        setattr(cls, method, self._library_method(cls, cls.__dict__[method]))

    def _library_method(self, cls, method):
        guard, where = self, f"{cls.__module__}.{cls.__qualname__}"

        def guarded(fn, *args, **kwargs):
            if guard.active:
                guard.refuse(f"{guard.active[-1]} uses the library's {where}: inside forward and backward, "
                             f"compute on the arrays yourself")
            return method(fn, *args, **kwargs)

        return guarded

    def student_method(self, cls, name, method):
        guard, label = self, f"{cls.__name__}.{name}"

        def tracked(fn, *args, **kwargs):
            guard.active.append(label)
            try:
                return method(fn, *args, **kwargs)
            finally:
                guard.active.pop()

        tracked.__wrapped__ = method
        return tracked

    def library_origin(self, value):
        """The library object a graded name is (or inherits from), or None."""
        if isinstance(value, type):
            for base in value.__mro__:
                if base not in (object, self.tl.Function) and base.__module__.startswith("tinyllm"):
                    return f"{base.__module__}.{base.__qualname__}"
            return None
        module = getattr(value, "__module__", None)
        if callable(value) and isinstance(module, str) and module.startswith("tinyllm"):
            return f"{module}.{getattr(value, '__qualname__', value)}"
        return None


class _ModuleView(types.ModuleType):
    """A tinyllm module seen through the guard: reading an attribute checks it (and wraps a
    submodule); writing one writes the real module."""

    def __init__(self, module, guard):
        super().__init__(module.__name__, module.__doc__)
        object.__setattr__(self, "_real", module)
        object.__setattr__(self, "_guard", guard)

    def __getattr__(self, name):
        real, guard = object.__getattribute__(self, "_real"), object.__getattribute__(self, "_guard")
        value = getattr(real, name)
        guard.check_object(real.__name__, name, value)
        return guard.view(value) if isinstance(value, types.ModuleType) else value

    def __setattr__(self, name, value):
        setattr(object.__getattribute__(self, "_real"), name, value)

    def __dir__(self):
        return dir(object.__getattribute__(self, "_real"))


def _resolve(dotted):
    """The object a dotted name names: a module, or an attribute of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            value = getattr(value, part)
        return value
    raise ImportError(dotted)


# ----------------------------------------------------------------------------- the worker
class Worker:
    def __init__(self, sock, deadline, forbid):
        from .protocol import Peer

        self.module = types.ModuleType(MODULE_NAME)
        self.module.__file__ = MODULE_NAME + ".py"
        sys.modules[MODULE_NAME] = self.module  # dataclasses look classes up here
        self.deadline, self.student_files, self.originals = deadline, set(), {}
        self._alarms = 0
        self.guard = Guard(forbid)
        self.peer = Peer(sock, "w", handlers={"load": self.load, "bind": self.bind}, describe=self.describe,
                         call_guard=self.alarm)

    @contextmanager
    def alarm(self):
        """Student code runs until the task's deadline, then meets :class:`TaskTimeout`
        (armed by the outermost call: a call nested in a callback keeps it)."""
        def on_alarm(signum, frame):
            raise TaskTimeout()

        if self._alarms == 0:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TaskTimeout()
            signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, remaining)
        self._alarms += 1
        try:
            yield
        finally:
            self._alarms -= 1
            if self._alarms == 0:
                signal.setitimer(signal.ITIMER_REAL, 0)

    def load(self, args, kwargs):
        """Run the program (``[{"file", "line", "source", "student"}, …]``) and describe each
        graded name: ``{name: {"kind", "value", "reason"}}``, with the load errors."""
        program, graded = args
        errors = []
        with self.alarm():
            for segment in program:
                if segment["student"]:
                    self.student_files.add(segment["file"])
                run_statements(segment, self.module.__dict__, errors, self.peer)
        self._track_student_functions()
        names = {}
        for name in graded:
            value = self.module.__dict__.get(name, _MISSING)
            self.originals[name] = value
            names[name] = self._describe_name(value)
        return {"names": names, "errors": errors, "refusals": list(self.guard.refusals)}

    def _describe_name(self, value):
        import tinyllm as tl

        if value is _MISSING:
            return {"kind": "missing"}
        origin = self.guard.library_origin(value)
        if origin is not None:
            return {"kind": "refused", "reason": f"this is {origin}, the library's own code: write your own"}
        if isinstance(value, type) and issubclass(value, tl.Function):
            return {"kind": "function_class", "value": value}
        if callable(value):
            return {"kind": "function", "value": value}
        return {"kind": "value", "value": value}

    def _track_student_functions(self):
        import tinyllm as tl

        for value in list(self.module.__dict__.values()):
            if isinstance(value, type) and issubclass(value, tl.Function) and value.__module__ == MODULE_NAME:
                for method in ("forward", "backward"):
                    found = value.__dict__.get(method)
                    if isinstance(found, types.FunctionType) and not hasattr(found, "__wrapped__"):
                        setattr(value, method, self.guard.student_method(value, method, found))

    def bind(self, args, kwargs):
        """The judge swapped in its own object for a graded name (a reference helper), or
        took it back (None)."""
        for name, value in args[0].items():
            if value is None:
                value = self.originals.get(name, _MISSING)
            if value is _MISSING:
                self.module.__dict__.pop(name, None)
            else:
                self.module.__dict__[name] = value

    def describe(self, exc):
        """What the judge hears of an exception: its type, message, and the last place in
        the student's code it went through."""
        where = ""
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename in self.student_files:
                where = f"{frame.filename} line {frame.lineno}"
                if frame.name != "<module>":
                    where += f", in {frame.name}"
                break
        message = f"exit({exc.code!r})" if isinstance(exc, SystemExit) else _one_line(exc)
        return {"type": type(exc).__name__, "message": message, "where": where}


_MISSING = object()


def _one_line(exc) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 400 else text[:400] + "…"


def run_statements(segment, namespace, errors, peer=None):
    """Run a code segment one top-level statement at a time; record what fails and go on."""
    filename = segment["file"]
    try:
        tree = ast.parse("\n" * (segment["line"] - 1) + segment["source"], filename)
    except SyntaxError as exc:
        errors.append(f"SyntaxError at {filename} line {exc.lineno}: {exc.msg}")
        return
    for statement in tree.body:
        if peer is not None and segment["student"]:
            peer.note(loading=[filename, statement.lineno])
        code = compile(ast.Module([statement], type_ignores=[]), filename, "exec")
        try:
            exec(code, namespace)
        except (Exception, SystemExit) as exc:
            errors.append(f"{type(exc).__name__} at {filename} line {statement.lineno}: {_one_line(exc)}")


def starter_load_errors(path) -> list:
    """Run a (released) file's code cells here, in this process, and return what failed:
    an empty list means the starter code loads. For the teacher's own files only."""
    from .judge import read_cells

    module = types.ModuleType(MODULE_NAME)
    sys.modules[MODULE_NAME] = module
    errors = []
    try:
        for file, cell in read_cells(Path(path).name, Path(path).read_text(encoding="utf-8")):
            if cell.kind in ("code", "solution"):
                run_statements({"file": file, "line": cell.line, "source": cell.source, "student": True},
                               module.__dict__, errors)
    finally:
        sys.modules.pop(MODULE_NAME, None)
    return errors


def run(sock) -> int:
    """Be the worker of one task, on the channel ``sock``, in the current folder."""
    from . import protocol, sandbox

    setup, _ = protocol.receive(sock)
    _preload()
    sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]
    applied = sandbox.confine(os.getcwd(), float(setup["timeout"]), int(setup["memory"]))
    deadline = time.monotonic() + float(setup["timeout"])
    worker = Worker(sock, deadline, setup.get("forbid", []))
    worker.guard.install()
    protocol.send(sock, {"op": "note", "isolation": applied})
    worker.peer.serve_forever()
    return 0


def serve_forks(control):
    """The fork server (Linux): imports NumPy and tinyllm once, then forks the worker of each
    task the judge asks for, ``{"folder"}`` with two descriptors (the task's channel, and
    where its output goes), and answers its pid; ``{"wait": pid}`` reaps one, answering its
    exit code (one datagram each way). It never runs a student's code itself, and its
    children, confined, cannot reach it."""
    import numpy as np

    import tinyllm as tl
    from . import sandbox

    _preload()
    sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]
    sandbox.set_dumpable(False)
    sandbox.die_with_parent()
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, 1 << 16, 2)
        except OSError:
            return 0
        if not data:
            return 0
        request = json.loads(data)
        if "wait" in request:
            _, status = os.waitpid(int(request["wait"]), 0)
            control.send(json.dumps({"code": os.waitstatus_to_exitcode(status)}).encode())
            continue
        channel, output = fds
        pid = os.fork()
        if pid == 0:  # the task's worker
            code = 1
            try:
                control.close()
                os.setsid()
                os.dup2(output, 1)
                os.dup2(output, 2)
                os.close(output)
                os.chdir(request["folder"])
                os.environ["HOME"] = os.environ["TMPDIR"] = request["folder"]
                np.random.seed(0)
                tl.manual_seed(0)
                code = run(socket.socket(fileno=channel))
            finally:
                os._exit(code)
        os.close(channel)
        os.close(output)
        control.send(json.dumps({"pid": pid}).encode())


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[0] == "--fork-server":
        return serve_forks(socket.socket(fileno=int(argv[1])))
    return run(socket.socket(fileno=int(argv[0])))


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # do not wait for threads the student's code may have left running
