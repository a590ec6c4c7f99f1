"""The grader's worker: one student's code, one task, in a confined process.

The judge (:mod:`~tinyllm.assignments.judge`) starts it in an empty temporary folder, with
a minimal environment: on Linux forked from a fork server (``python -m
tinyllm.assignments.worker --fork-server FD``, :func:`serve_forks`) that imported NumPy and
tinyllm once for the file, elsewhere as ``python -m tinyllm.assignments.worker FD`` (FD: its
end of the channel). The worker

1. reads its limits (seconds, memory, what of the library the task forbids), imports NumPy
   and tinyllm, then confines itself (:func:`~tinyllm.assignments.sandbox.confine`) before
   it sees a line of the student's code;
2. on the judge's ``load``: runs the code it is sent (the teacher's setup cells, then the
   student's cells) in a fresh module, statement by statement (a broken statement does not
   hide the rest of the file; each one is announced, so a loop at the top level is reported
   with its line), and answers with what each graded name is;
3. then answers the judge's calls with values (:mod:`~tinyllm.assignments.protocol`) until
   the judge closes the channel.

It never sees the teacher's file, its path, or the tests, and nothing it sends can pass a
task: the judge decides. Inside a graded task, the library's own solutions are blocked
(:class:`Guard`) and the refusal is reported: what the task lists in ``forbid`` and, for a
task that grades a ``tl.Function`` class (forward and backward on arrays, by hand), the
library's numerical code; importing ``tinyllm.ops``, ``tinyllm.assignments`` (its checks
excepted) or a forbidden module; a graded name that *is* a library object.
"""
from __future__ import annotations

import ast
import builtins
import gc
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
# What the library holds that solves a task whose graded name is a tl.Function class (forward
# and backward on arrays, by hand): its numerical code. The worker blocks it for that task.
ARRAY_TASK_BLOCKS = ("tinyllm.functional", "tinyllm.arguments", "tinyllm.ops", "tinyllm.kernels")


class Guard:
    """Refuses the library's solutions to the student's code, for the task's duration.

    Each library object that solves the task (the task's ``forbid`` list; for a task that
    grades a ``tl.Function`` class, also :data:`ARRAY_TASK_BLOCKS` and every library
    Function) is *blocked*: every Python function of it (a module's functions and classes'
    methods, a class's methods, a function and the functions nested in it) gets, in place,
    code that raises :class:`~tinyllm.assignments.protocol.LibrarySolutionRefused`. The
    original code is dropped. So whatever path the student's code takes to an object (a
    re-export, ``getattr`` with a computed name, ``importlib``, ``sys.modules``,
    ``__import__``, a function's ``__globals__``, a method copied into its own class), it
    reaches the blocked one; the library objects the task allows keep working.

    Importing ``tinyllm.ops``, ``tinyllm.assignments`` (its checks excepted) or a module the
    task forbids is refused outright, and a graded name that *is* a library object too."""

    def __init__(self, forbid, arrays=False):
        import tinyllm as tl

        from .protocol import LibrarySolutionRefused

        self.tl, self.refused_error = tl, LibrarySolutionRefused
        self.forbid, self.arrays = list(forbid), arrays
        self.forbidden_modules = set()
        self.refusals, self.on_refusal = [], None

    def refuse(self, message):
        if message not in self.refusals:
            self.refusals.append(message)
            if self.on_refusal is not None:
                self.on_refusal(message)
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

    def install(self):
        real_import, real_import_module = builtins.__import__, importlib.import_module
        guard = self

        def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
            if (globals or {}).get("__name__") != MODULE_NAME:
                return real_import(name, globals, locals, fromlist, level)
            guard.check_module(importlib.util.resolve_name("." * level + name, MODULE_NAME) if level else name)
            module = real_import(name, globals, locals, fromlist, level)
            for item in fromlist or ():
                value = getattr(module, item, None) if item != "*" else None
                if isinstance(value, types.ModuleType):
                    guard.check_module(value.__name__)
            return module

        def guarded_import_module(name, package=None):
            module = real_import_module(name, package)
            if sys._getframe(1).f_globals.get("__name__") == MODULE_NAME:
                guard.check_module(module.__name__)
            return module

        builtins.__import__, importlib.import_module = guarded_import, guarded_import_module
        self.block()

    # -- blocking
    def block(self):
        """Block what solves this task (see the class's docstring)."""
        targets = self.forbid + list(ARRAY_TASK_BLOCKS if self.arrays else ())
        files, codes = set(), set()
        for name in targets:
            try:
                value = _resolve(name)
            except (ImportError, AttributeError):
                continue
            if isinstance(value, types.ModuleType):
                if name in self.forbid:
                    self.forbidden_modules.add(value.__name__)
                files |= _module_files(value)
            else:
                codes |= _codes_of(value)
        if self.arrays:
            for cls in _library_functions(self.tl.Function):
                codes |= _codes_of(cls)
        for fn in gc.get_objects():
            if isinstance(fn, types.FunctionType):
                code = fn.__code__
                if code in codes or code.co_filename in files:
                    self._block_function(fn)

    def _block_function(self, fn):
        code = fn.__code__
        fn.__globals__["__tinyllm_refused__"] = self._refused
        name = f"{fn.__module__}.{fn.__qualname__}"  # a decorator's wrapper: the name of what it wraps
        fn.__code__ = _refusing_code(len(code.co_freevars)).replace(co_name=code.co_name, co_qualname=name)

    def _refused(self):
        name = sys._getframe(1).f_code.co_qualname
        self.refuse(f"{name} is refused in this task: it is the library's solution; write your own")

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


