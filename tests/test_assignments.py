"""Classroom assignments (tinyllm.assignments): the proofs a teacher relies on.

* every solution scores full marks, as a .py file and as an nbgrader source notebook;
* every student release scores zero on every task without crashing the grader, holds no
  solution text and no hidden test, and its starter code loads;
* a planted mistake (a transposed matmul gradient, a softmax backward missing a term, …)
  costs exactly its task's points, once (a wrong forward does not fail the backward task);
  an endless loop, a dying process or a memory hog costs only its task;
* a .py and an .ipynb of one assignment are both graded and the better kept; relative
  ``--tasks`` folders work;
* the JSON and CSV outputs agree with the printed table.

Each grading run starts a judge process per (student, assignment) file and a worker per
task; the runs are shared between tests through module-scoped fixtures to keep the whole
file fast. The cheats are in test_grader_redteam.py, nbgrader's own pipeline in
test_nbgrader.py.
"""
import csv
import io
import json
import re
import shutil

import nbformat
import pytest

from tinyllm.assignments import cli, grader
from tinyllm.assignments.notebook import cells_from_notebook, to_notebook
from tinyllm.assignments.source import (BEGIN_HIDDEN, BEGIN_SOLUTION, END_HIDDEN, END_SOLUTION,
                                        AssignmentFormatError, builtin_tasks_dir, leaked_solution_lines,
                                        load_assignments, parse_py, release_code, release_py,
                                        solution_regions, validate)
from tinyllm.assignments.worker import starter_load_errors

ASSIGNMENTS = load_assignments()
BY_NAME = {a.name: a for a in ASSIGNMENTS}
ALL_TASKS = {(a.name, t.id) for a in ASSIGNMENTS for t in a.tasks}


def results_by_task(report):
    return {(r.assignment, r.task): r for r in report.results}


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    """Four "students": the solutions as .py files and as nbgrader source notebooks, the
    release as .py files and as notebooks; graded in one run."""
    root = tmp_path_factory.mktemp("classroom")
    shutil.copytree(builtin_tasks_dir(), root / "solution_py", ignore=shutil.ignore_patterns("__*"))
    cli.write_nbgrader_source(ASSIGNMENTS, root / "solution_ipynb")
    cli.write_release(ASSIGNMENTS, root / "release_py", "py")
    cli.write_release(ASSIGNMENTS, root / "release_ipynb", "ipynb")
    reports = grader.grade_paths([root], ASSIGNMENTS, by_student=True, timeout=60)
    return root, {r.student: r for r in reports}


# ----------------------------------------------------------------------------- the set
def test_the_assignments_follow_the_chapters():
    assert [a.name for a in ASSIGNMENTS] == [
        "a1_elementwise", "a2_matmul_reductions", "a3_softmax_layernorm", "a4_attention",
        "a5_transformer_gpt", "a6_bpe", "a7_sampling_kv_cache"]
    for a in ASSIGNMENTS:
        assert len(a.tasks) >= 3, a.name
        assert [t.number for t in a.tasks] == [f"{a.number}.{i}" for i in range(1, len(a.tasks) + 1)]


def test_each_statement_announces_its_tasks_points():
    """The markdown says "## Task 2.1: … (3 points)" and the tests cell says points=3."""
    for a in ASSIGNMENTS:
        text = "\n".join(c.source for c in a.cells if c.kind == "markdown")
        for t in a.tasks:
            unit = "point" if t.points == 1 else "points"
            assert re.search(rf"## Task {re.escape(t.number)}: .*\({t.points:g} {unit}\)", text), (a.name, t.id)


# ----------------------------------------------------------------------------- full marks, zero
def test_solutions_score_full_marks(classroom):
    _, reports = classroom
    for student in ("solution_py", "solution_ipynb"):
        results = results_by_task(reports[student])
        assert set(results) == ALL_TASKS
        failed = {key: r.hint for key, r in results.items() if not r.passed}
        assert not failed, f"{student}: {failed}"
        assert reports[student].earned == reports[student].possible == sum(a.points for a in ASSIGNMENTS)


