"""The assignment file format: one Python file per assignment, cut into cells.

Each cell starts with a ``# %%`` line (the "percent" format that Jupyter with jupytext,
VS Code and Spyder show as cells)::

    # %% [markdown]
    # ## Task 2.1: MatMul (3 points)       statement text: every line a comment
    # %%
    import tinyllm as tl                   code everyone runs: imports, helpers
    # %% solution
    class MatMul(tl.Function):             code the student completes; what lies between
        ...                                ### BEGIN SOLUTION and ### END SOLUTION becomes
                                           "# YOUR CODE HERE / raise NotImplementedError()"
    # %% tests task="matmul" points=3 title="MatMul forward and backward"
    assert ...                             the autograder tests of one task; what lies
                                           between ### BEGIN HIDDEN TESTS and
                                           ### END HIDDEN TESTS is left out of the release

The markers are nbgrader's, with nbgrader's rules: a solution region's markers are lines
of their own (``### BEGIN SOLUTION`` exactly, any indentation); a hidden-test marker is any
line containing ``BEGIN HIDDEN TESTS`` / ``END HIDDEN TESTS``. Solution regions may appear
only in solution cells and hidden tests only in tests cells, as nbgrader requires.

A test cell passes when it runs to the end without raising; the task then earns its points.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Cell", "Task", "Assignment", "AssignmentFormatError", "parse_py", "validate", "load_assignment",
           "load_assignments", "builtin_tasks_dir", "release_code", "release_py", "solution_regions",
           "leaked_solution_lines", "BEGIN_SOLUTION", "END_SOLUTION", "BEGIN_HIDDEN", "END_HIDDEN", "CODE_STUB"]

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "BEGIN HIDDEN TESTS"
END_HIDDEN = "END HIDDEN TESTS"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")  # nbgrader's default stub

_HEADER = re.compile(r"^# %%(.*)$")
_METADATA = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s"]+)')
_TASK_ID = re.compile(r"^[A-Za-z0-9_-]+$")  # what nbgrader accepts as a grade_id


class AssignmentFormatError(ValueError):
    """An assignment file breaks the format (unbalanced markers, a tests cell without a task…)."""


@dataclass
class Cell:
    """One cell. ``source`` is code, or for markdown the text without the leading ``# ``;
    ``line`` is the file line (1-based) where ``source`` starts, for tracebacks."""

    kind: str
    source: str
    line: int = 1
    metadata: dict = field(default_factory=dict)

    @property
    def task(self):
        return self.metadata.get("task")


@dataclass
class Task:
    """One graded unit: a tests cell and the points it is worth."""

    id: str
    title: str
    points: float
    number: str  # "2.1": the assignment's number, then the task's position
    tests: Cell


@dataclass
class Assignment:
    """A parsed assignment file (the teacher's version, with solutions and hidden tests)."""

    name: str  # the file name without .py, e.g. "a2_matmul_reductions"
    path: Path
    cells: list
    text: str

    @property
    def number(self) -> str:
        match = re.match(r"^a?(\d+)", self.name)
        return match.group(1) if match else self.name

    @property
    def title(self) -> str:
        for cell in self.cells:
            if cell.kind == "markdown":
                for line in cell.source.splitlines():
                    if line.startswith("# "):
                        return line[2:].strip()
        return self.name

    @property
    def tasks(self) -> list:
        tests = [c for c in self.cells if c.kind == "tests"]
        return [Task(c.task, c.metadata.get("title", c.task), float(c.metadata["points"]),
                     f"{self.number}.{i}", c) for i, c in enumerate(tests, 1)]

    def task(self, task_id) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(f"assignment {self.name} has no task {task_id!r}")

    @property
    def points(self) -> float:
        return sum(t.points for t in self.tasks)


# ----------------------------------------------------------------------------- parsing
def _parse_header(rest: str, where: str, strict: bool):
    """``[markdown]`` / ``solution`` / ``tests task="x" points=3`` → (kind, metadata).

    Not ``strict`` (a student's file): anything unknown is plain code, as in an editor."""
    rest = rest.strip()
    if rest.startswith("[markdown]") or rest.startswith("[md]"):
        return "markdown", {}
    metadata = {}
    for key, value in _METADATA.findall(rest):
        try:
            metadata[key] = json.loads(value)
        except json.JSONDecodeError:
            if strict:
                raise AssignmentFormatError(f"{where}: cannot read {key}={value} (use JSON: "
                                            f'task="name", points=3)') from None
    words = _METADATA.sub("", rest).split()
    kind = words[0] if words else "code"
    if kind not in ("code", "solution", "tests"):
        if strict:
            raise AssignmentFormatError(f"{where}: unknown cell kind {kind!r} (use [markdown], "
                                        f"solution, tests, or nothing for plain code)")
        kind, metadata = "code", {}
    return kind, metadata


def _make_cell(kind, metadata, body, first_line):
    while body and not body[0].strip():
        body, first_line = body[1:], first_line + 1
    while body and not body[-1].strip():
        body = body[:-1]
    if kind == "markdown":
        text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body)
        return Cell(kind, text, first_line, metadata)
    return Cell(kind, "\n".join(body), first_line, metadata)


