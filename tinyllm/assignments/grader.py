"""Grading: each task of each submitted file, in a separate process with a time limit.

    assignments = load_assignments()
    reports = grade_paths(["submitted/"], assignments, by_student=True)
    print(format_table(reports))
    json.dump(to_json(reports), open("grades.json", "w"))

A submission is a student's copy of an assignment, as ``.py`` or ``.ipynb``; which assignment
it is comes from its content (the notebook's metadata, or the task ids of its tests cells),
else from its file name. For every (student, assignment) pair a worker process
(:mod:`tinyllm.assignments.worker`) runs the teacher's tests, hidden ones included, against
the student's code: never against the teacher's solution. A task passes when its tests
cell runs through; it then earns all its points, otherwise none, and the first failure's
message (an assertion's text, or ``tl.gradcheck``'s "input, index, analytic, numeric") is
the hint. An endless loop costs that task only: the worker's alarm stops it after
``timeout`` seconds, and should the worker die or hang anyway, a new one carries on with
the remaining tasks.
"""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .source import parse_py

__all__ = ["TaskResult", "StudentReport", "identify", "find_submissions", "grade_file", "grade_paths",
           "format_table", "format_summary", "to_json", "write_csv"]

SUFFIXES = (".py", ".ipynb")
STARTUP_SECONDS = 60.0  # for a worker to import NumPy and tinyllm on a busy machine
GRACE_SECONDS = 5.0  # past the alarm, before the watchdog kills a worker stuck in C code


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
    student: str
    results: list = field(default_factory=list)

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
    """``{student: {assignment name: file}}`` from files and folders.

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
            if assignment.name in mine:
                newer = max(mine[assignment.name], file, key=lambda p: p.stat().st_mtime)
                warn(f"{student}: two files for {assignment.name} ({mine[assignment.name]}, {file}); "
                     f"grading the newer, {newer}")
                file = newer
            mine[assignment.name] = file
    return found


# ----------------------------------------------------------------------------- one file
def _worker_env():
    import tinyllm

    env = dict(os.environ)
    root = str(Path(tinyllm.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")  # many small workers side by side: one thread each
    env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0", MPLBACKEND="Agg")
    return env


def _kill(proc):
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)  # the student's code may have started children
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _read_events(path: Path, offset: int):
    """The complete JSON lines the worker appended since byte ``offset``."""
    if not path.exists():
        return [], offset
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    complete = data[:data.rfind(b"\n") + 1]
    lines = complete.decode("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()], offset + len(complete)


class _OutputTail:
    """Reads a worker's stdout and stderr in a thread and keeps only the end: a student's
    print in an endless loop must not fill the memory or the disk."""

    def __init__(self, stream, keep=4096):
        self.tail, self.keep = b"", keep
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for chunk in iter(lambda: stream.read1(65536), b""):
            self.tail = (self.tail + chunk)[-self.keep:]

    def last_line(self) -> str:
        self.thread.join(timeout=1.0)
        lines = [l for l in self.tail.decode("utf-8", errors="replace").splitlines() if l.strip()]
        if not lines:
            return ""
        last = lines[-1].strip()
        return last if len(last) <= 200 else "…" + last[-199:]


def _run_workers(assignment, file, task_ids, timeout, visible_only):
    """{task id: (status, hint, seconds)}, restarting the worker after a crash or a hang."""
    outcomes, remaining = {}, list(task_ids)
    env = _worker_env()
    while remaining:
        with tempfile.TemporaryDirectory(prefix="tinyllm-grade-") as tmp:
            tmp = Path(tmp)
            results = tmp / "results.jsonl"
            spec = {"source": str(assignment.path), "submission": str(Path(file).resolve()),
                    "tasks": remaining, "results": str(results), "timeout": timeout,
                    "visible_only": visible_only}
            (tmp / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
            proc = subprocess.Popen([sys.executable, "-m", "tinyllm.assignments.worker", str(tmp / "spec.json")],
                                    cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=os.name == "posix")
            output = _OutputTail(proc.stdout)
            current, offset, killed, progressed = None, 0, False, False
            deadline = time.monotonic() + STARTUP_SECONDS + timeout
            while True:
                exit_code = proc.poll()
                events, offset = _read_events(results, offset)
                for event in events:
                    progressed = True
                    if event["event"] == "start":
                        current = event["task"]
                        deadline = time.monotonic() + timeout + GRACE_SECONDS
                    else:
                        status = "pass" if event["passed"] else (
                            "timeout" if event["hint"].startswith("timed out") else "fail")
                        outcomes[event["task"]] = (status, event["hint"], event["seconds"])
                        remaining.remove(event["task"])
                        current = None
                        deadline = time.monotonic() + STARTUP_SECONDS
                if exit_code is not None:
                    break
                if time.monotonic() > deadline:
                    _kill(proc)
                    killed = True
                time.sleep(0.02)
            _kill(proc)  # also whatever the student's code started and left running
            tail = output.last_line()
            proc.stdout.close()
            if current is not None:
                if killed:
                    outcomes[current] = ("timeout", f"timed out after {timeout:g} s and had to be killed "
                                                    f"(stuck outside Python?)", float(timeout))
                else:
                    outcomes[current] = ("crash", f"the process running this task died (exit code "
                                                  f"{exit_code})" + (f": {tail}" if tail else ""), 0.0)
                remaining.remove(current)
            elif remaining and not progressed:
                for task_id in remaining:
                    outcomes[task_id] = ("crash", "the grader's worker did not start"
                                         + (f": {tail}" if tail else ""), 0.0)
                remaining = []
    return outcomes


def grade_file(assignment, file, timeout=30.0, visible_only=False):
    """Grade one student's copy of ``assignment``: a list of :class:`TaskResult`."""
    outcomes = _run_workers(assignment, file, [t.id for t in assignment.tasks], timeout, visible_only)
    results = []
    for task in assignment.tasks:
        status, hint, seconds = outcomes[task.id]
        results.append(TaskResult(assignment.name, task.id, task.number, task.title, task.points,
                                  task.points if status == "pass" else 0.0, status, hint, seconds, str(file)))
    return results