def test_release_scores_zero_on_every_task_without_crashing_the_grader(classroom):
    _, reports = classroom
    for student in ("release_py", "release_ipynb"):
        results = results_by_task(reports[student])
        assert set(results) == ALL_TASKS
        assert reports[student].earned == 0
        for key, r in results.items():
            assert r.status == "fail", (student, key, r.status, r.hint)
            assert "NotImplementedError" in r.hint, (student, key, r.hint)


def test_release_contains_no_solution_and_no_hidden_test(classroom):
    root, _ = classroom
    for a in ASSIGNMENTS:
        texts = {"py": (root / "release_py" / f"{a.name}.py").read_text(encoding="utf-8")}
        nb = nbformat.read(str(root / "release_ipynb" / f"{a.name}.ipynb"), as_version=4)
        texts["ipynb"] = "\n".join(cell.source for cell in nb.cells)
        hidden = [line.strip() for c in a.cells if c.kind == "tests"
                  for line in c.source.splitlines() if line.strip()]
        visible = {line.strip() for line in release_py(a).splitlines()}
        for form, text in texts.items():
            for marker in (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN):
                assert marker not in text, (a.name, form, marker)
            assert leaked_solution_lines(a, text) == [], (a.name, form)
            # stronger: no distinctive line of a solution body appears anywhere, even inside another
            outside = "\n".join(c.source for c in a.cells if c.kind != "solution")
            for cell in a.cells:
                if cell.kind != "solution":
                    continue
                lines = cell.source.splitlines()
                for first, last in solution_regions(cell.source):
                    for line in lines[first + 1:last]:
                        line = line.strip()
                        if len(line) >= 12 and not line.startswith("#") and line not in outside:
                            assert line not in text, (a.name, form, line)
            # no hidden test line survives (unless the same line is also a visible test)
            lines = {line.strip() for line in text.splitlines()}
            leaked = [line for line in hidden if line not in visible and line in lines]
            assert not leaked, (a.name, form, leaked)
        assert "YOUR CODE HERE" in texts["py"] and "raise NotImplementedError()" in texts["py"]


def test_starter_code_loads(classroom):
    root, _ = classroom
    for a in ASSIGNMENTS:
        for path in (root / "release_py" / f"{a.name}.py", root / "release_ipynb" / f"{a.name}.ipynb"):
            assert starter_load_errors(path) == [], path
        compile((root / "release_py" / f"{a.name}.py").read_text(encoding="utf-8"), a.name, "exec")


# ----------------------------------------------------------------------------- planted mistakes
PLANTED = {  # assignment: (task, the solution's line, the mistake)
    "a2_matmul_reductions": ("matmul", "grad_b = a.swapaxes(-1, -2) @ g",
                             "grad_b = g.swapaxes(-1, -2) @ a"),  # the transposed gradient
    "a3_softmax_layernorm": ("softmax", "        grad -= y * grad.sum(axis=-1, keepdims=True)\n", ""),
    "a4_attention": ("attention_backward", "grad_q = grad_s @ k * scale", "grad_q = grad_s @ k"),
    "a6_bpe": ("merge", "(ids[i], ids[i + 1]) == pair:\n            out.append(new_id)\n            i += 2\n",
               "(ids[i], ids[i + 1]) == pair:\n            out.append(new_id)\n            i += 1\n"),
}


def _plant(folder, name, old, new):
    text = BY_NAME[name].text
    assert text.count(old) == 1, (name, old)
    (folder / f"{name}.py").write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("planted")
    for name, (_, old, new) in PLANTED.items():
        _plant(folder, name, old, new)
    (report,) = grader.grade_paths([folder], ASSIGNMENTS, timeout=60)
    return folder, report


