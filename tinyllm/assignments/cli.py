"""``python -m tinyllm.assignments list | release | nbgrader-source | grade | check``.

``main(argv) -> int`` is the entry point (``python -m tinyllm assign ...`` may forward here).
See docs/TEACHERS.md for the whole workflow.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..cli_options import ArgumentParser
from . import grader
from .grader import format_points
from .source import AssignmentFormatError, builtin_tasks_dir, leaked_solution_lines, load_assignments, release_py

STUDENT_README = """\
# Assignments

Each `aN_*.py` file (or `.ipynb` notebook) is one assignment: read the statement of each task,
write your code where it says `# YOUR CODE HERE` (delete the `raise NotImplementedError()`),
and run the tests below it:

    python a1_elementwise.py          # runs the file top to bottom; fix the first failing test

or open the notebook and run its cells in order. To see your score table on the visible
tests:

    python -m tinyllm.assignments grade --visible-only .

The grader also runs hidden tests, on random inputs drawn anew each time it grades. Each
task is graded on its own: a mistake in one task costs only that task's points. Do not
rename the functions and classes you are asked to write, and write them yourself: the
library's own versions (tinyllm.ops, tinyllm.functional's classes) are refused when graded.
"""


def _parser():
    parser = ArgumentParser(
        prog="python -m tinyllm.assignments",
        description="Classroom assignments: release student versions, grade submissions.")
    parser.add_argument("--tasks", metavar="DIR", default=None,
                        help="a folder of assignment files to use instead of the built-in ones")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="the assignments, their tasks and points")

    release = sub.add_parser("release", help="write the student versions (no solutions, no hidden tests)")
    release.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    release.add_argument("--format", choices=("py", "ipynb", "both"), default="py",
                         help="plain Python files (default), Jupyter notebooks, or both")
    release.add_argument("--assignment", action="append", metavar="NAME",
                         help="only this assignment (repeatable); default: all")

    source = sub.add_parser("nbgrader-source",
                            help="write the teacher's notebooks (with solutions) in nbgrader's "
                                 "source/<assignment>/<assignment>.ipynb layout")
    source.add_argument("--out", required=True, metavar="DIR", help="nbgrader's source folder")
    source.add_argument("--assignment", action="append", metavar="NAME")

    grade = sub.add_parser("grade", help="grade students' files or notebooks and print a score table")
    grade.add_argument("paths", nargs="+", metavar="PATH", help="submitted files, or folders holding them")
    grade.add_argument("--students", action="store_true",
                       help="each sub-folder of PATH is one student (e.g. nbgrader's submitted/)")
    grade.add_argument("--assignment", action="append", metavar="NAME",
                       help="grade only this assignment (repeatable); one not handed in scores 0")
    grade.add_argument("--json", metavar="FILE", help="also write the grades as JSON ('-' for stdout)")
    grade.add_argument("--csv", metavar="FILE", help="also write one row per student as CSV")
    grade.add_argument("--timeout", type=float, default=30.0, help="seconds per task (default 30)")
    grade.add_argument("--memory", type=int, default=grader.MEMORY_MB, metavar="MB",
                       help=f"address space of the process running a student's code (default {grader.MEMORY_MB})")
    grade.add_argument("--seed", type=int, default=None,
                       help="draw the tests' random inputs from this seed (default: fresh ones each run; "
                            "the JSON records the seed used)")
    grade.add_argument("--jobs", type=int, default=None, help="files graded side by side (default: CPUs)")
    grade.add_argument("--visible-only", action="store_true",
                       help="run only the tests students can see (for students checking their work)")
    grade.add_argument("--hint-width", type=int, default=100, help="cut hints in the table (0: never)")

    check = sub.add_parser("check", help="self-test: solutions score full marks, releases score zero "
                                         "and leak no solution (run after adding a task)")
    check.add_argument("--jobs", type=int, default=None)
    check.add_argument("--timeout", type=float, default=60.0)
    return parser


def _select(assignments, names):
    if not names:
        return assignments
    by_name = {a.name: a for a in assignments}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"error: no assignment named {', '.join(unknown)} (see 'list')")
    return [by_name[n] for n in names]


def _guard_out(out: Path, tasks_dir: Path):
    if out.resolve() == tasks_dir.resolve():
        raise SystemExit(f"error: --out {out} is the assignments' own folder; writing there would "
                         f"overwrite the solutions")


def cmd_list(assignments):
    for a in assignments:
        print(f"{a.name}  ({format_points(a.points)} points)  {a.title}")
        for t in a.tasks:
            print(f"  {t.number:<5} {t.id:<22} {format_points(t.points):>3}  {t.title}")
    print(f"total: {len(assignments)} assignments, {sum(len(a.tasks) for a in assignments)} tasks, "
          f"{format_points(sum(a.points for a in assignments))} points")
    return 0


def write_release(assignments, out, fmt="py"):
    """Write the student version of each assignment into ``out``; returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for a in assignments:
        if fmt in ("py", "both"):
            path = out / f"{a.name}.py"
            path.write_text(release_py(a), encoding="utf-8")
            written.append(path)
        if fmt in ("ipynb", "both"):
            import nbformat

            from .notebook import to_notebook

            path = out / f"{a.name}.ipynb"
            nbformat.write(to_notebook(a, release=True), str(path))
            written.append(path)
    readme = out / "README.md"
    readme.write_text(STUDENT_README, encoding="utf-8")
    return written + [readme]


