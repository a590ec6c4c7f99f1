"""Grading: each task of each submitted file, decided by a process that never runs the
student's code.

    assignments = load_assignments()
    reports = grade_paths(["submitted/"], assignments, by_student=True)
    print(format_table(reports))
    json.dump(to_json(reports), open("grades.json", "w"))

A submission is a student's copy of an assignment, as ``.py`` or ``.ipynb``; which assignment
it is comes from its content (the notebook's metadata, or the task ids of its tests cells),
else from its file name. For each file, a judge process (:mod:`~tinyllm.assignments.judge`)
grades the tasks one by one: the student's code runs in a confined worker process per
task, which only receives inputs the judge draws and only returns values; the judge runs
the teacher's tests, hidden ones included, and decides. A task passes when its tests cell
runs through; it then earns all its points, otherwise none, and the first failure's
message (an assertion's text, or ``tl.gradcheck``'s "input, index, analytic, numeric") is
the hint.
"""
from __future__ import annotations

import csv
import io
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import protocol, sandbox
from .source import parse_py

__all__ = ["TaskResult", "StudentReport", "identify", "find_submissions", "grade_file", "grade_paths",
           "format_table", "format_summary", "to_json", "write_csv"]

SUFFIXES = (".py", ".ipynb")
MEMORY_MB = 4096  # address space of a worker, MiB
STARTUP_SECONDS = 60.0  # for a judge and its worker to start, on a busy machine


@dataclass
class TaskResult:
    """One task's grade. ``status``: pass, fail, timeout, crash or missing."""

    assignment: str
    task: str
    number: str
    title: str
    points: float
    earned: float
    status: str
    hint: str = ""
    seconds: float = 0.0
    file: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == "pass"


@dataclass
class StudentReport:
    """One student's results; ``notes`` say what the teacher should know (two files graded
    for one assignment, and which was kept). Of the grading run: ``isolation``, how the
    students' code was confined, and ``seed``, which drew the tests' inputs."""

    student: str
    results: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    isolation: list = field(default_factory=list)
    seed: int | None = None

    @property
    def earned(self) -> float:
        return sum(r.earned for r in self.results)

    @property
    def possible(self) -> float:
        return sum(r.points for r in self.results)


# ----------------------------------------------------------------------------- finding files
def _candidate_files(path: Path):
    if path.is_file():
        return [path] if path.suffix in SUFFIXES else []
    files = []
    for p in sorted(path.rglob("*")):
        parts = p.relative_to(path).parts
        if any(part.startswith((".", "__")) for part in parts):  # .git, .ipynb_checkpoints, __init__.py
            continue
        if p.is_file() and p.suffix in SUFFIXES:
            files.append(p)
    return files


def identify(path, assignments):
    """Which assignment a file is a copy of, or None. Looks at the content first (renamed
    files still count), then at the name; never runs the file."""
    path = Path(path)
    by_name = {a.name: a for a in assignments}
    task_ids = set()
    try:
        if path.suffix == ".ipynb":
            from .notebook import cells_from_notebook, read_notebook

            nb = read_notebook(path)
            named = nb.get("metadata", {}).get("tinyllm", {}).get("assignment")
            if named in by_name:
                return by_name[named]
            cells = cells_from_notebook(nb)
        else:
            cells = parse_py(path.read_text(encoding="utf-8", errors="replace"), str(path), strict=False)
        task_ids = {c.task for c in cells if c.kind == "tests" and c.task}
    except Exception:  # unreadable: try the name
        pass
    if task_ids:
        overlap = [(len(task_ids & {t.id for t in a.tasks}), a.name) for a in assignments]
        best, name = max(overlap)
        if best:
            return by_name[name]
    stem = path.stem.lower()
    matches = [a for a in assignments if a.name.lower() in stem]
    if matches:
        return max(matches, key=lambda a: len(a.name))
    return None