def test_a_planted_mistake_costs_exactly_its_task(planted):
    _, report = planted
    results = results_by_task(report)
    graded = {(a, t) for a, t in ALL_TASKS if a in PLANTED}
    assert set(results) == graded
    wrong = {(name, task) for name, (task, _, _) in PLANTED.items()}
    assert {key for key, r in results.items() if not r.passed} == wrong
    lost = sum(BY_NAME[name].task(task).points for name, task in wrong)
    assert report.earned == report.possible - lost
    # the hints say what is wrong: the engine's shape check, gradcheck's values, the assertion
    assert "gradient of shape (5, 4) for an input of shape (4, 5)" in results["a2_matmul_reductions", "matmul"].hint
    for key in (("a3_softmax_layernorm", "softmax"), ("a4_attention", "attention_backward")):
        hint = results[key].hint
        assert hint.startswith("gradcheck failed for input 0") and "analytic" in hint and "numeric" in hint, hint
    assert "merge([5, 6, 7, 5, 6], (5, 6), 300): got [300, 6, 7, 300, 6], expected [300, 7, 300]" == \
        results["a6_bpe", "merge"].hint


def test_endless_loop_crash_and_syntax_error_cost_only_their_task(tmp_path):
    _plant(tmp_path, "a6_bpe", "### BEGIN SOLUTION\n    counts = {}\n",
           "### BEGIN SOLUTION\n    counts = {}\n    while True:\n        pass\n")
    _plant(tmp_path, "a7_sampling_kv_cache", "    order = np.argsort(-probs, kind=\"stable\")\n",
           "    import os\n    os._exit(3)\n")
    _plant(tmp_path, "a1_elementwise", "e = np.exp(-np.abs(x))", "e = np.exp(-np.abs(x)")
    (report,) = grader.grade_paths([tmp_path], ASSIGNMENTS, timeout=2)
    results = results_by_task(report)
    bad = {key: r for key, r in results.items() if not r.passed}
    assert set(bad) == {("a6_bpe", "pair_counts"), ("a7_sampling_kv_cache", "top_p"),
                        ("a1_elementwise", "sigmoid")}
    assert bad["a6_bpe", "pair_counts"].status == "timeout"
    assert bad["a7_sampling_kv_cache", "top_p"].status == "crash"
    assert "exit code 3" in bad["a7_sampling_kv_cache", "top_p"].hint
    assert "SyntaxError" in bad["a1_elementwise", "sigmoid"].hint  # the broken cell, named in the hint


def test_a_wrong_forward_costs_only_the_forward_task(tmp_path):
    """Task 4.2 grades the backward after the reference forward: a forward without its scale
    costs Task 4.1's points, not 4.2's as well."""
    _plant(tmp_path, "a4_attention", "scores = (q @ k.swapaxes(-1, -2)) * scale", "scores = q @ k.swapaxes(-1, -2)")
    a = BY_NAME["a4_attention"]
    results = {r.task: r for r in grader.grade_file(a, tmp_path / f"{a.name}.py", timeout=60,
                                                    tasks=["attention_forward", "attention_backward"])}
    assert not results["attention_forward"].passed and "is wrong at index" in results["attention_forward"].hint
    assert results["attention_backward"].passed, results["attention_backward"].hint


def test_a_backward_returning_a_bare_array_gets_a_hint_saying_so(tmp_path):
    _plant(tmp_path, "a3_softmax_layernorm", "        return (grad,)\n", "        return grad\n")
    a = BY_NAME["a3_softmax_layernorm"]
    (result,) = grader.grade_file(a, tmp_path / f"{a.name}.py", timeout=60, tasks=["softmax"])
    assert "Softmax.backward returned an array, not a tuple" in result.hint and "(grad,)" in result.hint


def test_a_stray_top_level_loop_is_reported_with_its_line(tmp_path):
    a = BY_NAME["a6_bpe"]
    text = release_py(a) + "\n# %%\nscratch = 0\nwhile True:\n    scratch += 1\n"
    (tmp_path / "a6_bpe.py").write_text(text, encoding="utf-8")
    line = len(text.splitlines()) - 1  # the while
    (result,) = grader.grade_file(a, tmp_path / "a6_bpe.py", timeout=2, tasks=["pair_counts"])
    assert result.status == "timeout"
    assert f"the statement at a6_bpe.py line {line} did not finish (a loop at the top level?)" in result.hint


