"""The real nbgrader pipeline on tinyllm's notebooks, for a class of three.

``nbgrader-source`` writes the teacher's notebook; nbgrader's own ``generate_assignment``,
``autograde``, ``generate_feedback`` and ``export`` run on it, in a course folder; the scores
must equal tinyllm's grader's on the same submissions, the feedback must show no working
solution of the helpers a hidden test swaps in, and nbgrader may print only the warnings
docs/TEACHERS.md lists as expected. One assignment (BPE: plain Python, quick kernels).
"""
import copy
import csv
import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tinyllm.assignments import cli, grader, load_assignments

pytest.importorskip("nbgrader", reason="nbgrader is in requirements-test.txt")

ROOT = Path(__file__).resolve().parent.parent
A6 = {a.name: a for a in load_assignments()}["a6_bpe"]
EXPECTED_WARNINGS = (
    "Attribute 'checksum' for cell",  # a tests cell with hidden tests: the student's copy has none of them
)


def nbgrader(course, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def submission(release, solutions, answers):
    """The released notebook with some solution cells filled in (None: left as released)."""
    nb = copy.deepcopy(release)
    cells = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution")]
    for cell, answer in zip(cells, answers):
        if answer is not None:
            cell["source"] = solutions[answer] if isinstance(answer, int) else answer
    return nb


def test_nbgrader_pipeline_on_a_class_of_three(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    # Kernels over Unix sockets in the test's own folder: a TCP port found free can be taken by
    # a kernel another test starts at the same moment (see chapters/build/nbtools.py).
    (course / "nbgrader_config.py").write_text(
        'c = get_config()\nc.CourseDirectory.course_id = "tinyllm"\n'
        f'c.KernelManager.transport = "ipc"\nc.KernelManager.ip = {str(tmp_path / "kernel")!r}\n')
    cli.write_nbgrader_source([A6], course / "source")
    nbgrader(course, "generate_assignment", A6.name, "--force")

    release = json.loads((course / "release" / A6.name / f"{A6.name}.ipynb").read_text())
    source = json.loads((course / "source" / A6.name / f"{A6.name}.ipynb").read_text())
    solutions = ["".join(c["source"]) for c in source["cells"] if c["metadata"]["nbgrader"]["solution"]]
    off_by_one = solutions[1].replace("i += 2", "i += 1")  # merge: overlapping pairs
    assert off_by_one != solutions[1]
    students = {"ada": [0, 1, 2, 3, 4], "bob": [None] * 5, "cy": [0, off_by_one, 2, None, None]}
    for name, answers in students.items():
        folder = course / "submitted" / name / A6.name
        folder.mkdir(parents=True)
        (folder / f"{A6.name}.ipynb").write_text(json.dumps(submission(release, solutions, answers)))

    log = nbgrader(course, "autograde", A6.name, "--force")
    nbgrader(course, "generate_feedback", A6.name, "--force")
    nbgrader(course, "export")

    with open(course / "grades.csv") as f:
        by_nbgrader = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}
    reports = grader.grade_paths([course / "submitted"], [A6], by_student=True, timeout=60)
    by_tinyllm = {r.student: r.earned for r in reports}
    assert by_nbgrader == by_tinyllm == {"ada": 10.0, "bob": 0.0, "cy": 4.0}  # cy: 6.1 and 6.3

    warnings = [line for line in log.splitlines() if "WARNING" in line]
    assert all(any(expected in line for expected in EXPECTED_WARNINGS) for line in warnings), warnings

    # the feedback shows the tests cells: an import of the reference helpers, not their code
    feedback = (course / "feedback" / "bob" / A6.name / f"{A6.name}.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", feedback))
    assert "from tinyllm.assignments.references import merge, pair_counts" in text
    for line in ("counts[pair] = counts.get(pair, 0) + 1", "out.append(new_id)"):
        assert line not in text