def _missing(assignment):
    return [TaskResult(assignment.name, t.id, t.number, t.title, t.points, 0.0, "missing",
                       "no file for this assignment was handed in") for t in assignment.tasks]


def grade_paths(paths, assignments, by_student=False, only=None, timeout=30.0, jobs=None,
                visible_only=False, warn=None):
    """Grade everything under ``paths``: one :class:`StudentReport` per student.

    Each student is graded on the assignments in ``only`` (names), or else on every
    assignment that anyone handed in; one not handed in scores zero ("missing").
    ``jobs`` workers run side by side (default: the number of CPUs).
    """
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
    work = [(student, a, files.get(a.name)) for student, files in found.items() for a in wanted]
    jobs = max(1, jobs or os.cpu_count() or 1)

    def run(item):
        _, assignment, file = item
        return _missing(assignment) if file is None else grade_file(assignment, file, timeout, visible_only)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        graded = list(pool.map(run, work))
    reports = {student: StudentReport(student) for student in found}
    for (student, _, _), results in zip(work, graded):
        reports[student].results.extend(results)
    return list(reports.values())


# ----------------------------------------------------------------------------- output
_STATUS = {"pass": "pass", "fail": "FAIL", "timeout": "TIMEOUT", "crash": "CRASH", "missing": "MISSING"}


def _points(x) -> str:
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
            rows.append((r.assignment, f"{r.number} {r.task}", f"{_points(r.earned)}/{_points(r.points)}",
                         _STATUS[r.status], hint))
        rows.append(("total", "", f"{_points(report.earned)}/{_points(report.possible)}", "", ""))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        if len(reports) > 1 or report.student:
            out.append(f"student: {report.student}")
        for i, row in enumerate(rows):
            line = "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4]
            out.append(line.rstrip())
            if i == 0 or i == len(rows) - 2:
                out.append("  ".join("-" * w for w in widths) + "  ----")
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
        rows.append([report.student, *(f"{_points(e)}/{_points(p)}" if p else "-" for e, p in per.values()),
                     f"{_points(report.earned)}/{_points(report.possible)}"])
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
                         "assignments": list(assignments.values())})
    return {"format": "tinyllm-grades", "version": 1, "students": students}


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
        scores = {f"{r.assignment}/{r.task}": _points(r.earned) for r in report.results}
        writer.writerow([report.student, *(scores.get(c, "") for c in columns),
                         _points(report.earned), _points(report.possible)])
    text = buffer.getvalue()
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text