def test_memory_beyond_the_limit_fails_only_that_task(tmp_path):
    _plant(tmp_path, "a6_bpe", "    counts = {}\n    for pair", "    counts = {}\n    hog = bytearray(8 << 30)\n    for pair")
    a = BY_NAME["a6_bpe"]
    results = {r.task: r for r in grader.grade_file(a, tmp_path / "a6_bpe.py", timeout=30, memory_mb=2048,
                                                    tasks=["pair_counts", "merge"])}
    line = (tmp_path / "a6_bpe.py").read_text(encoding="utf-8").splitlines().index("    hog = bytearray(8 << 30)") + 1
    assert results["pair_counts"].status == "fail"
    assert results["pair_counts"].hint == f"MemoryError (a6_bpe.py line {line}, in pair_counts)"
    assert results["merge"].passed


def test_a_py_and_an_ipynb_for_one_assignment_are_both_graded_and_the_better_kept(tmp_path):
    a = BY_NAME["a6_bpe"]
    alice = tmp_path / "class" / "alice"
    cli.write_release([a], alice, "py")  # the starter code: 0 points
    (alice / "README.md").unlink()
    cli.write_nbgrader_source([a], tmp_path / "nb")
    shutil.copy(tmp_path / "nb" / a.name / f"{a.name}.ipynb", alice / "final.ipynb")  # full marks
    (report,) = grader.grade_paths([tmp_path / "class"], [a], by_student=True, timeout=60)
    assert report.earned == a.points and {r.file for r in report.results} == {str(alice / "final.ipynb")}
    (note,) = report.notes
    assert note.startswith("a6_bpe: 2 files graded (") and note.endswith("); kept the best, final.ipynb")
    assert "final.ipynb 10/10" in note and "a6_bpe.py 0/10" in note
    assert "note: a6_bpe: 2 files graded" in grader.format_table([report])


def test_relative_tasks_folder(tmp_path, monkeypatch, capsys):
    """``--tasks mycourse/``, the guide's own example, from the course folder."""
    (tmp_path / "mycourse").mkdir()
    shutil.copy(BY_NAME["a6_bpe"].path, tmp_path / "mycourse")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--tasks", "mycourse/", "grade", "mycourse/a6_bpe.py"]) == 0
    assert "total                        10/10" in capsys.readouterr().out


# ----------------------------------------------------------------------------- the commands
def _table_rows(text):
    """(assignment, task, earned, possible, result) for each task row of a printed table."""
    rows = []
    for line in text.splitlines():
        match = re.match(r"^(a\d\S*)\s+(\d+\.\d+) (\S+)\s+([\d.]+)/([\d.]+)\s+(\S+)", line)
        if match:
            a, number, task, earned, possible, result = match.groups()
            rows.append((a, task, float(earned), float(possible), result.lower()))
    return rows


def test_grade_command_prints_a_table_and_json_and_csv_that_agree(planted, tmp_path, capsys):
    folder, _ = planted
    json_path, csv_path = tmp_path / "grades.json", tmp_path / "grades.csv"
    assert cli.main(["grade", str(folder), "--json", str(json_path), "--csv", str(csv_path)]) == 0
    table = capsys.readouterr().out
    rows = _table_rows(table)
    data = json.loads(json_path.read_text())
    (student,) = data["students"]
    from_json = [(a["assignment"], t["task"], t["earned"], t["points"], t["status"])
                 for a in student["assignments"] for t in a["tasks"]]
    assert rows == from_json and len(rows) == len({k for k in ALL_TASKS if k[0] in PLANTED})
    assert "total" in table and f"{student['earned']:g}/{student['possible']:g}" in table
    for a in student["assignments"]:
        assert a["earned"] == sum(t["earned"] for t in a["tasks"])
        for t in a["tasks"]:
            assert t["passed"] == (t["status"] == "pass") and (t["hint"] == "") == t["passed"]
    (row,) = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert float(row["total"]) == student["earned"]
    assert row["a2_matmul_reductions/matmul"] == "0" and row["a2_matmul_reductions/sum"] == "2"