def find_submissions(paths, assignments, by_student=False, warn=None):
    """``{student: {assignment name: [files]}}`` from files and folders (the newest file first).

    ``by_student``: every sub-folder of each given folder is one student (named after it),
    as in nbgrader's ``submitted/<student>/<assignment>/``. Otherwise everything found is
    one submission.
    """
    warn = warn or (lambda message: print(message, file=sys.stderr))
    groups = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        if by_student:
            if not path.is_dir():
                raise NotADirectoryError(f"with --students, {path} must be a folder of student folders")
            for child in sorted(path.iterdir()):
                if child.is_dir() and not child.name.startswith("."):
                    groups.append((child.name, _candidate_files(child)))
                elif child.suffix in SUFFIXES:
                    warn(f"skipped {child}: with --students, files go in a folder per student")
        else:
            groups.append((None, _candidate_files(path)))
    if not by_student:
        first = Path(paths[0]).resolve()
        name = (first.stem if first.is_file() else first.name) if len(paths) == 1 else "submission"
        groups = [(name, [f for _, files in groups for f in files])]
    found = {}
    for student, files in groups:
        mine = found.setdefault(student, {})
        for file in files:
            assignment = identify(file, assignments)
            if assignment is None:
                warn(f"skipped {file}: not a copy of any assignment")
                continue
            mine.setdefault(assignment.name, []).append(file)
        for copies in mine.values():
            copies.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    return found