def _module_files(module):
    """The source files of a module, or of every module of a package (loaded or not)."""
    if hasattr(module, "__path__"):
        return {str(path) for folder in module.__path__ for path in Path(folder).rglob("*.py")}
    return {module.__file__} if getattr(module, "__file__", None) else set()


def _codes_of(value):
    """The code objects of a function (and those nested in it), or of a class's methods."""
    found, stack = set(), []
    if isinstance(value, type):
        for item in vars(value).values():
            if isinstance(item, (staticmethod, classmethod)):
                item = item.__func__
            if isinstance(item, property):
                stack += [f.__code__ for f in (item.fget, item.fset, item.fdel) if f is not None]
            elif isinstance(item, types.FunctionType):
                stack.append(item.__code__)
            elif isinstance(item, type) and item.__module__ == value.__module__:
                found |= _codes_of(item)
    elif isinstance(value, types.FunctionType):
        stack.append(value.__code__)
    while stack:
        code = stack.pop()
        if code not in found:
            found.add(code)
            stack += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    return found


def _library_functions(base):
    """Every tl.Function subclass the library defines (the grader's stand-ins excepted)."""
    seen, stack = set(), [base]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
    return [cls for cls in seen
            if cls.__module__.startswith("tinyllm") and not cls.__module__.startswith("tinyllm.assignments")]


_REFUSING = {}


def _refusing_code(free):
    """The code of a function that calls ``__tinyllm_refused__()`` from its globals, with
    ``free`` free variables (a function's new code must have as many as its old one)."""
    if free not in _REFUSING:
        names = [f"_v{i}" for i in range(free)]
        source = "def outer():\n" + "".join(f"    {v} = None\n" for v in names) + \
                 "    def refused(*args, **kwargs):\n" + \
                 (f"        lambda: ({', '.join(names)},)\n" if names else "") + \
                 "        __tinyllm_refused__()\n    return refused\n"
        namespace = {}
        exec(compile(source, "<refused>", "exec"), namespace)
        _REFUSING[free] = namespace["outer"]().__code__
    return _REFUSING[free]


# ----------------------------------------------------------------------------- the worker
class Worker:
    def __init__(self, sock, deadline, forbid, arrays=False):
        from .protocol import Peer

        self.module = types.ModuleType(MODULE_NAME)
        self.module.__file__ = MODULE_NAME + ".py"
        sys.modules[MODULE_NAME] = self.module  # dataclasses look classes up here
        self.deadline, self.student_files, self.originals = deadline, set(), {}
        self._alarms = 0
        self.guard = Guard(forbid, arrays)
        self.peer = Peer(sock, "w", handlers={"load": self.load, "bind": self.bind}, describe=self.describe,
                         call_guard=self.alarm)
        self.guard.on_refusal = lambda message: self.peer.note(refused=message)

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
    worker = Worker(sock, deadline, setup.get("forbid", []), bool(setup.get("arrays")))
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