def test_grading_by_student_finds_renamed_files_and_counts_missing_ones(tmp_path, capsys):
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    cli.write_release([BY_NAME["a6_bpe"]], bob)
    (bob / "a6_bpe.py").rename(bob / "my homework (final).py")  # identified by its content
    alice.mkdir()
    shutil.copy(BY_NAME["a6_bpe"].path, alice / "a6_bpe.py")
    shutil.copy(BY_NAME["a7_sampling_kv_cache"].path, alice / "submission_a7_sampling_kv_cache.py")
    json_path = tmp_path / "grades.json"
    assert cli.main(["grade", str(tmp_path), "--students", "--json", str(json_path)]) == 0
    summary = capsys.readouterr().out.split("summary\n")[1].splitlines()
    assert summary[2].split() == ["alice", "10/10", "9/9", "19/19"]
    assert summary[3].split() == ["bob", "0/10", "0/9", "0/19"]
    data = json.loads(json_path.read_text())
    scores = {s["student"]: {a["assignment"]: a["earned"] for a in s["assignments"]} for s in data["students"]}
    assert scores == {"alice": {"a6_bpe": 10, "a7_sampling_kv_cache": 9},
                      "bob": {"a6_bpe": 0, "a7_sampling_kv_cache": 0}}
    bob_a7 = [a for a in data["students"][1]["assignments"] if a["assignment"] == "a7_sampling_kv_cache"][0]
    assert {t["status"] for t in bob_a7["tasks"]} == {"missing"}


def test_visible_only_runs_only_the_tests_students_see(tmp_path):
    # a Max that ignores ties passes the visible tests and fails the hidden one
    _plant(tmp_path, "a2_matmul_reductions", "return (is_max * g / is_max.sum(axis=axis, keepdims=True),)",
           "return (is_max * g,)")
    a = BY_NAME["a2_matmul_reductions"]
    visible = results_by_task(grader.StudentReport("s", grader.grade_file(a, tmp_path / f"{a.name}.py",
                                                                          visible_only=True)))
    full = results_by_task(grader.StudentReport("s", grader.grade_file(a, tmp_path / f"{a.name}.py")))
    assert visible[a.name, "max"].passed and not full[a.name, "max"].passed
    assert "ties" in full[a.name, "max"].hint