def write_nbgrader_source(assignments, out):
    import nbformat

    from .notebook import to_notebook

    written = []
    for a in assignments:
        folder = Path(out) / a.name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{a.name}.ipynb"
        nbformat.write(to_notebook(a, release=False), str(path))
        written.append(path)
    return written


def cmd_grade(args, assignments):
    try:
        reports = grader.grade_paths(args.paths, assignments, by_student=args.students, only=args.assignment,
                                     timeout=args.timeout, jobs=args.jobs, visible_only=args.visible_only,
                                     seed=args.seed, memory_mb=args.memory)
    except (OSError, KeyError) as exc:  # no such path, not a folder, no such assignment
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    if not any(r.results for r in reports):
        print("error: no assignment files found in " + ", ".join(args.paths), file=sys.stderr)
        return 2
    json_to_stdout = args.json == "-"
    if not json_to_stdout:
        print(grader.format_table(reports, hint_width=args.hint_width), end="")
        if reports and reports[0].isolation:
            print(f"students' code ran confined: {', '.join(reports[0].isolation)}")
    if args.json:
        text = json.dumps(grader.to_json(reports), indent=2)
        if json_to_stdout:
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
    if args.csv:
        grader.write_csv(reports, args.csv)
    return 0


def cmd_check(args, assignments):
    """Grade each solution (must pass every task) and each release (must pass none)."""
    from .worker import starter_load_errors

    ok = True
    with tempfile.TemporaryDirectory(prefix="tinyllm-check-") as tmp:
        released = {p.stem: p for p in write_release(assignments, tmp) if p.suffix == ".py"}
        with ThreadPoolExecutor(max_workers=max(1, args.jobs or os.cpu_count() or 1)) as pool:
            solved = list(pool.map(lambda a: grader.grade_file(a, a.path, args.timeout), assignments))
            starter = list(pool.map(lambda a: grader.grade_file(a, released[a.name], args.timeout), assignments))
        for a, sol, rel in zip(assignments, solved, starter):
            problems = [f"solution fails {r.number} {r.task}: {r.hint}" for r in sol if not r.passed]
            problems += [f"release passes {r.number} {r.task} (its tests do not call the student's code?)"
                         for r in rel if r.passed]
            problems += [f"release crashes the grader on {r.number} {r.task}: {r.hint}"
                         for r in rel if r.status in ("crash", "timeout")]
            problems += [f"solution text in the release: {line!r}"
                         for line in leaked_solution_lines(a, released[a.name].read_text(encoding="utf-8"))]
            problems += [f"starter code does not load: {e}" for e in starter_load_errors(released[a.name])]
            ok &= not problems
            earned = sum(r.earned for r in sol)
            print(f"{'ok  ' if not problems else 'FAIL'} {a.name}: solution {format_points(earned)}/{format_points(a.points)}, "
                  f"release {format_points(sum(r.earned for r in rel))}/{format_points(a.points)}")
            for problem in problems:
                print(f"     {problem}")
    return 0 if ok else 1


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    tasks_dir = Path(args.tasks) if args.tasks else builtin_tasks_dir()
    try:
        assignments = load_assignments(tasks_dir)
    except (AssignmentFormatError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "list":
        return cmd_list(assignments)
    if args.command == "release":
        _guard_out(Path(args.out), tasks_dir)
        for path in write_release(_select(assignments, args.assignment), args.out, args.format):
            print(path)
        return 0
    if args.command == "nbgrader-source":
        _guard_out(Path(args.out), tasks_dir)
        for path in write_nbgrader_source(_select(assignments, args.assignment), args.out):
            print(path)
        return 0
    if args.command == "grade":
        return cmd_grade(args, assignments)
    if args.command == "check":
        return cmd_check(args, assignments)
    return 2  # pragma: no cover - argparse rejects other commands