# ----------------------------------------------------------------------------- one file
def _judge_environment():
    import tinyllm

    env = dict(os.environ)
    root = str(Path(tinyllm.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")  # many judges side by side: one thread each
    return env


def _run_judge(assignment, file, task_ids, timeout, visible_only, salt, memory_mb):
    """{task id: (status, hint, seconds)} and the isolation the workers reported."""
    if os.name != "posix":
        raise OSError("grading runs students' code in confined processes and needs Linux or macOS "
                      "(on Windows, use WSL)")
    path = Path(file)
    job = {"assignment": {"name": assignment.name, "text": assignment.text},
           "submission": {"name": path.name, "text": path.read_text(encoding="utf-8", errors="replace")},
           "tasks": list(task_ids), "timeout": float(timeout), "memory": int(memory_mb) << 20,
           "visible_only": bool(visible_only), "salt": salt}
    ours, theirs = socket.socketpair()  # a socket: no other process can reopen it through /proc
    proc = subprocess.Popen([sys.executable, "-m", "tinyllm.assignments.judge", str(theirs.fileno())],
                            cwd=tempfile.gettempdir(), env=_judge_environment(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, pass_fds=(theirs.fileno(),), start_new_session=True)
    theirs.close()
    outcomes, isolation = {}, []
    try:
        protocol.send(ours, job)
        while len(outcomes) < len(task_ids):
            header, _ = protocol.receive(ours, time.monotonic() + timeout + STARTUP_SECONDS)
            if header.get("op") != "result" or header.get("task") not in task_ids:
                break
            outcomes[header["task"]] = (header["status"], header["hint"], header["seconds"])
            isolation = header.get("isolation") or isolation
    except (protocol.ProtocolError, protocol.Deadline):
        pass
    finally:
        ours.close()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        error = proc.stderr.read().decode("utf-8", errors="replace").strip().splitlines()
        proc.wait()
        proc.stderr.close()
    for task_id in task_ids:
        if task_id not in outcomes:
            tail = error[-1][-200:] if error else ""
            outcomes[task_id] = ("crash", "the grader's judge process stopped" + (f": {tail}" if tail else ""), 0.0)
    return outcomes, isolation


def grade_file(assignment, file, timeout=30.0, visible_only=False, tasks=None, salt=None, memory_mb=MEMORY_MB,
               isolation=None):
    """Grade one student's copy of ``assignment`` (on ``tasks``, ids; default all): a list of
    :class:`TaskResult`. ``salt``: the grading run's seed for fresh test inputs (default: a
    new one). ``isolation``: a list to extend with how the code was confined."""
    chosen = [t for t in assignment.tasks if tasks is None or t.id in tasks]
    salt = secrets.randbits(64) if salt is None else salt
    with sandbox.undumpable():  # the students' code cannot read this process through /proc meanwhile
        outcomes, confined = _run_judge(assignment, file, [t.id for t in chosen], timeout, visible_only, salt,
                                        memory_mb)
    if isolation is not None:
        isolation.extend(x for x in confined if x not in isolation)
    results = []
    for task in chosen:
        status, hint, seconds = outcomes[task.id]
        results.append(TaskResult(assignment.name, task.id, task.number, task.title, task.points,
                                  task.points if status == "pass" else 0.0, status, hint, seconds, str(file)))
    return results


def _missing(assignment):
    return [TaskResult(assignment.name, t.id, t.number, t.title, t.points, 0.0, "missing",
                       "no file for this assignment was handed in") for t in assignment.tasks]


@contextmanager
def _read_only(files):
    """The task files lose their write permission while grading (the grades use the copy read
    before; this keeps a student's code from rewriting them for the runs to come, where
    nothing stronger confines it)."""
    modes = {}
    for path in files:
        try:
            modes[path] = path.stat().st_mode
            path.chmod(modes[path] & ~0o222)
        except OSError:
            pass
    try:
        yield
    finally:
        for path, mode in modes.items():
            try:
                path.chmod(stat.S_IMODE(mode))
            except OSError:
                pass


def grade_paths(paths, assignments, by_student=False, only=None, timeout=30.0, jobs=None,
                visible_only=False, warn=None, seed=None, memory_mb=MEMORY_MB):
    """Grade everything under ``paths``: one :class:`StudentReport` per student.

    Each student is graded on the assignments in ``only`` (names), or else on every
    assignment that anyone handed in; one not handed in scores zero ("missing"). A student
    who handed in several files for one assignment (a ``.py`` and an ``.ipynb``) has each
    graded and the best kept, and the report's notes say so. ``jobs`` files are graded side
    by side (default: the number of CPUs). ``seed``: the tests' inputs for this run (default:
    fresh ones).
    """
    warn = warn or (lambda message: print(message, file=sys.stderr))
    found = find_submissions(paths, assignments, by_student=by_student, warn=warn)
    by_name = {a.name: a for a in assignments}
    if only:
        unknown = [n for n in only if n not in by_name]
        if unknown:
            raise KeyError(f"no assignment named {', '.join(unknown)}; see 'list'")
        wanted = [by_name[n] for n in only]
    else:
        handed_in = {name for files in found.values() for name in files}
        wanted = [a for a in assignments if a.name in handed_in]
    work = [(student, a, file) for student, files in found.items() for a in wanted
            for file in files.get(a.name, [None])]
    jobs = max(1, jobs or os.cpu_count() or 1)
    salt = secrets.randbits(64) if seed is None else int(seed)
    isolation = []

    def run(item):
        _, assignment, file = item
        if file is None:
            return _missing(assignment)
        return grade_file(assignment, file, timeout, visible_only, salt=salt, memory_mb=memory_mb,
                          isolation=isolation)

    with _read_only([Path(a.path) for a in wanted]), ThreadPoolExecutor(max_workers=jobs) as pool:
        graded = list(pool.map(run, work))
    reports = {student: StudentReport(student, isolation=isolation, seed=salt) for student in found}
    copies = {}
    for (student, assignment, _), results in zip(work, graded):
        copies.setdefault((student, assignment.name), []).append(results)
    for (student, name), candidates in copies.items():
        best = max(candidates, key=lambda results: sum(r.earned for r in results))  # the newest wins a tie
        reports[student].results.extend(best)
        if len(candidates) > 1:
            scores = ", ".join(f"{Path(c[0].file).name} {format_points(sum(r.earned for r in c))}/"
                               f"{format_points(sum(r.points for r in c))}" for c in candidates)
            reports[student].notes.append(f"{name}: {len(candidates)} files graded ({scores}); kept the best, "
                                          f"{Path(best[0].file).name}")
    for assignment in wanted:
        path = Path(assignment.path)
        if path.is_file() and path.read_text(encoding="utf-8") != assignment.text:
            warn(f"warning: {path} changed while grading (the grades used the version read before); "
                 f"someone's code may have written it: restore it from your copy")
    return list(reports.values())


# ----------------------------------------------------------------------------- output
_STATUS = {"pass": "pass", "fail": "FAIL", "timeout": "TIMEOUT", "crash": "CRASH", "missing": "MISSING"}


def format_points(x) -> str:
    return f"{x:g}"


def format_table(reports, hint_width=100) -> str:
    """The score table, one block per student: assignment, task, points, result, hint."""
    out = []
    for report in reports:
        rows = [("assignment", "task", "points", "result", "hint")]
        for r in report.results:
            hint = r.hint
            if hint_width and len(hint) > hint_width:
                hint = hint[:hint_width - 1] + "…"
            rows.append((r.assignment, f"{r.number} {r.task}", f"{format_points(r.earned)}/{format_points(r.points)}",
                         _STATUS[r.status], hint))
        rows.append(("total", "", f"{format_points(report.earned)}/{format_points(report.possible)}", "", ""))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        if len(reports) > 1 or report.student:
            out.append(f"student: {report.student}")
        for i, row in enumerate(rows):
            line = "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4]
            out.append(line.rstrip())
            if i == 0 or i == len(rows) - 2:
                out.append("  ".join("-" * w for w in widths) + "  ----")
        out += [f"note: {note}" for note in report.notes]
        out.append("")
    if len(reports) > 1:
        out.append(format_summary(reports))
    return "\n".join(out)


def format_summary(reports) -> str:
    """One line per student: points per assignment and the total."""
    names = []
    for report in reports:
        for r in report.results:
            if r.assignment not in names:
                names.append(r.assignment)
    rows = [["student", *names, "total"]]
    for report in reports:
        per = {n: [0.0, 0.0] for n in names}
        for r in report.results:
            per[r.assignment][0] += r.earned
            per[r.assignment][1] += r.points
        rows.append([report.student, *(f"{format_points(e)}/{format_points(p)}" if p else "-" for e, p in per.values()),
                     f"{format_points(report.earned)}/{format_points(report.possible)}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["summary"]
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def to_json(reports) -> dict:
    """The grades as a JSON-ready dict: students → assignments → tasks, with totals."""
    students = []
    for report in reports:
        assignments = {}
        for r in report.results:
            entry = assignments.setdefault(r.assignment, {"assignment": r.assignment, "file": r.file,
                                                          "earned": 0.0, "possible": 0.0, "tasks": []})
            entry["earned"] += r.earned
            entry["possible"] += r.points
            task = asdict(r)
            del task["assignment"], task["file"]
            task["passed"] = r.passed
            entry["tasks"].append(task)
        students.append({"student": report.student, "earned": report.earned, "possible": report.possible,
                         "notes": list(report.notes), "assignments": list(assignments.values())})
    run = reports[0] if reports else StudentReport("")
    return {"format": "tinyllm-grades", "version": 1, "seed": run.seed, "isolation": list(run.isolation),
            "students": students}


def write_csv(reports, path=None) -> str:
    """One row per student, one column per task (``assignment/task``), then the total."""
    columns = []
    for report in reports:
        for r in report.results:
            key = f"{r.assignment}/{r.task}"
            if key not in columns:
                columns.append(key)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", *columns, "total", "possible"])
    for report in reports:
        scores = {f"{r.assignment}/{r.task}": format_points(r.earned) for r in report.results}
        writer.writerow([report.student, *(scores.get(c, "") for c in columns),
                         format_points(report.earned), format_points(report.possible)])
    text = buffer.getvalue()
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text
