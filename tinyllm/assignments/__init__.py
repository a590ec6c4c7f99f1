"""Classroom assignments: exercises students complete, graded automatically.

The assignments live in ``tasks/`` as Python files, one per assignment, several tasks each,
with the solutions and the hidden tests marked the nbgrader way (``### BEGIN SOLUTION``,
``### BEGIN HIDDEN TESTS``; the format is in :mod:`~tinyllm.assignments.source`). Commands::

    python -m tinyllm.assignments list                        # assignments, tasks, points
    python -m tinyllm.assignments release --out release/      # student versions (.py/.ipynb)
    python -m tinyllm.assignments grade submitted/ --students --json grades.json
    python -m tinyllm.assignments check                       # solutions full, releases zero

The teacher's guide is docs/TEACHERS.md.
"""
from .grader import StudentReport, TaskResult, format_table, grade_file, grade_paths, to_json, write_csv
from .source import Assignment, AssignmentFormatError, Task, load_assignment, load_assignments, release_py

__all__ = ["Assignment", "AssignmentFormatError", "Task", "TaskResult", "StudentReport", "load_assignment",
           "load_assignments", "release_py", "grade_file", "grade_paths", "format_table", "to_json",
           "write_csv"]