def test_list_release_and_check_commands(tmp_path, capsys):
    assert cli.main(["list"]) == 0
    listing = capsys.readouterr().out
    for a in ASSIGNMENTS:
        assert a.name in listing and all(t.id in listing for t in a.tasks)
    assert cli.main(["release", "--out", str(tmp_path), "--format", "both", "--assignment", "a6_bpe"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "a6_bpe.ipynb", "a6_bpe.py"]
    assert cli.main(["grade", str(tmp_path / "nothing here")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # never overwrite the solutions
        cli.main(["release", "--out", str(builtin_tasks_dir())])
    tasks = tmp_path / "mytasks"  # a teacher's own folder of assignments, checked like the built-in ones
    tasks.mkdir()
    shutil.copy(BY_NAME["a6_bpe"].path, tasks)
    assert cli.main(["--tasks", str(tasks), "check"]) == 0
    assert "ok   a6_bpe: solution 10/10, release 0/10" in capsys.readouterr().out
    broken = BY_NAME["a6_bpe"].text.replace("counts[pair] = counts.get(pair, 0) + 1", "counts[pair] = 1", 1)
    (tasks / "a6_bpe.py").write_text(broken, encoding="utf-8")
    assert cli.main(["--tasks", str(tasks), "check"]) == 1
    assert "solution fails 6.1 pair_counts" in capsys.readouterr().out
    (tasks / "a6_bpe.py").write_text("# %% solution\nx = 1\n", encoding="utf-8")
    assert cli.main(["--tasks", str(tasks), "list"]) == 2
    assert "a solution cell without ### BEGIN SOLUTION" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the format
def test_notebooks_carry_nbgrader_metadata():
    """What nbgrader's generate_assignment checks: valid unique grade ids, points on grade
    cells, solution regions only in solution cells, hidden tests only in grade cells; and
    the release notebook is what its ClearSolutions/ClearHiddenTests would make."""
    for a in ASSIGNMENTS:
        nb = to_notebook(a)
        nbformat.validate(nb)
        ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells]
        assert len(ids) == len(set(ids)) and all(re.match(r"^[a-zA-Z0-9_\-]+$", i) for i in ids)
        released = to_notebook(a, release=True)
        for cell, student in zip(nb.cells, released.cells):
            meta = cell.metadata["nbgrader"]
            assert meta["schema_version"] == 3
            if meta["grade"]:
                assert meta["points"] > 0 and meta["locked"] and meta["grade_id"] == cell.metadata["tinyllm"]["task"]
            if BEGIN_SOLUTION in cell.source:
                assert meta["solution"]
            if BEGIN_HIDDEN in cell.source:
                assert meta["grade"]
            assert student.source == (release_code(cell.source) if meta["solution"] or meta["grade"] else cell.source)
            # what Jupyter enforces in the student's notebook: only answers are editable, nothing deletable
            assert student.metadata["editable"] is meta["solution"] and student.metadata["deletable"] is False
        assert [c.kind for c in cells_from_notebook(nb)] == [c.kind for c in a.cells]


def test_release_replaces_each_solution_with_nbgraders_stub_at_its_indentation():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n"
    assert release_code(source) == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    tests = "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(2) == 3\n### END HIDDEN TESTS\nok = 1"
    assert release_code(tests) == "assert f(1) == 2\nok = 1"


_STEP = "# %% solution\ndef step(x, p, cache):\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION\n"


@pytest.mark.parametrize("text, message", [
    ('# %% solution\nx = 1\n# %% tests task="t" points=1\nassert x\n', "without ### BEGIN SOLUTION"),
    ('# %%\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n# %% tests task="t" points=1\npass\n', "in a code cell"),
    ('# %% solution\n### BEGIN SOLUTION\nx = 1\n# %% tests task="t" points=1\npass\n', "without ### END SOLUTION"),
    ('# %% tests points=1\npass\n', 'needs task="name"'),
    ('# %% tests task="t" points=0\npass\n', "points=N with N > 0"),
    ('# %% tests task="t" points=1\npass\n# %% tests task="t" points=1\npass\n', "two tests cells"),
    ('# %% tests task="t" points=1\n### BEGIN HIDDEN TESTS\npass\n', "without END HIDDEN TESTS"),
    ("# %% [markdown]\n# just text\n", "nothing to grade"),
    ("# %% exercise\npass\n", "unknown cell kind"),
    ('# %% tests task="t" points=1\nx = 1\ntl.gradcheck(f, x)\n', "ends with an expression that has a value"),
    ('# %% tests task="t" points=1\nassert f()\n### BEGIN HIDDEN TESTS\nassert g()\n### END HIDDEN TESTS\n'
     'x\n', "tests cell ends with an expression"),
    ('# %% tests task="t" points=1 forbid=3\npass\n', "forbid= takes a string in quotes"),
    (_STEP + '# %% tests task="t" points=1 inplace="step"\npass\n', 'inplace="step" names no argument: write '
                                                                        'step:cache'),
    (_STEP + '# %% tests task="t" points=1 inplace="step:p,kv"\npass\n', "step() has no argument 'kv' "
                                                                          "(it takes x, p, cache)"),
    (_STEP + '# %% tests task="t" points=1 inplace="stop:p"\npass\n', "no solution cell defines a function stop()"),
])
def test_format_errors_are_explained(text, message):
    with pytest.raises(AssignmentFormatError, match=re.escape(message)):
        validate(parse_py(text, "a9.py"), "a9.py")


def test_students_files_are_read_leniently():
    cells = parse_py("# %% my scratch cell\nx = 1\n# %% [markdown]\n# notes\n", "s.py", strict=False)
    assert [(c.kind, c.source) for c in cells] == [("code", "x = 1"), ("markdown", "notes")]