def parse_py(text: str, where: str = "<assignment>", strict: bool = True) -> list:
    """Cut a percent-format Python file into :class:`Cell` objects (``strict=False`` for
    students' files: unknown cell headers are read as plain code)."""
    cells = []
    kind, metadata, body, first = "code", {}, [], 1
    for number, line in enumerate(text.splitlines(), 1):
        match = _HEADER.match(line)
        if match:
            if any(b.strip() for b in body):
                cells.append(_make_cell(kind, metadata, body, first))
            kind, metadata = _parse_header(match.group(1), f"{where}:{number}", strict)
            body, first = [], number + 1
        else:
            body.append(line)
    if any(b.strip() for b in body):
        cells.append(_make_cell(kind, metadata, body, first))
    return cells


def solution_regions(source: str, where: str = "<cell>"):
    """The (first, last) line indices (0-based, markers included) of each solution region."""
    return _marker_regions(source, where, BEGIN_SOLUTION, END_SOLUTION, lambda line, marker: line.strip() == marker)


def _hidden_regions(source: str, where: str):
    return _marker_regions(source, where, BEGIN_HIDDEN, END_HIDDEN, lambda line, marker: marker in line)


def _marker_regions(source, where, begin, end, is_marker):
    """(first, last) line indices of each ``begin`` … ``end`` region; unpaired or nested
    markers are errors naming ``where``."""
    regions, start = [], None
    for i, line in enumerate(source.splitlines()):
        if is_marker(line, begin):
            if start is not None:
                raise AssignmentFormatError(f"{where}: nested {begin}")
            start = i
        elif is_marker(line, end):
            if start is None:
                raise AssignmentFormatError(f"{where}: {end} without {begin}")
            regions.append((start, i))
            start = None
    if start is not None:
        raise AssignmentFormatError(f"{where}: {begin} without {end}")
    return regions


def validate(cells, where: str) -> None:
    """Raise :class:`AssignmentFormatError` unless the cells make a gradable assignment."""
    seen = set()
    for cell in cells:
        at = f"{where}:{cell.line}"
        solutions = solution_regions(cell.source, at)
        hidden = _hidden_regions(cell.source, at)
        if solutions and cell.kind != "solution":
            raise AssignmentFormatError(f"{at}: a solution region in a {cell.kind} cell; put it in "
                                        f"a '# %% solution' cell")
        if cell.kind == "solution" and not solutions:
            raise AssignmentFormatError(f"{at}: a solution cell without {BEGIN_SOLUTION} / {END_SOLUTION}")
        if hidden and cell.kind != "tests":
            raise AssignmentFormatError(f"{at}: hidden tests in a {cell.kind} cell; put them in a "
                                        f"'# %% tests' cell")
        if cell.kind == "tests":
            _check_tests_cell(cell, at)
            task, points = cell.metadata.get("task"), cell.metadata.get("points")
            if not isinstance(task, str) or not _TASK_ID.match(task):
                raise AssignmentFormatError(f'{at}: a tests cell needs task="name" (letters, digits, '
                                            f'_ and -), got {task!r}')
            if task in seen:
                raise AssignmentFormatError(f"{at}: two tests cells for task {task!r}")
            seen.add(task)
            if not isinstance(points, (int, float)) or points <= 0:
                raise AssignmentFormatError(f"{at}: task {task!r} needs points=N with N > 0, got {points!r}")
        if cell.kind != "markdown":
            try:
                ast.parse(cell.source)
            except SyntaxError as exc:
                raise AssignmentFormatError(f"{where}:{cell.line + (exc.lineno or 1) - 1}: {exc.msg}") from None
    if not seen:
        raise AssignmentFormatError(f"{where}: no '# %% tests task=... points=...' cell: nothing to grade")
    for cell in cells:
        if cell.kind == "tests":
            inplace_arguments(cells, cell, f"{where}:{cell.line}")


def inplace_arguments(cells, tests, at="") -> dict:
    """What a tests cell's ``inplace="fn:arg,arg …"`` lets the student's functions change in
    the test's objects: ``{fn: {position, name, …}}`` of the arguments named, after the
    function's signature in the solution cells. The judge writes back only those."""
    signatures = {}
    for cell in cells:
        if cell.kind == "solution":
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.FunctionDef):
                    signatures[node.name] = [a.arg for a in node.args.posonlyargs + node.args.args]
    chosen = {}
    for word in tests.metadata.get("inplace", "").split():
        name, _, names = word.partition(":")
        if name not in signatures:
            raise AssignmentFormatError(f'{at}: inplace="{word}": no solution cell defines a function {name}()')
        params = signatures[name]
        if not names:
            raise AssignmentFormatError(f'{at}: inplace="{word}" names no argument: write {name}:{params[-1]}, '
                                        f"the arguments (comma-separated) whose changes the tests must see")
        for arg in names.split(","):
            if arg not in params:
                raise AssignmentFormatError(f'{at}: inplace="{word}": {name}() has no argument {arg!r} '
                                            f'(it takes {", ".join(params)})')
            chosen.setdefault(name, set()).update({arg, params.index(arg)})
    return chosen


def _shows_a_value(statement) -> bool:
    """A final expression whose value Jupyter displays (a call of ``assert_…`` returns None)."""
    if not isinstance(statement, ast.Expr):
        return False
    call = statement.value
    if isinstance(call, ast.Call):
        name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")
        return not name.startswith("assert")
    return not isinstance(call, ast.Constant)


def _check_tests_cell(cell, at):
    for key in ("forbid", "inplace", "title"):
        if key in cell.metadata and not isinstance(cell.metadata[key], str):
            raise AssignmentFormatError(f'{at}: {key}= takes a string in quotes, got {cell.metadata[key]!r}')
    for label, source in (("", cell.source), ("released ", release_code(cell.source))):
        try:
            body = ast.parse(source).body
        except SyntaxError:
            return  # reported below with its line
        if body and _shows_a_value(body[-1]):
            raise AssignmentFormatError(
                f"{at}: the {label}tests cell ends with an expression that has a value ({ast.unparse(body[-1])[:60]}"
                f"): Jupyter shows it, and nbgrader reads a number there as partial credit; end with a "
                f"statement (assert ..., an assignment) or an assert_close/assert_equal call")


def load_assignment(path) -> Assignment:
    """Read and check one assignment file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    cells = parse_py(text, str(path))
    validate(cells, str(path))
    return Assignment(path.stem, path, cells, text)


def builtin_tasks_dir() -> Path:
    """The folder of the assignments that ship with tinyllm."""
    return Path(__file__).resolve().parent / "tasks"


def load_assignments(folder=None) -> list:
    """Every assignment file (``*.py`` not starting with ``_``) in ``folder``, by name."""
    folder = Path(folder) if folder is not None else builtin_tasks_dir()
    if not folder.is_dir():
        raise FileNotFoundError(f"no assignments folder at {folder}")
    return [load_assignment(p) for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")]


# ----------------------------------------------------------------------------- the release
def release_code(source: str) -> str:
    """The student's version of some code: each solution region becomes nbgrader's stub
    (indented like its marker), each hidden-test region disappears, markers included."""
    out, in_solution, in_hidden = [], False, False
    for line in source.split("\n"):
        stripped = line.strip()
        if stripped == BEGIN_SOLUTION:
            in_solution = True
            indent = line[:line.index(BEGIN_SOLUTION)]
            out.extend(indent + stub for stub in CODE_STUB)
        elif stripped == END_SOLUTION:
            in_solution = False
        elif BEGIN_HIDDEN in line:
            in_hidden = True
        elif END_HIDDEN in line:
            in_hidden = False
        elif not in_solution and not in_hidden:
            out.append(line)
    return "\n".join(out)


def release_py(assignment: Assignment) -> str:
    """The student's version of a whole assignment file."""
    return release_code(assignment.text)


def leaked_solution_lines(assignment: Assignment, released_text: str) -> list:
    """Lines of the solutions that appear in ``released_text`` although they appear nowhere
    else in the teacher's file (a line like ``return y`` may well be in the starter code).
    Comments and blank lines are not counted. An empty list: nothing leaked."""
    inside, outside = set(), set()
    for cell in assignment.cells:
        lines = cell.source.splitlines()
        covered = set()
        if cell.kind == "solution":
            for first, last in solution_regions(cell.source):
                covered.update(range(first + 1, last))
        for i, line in enumerate(lines):
            text = line.strip()
            if text and not text.startswith("#"):
                (inside if i in covered else outside).add(text)
    released = {line.strip() for line in released_text.splitlines()}
    return sorted(line for line in inside - outside if line in released)
