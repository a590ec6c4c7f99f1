"""The notebook form of an assignment, with nbgrader's cell metadata.

``to_notebook`` turns an assignment file into a Jupyter notebook: markdown and plain code
cells become read-only ("locked") cells, solution cells become nbgrader "autograded answer"
cells, tests cells become "autograder tests" cells worth the task's points (their grade_id
is the task id). So nbgrader's own ``generate_assignment`` and ``autograde`` work on the
teacher's notebook (``release=False``), and ``release=True`` gives the same student notebook
that ``generate_assignment`` would. Each cell also carries ``metadata.tinyllm`` (kind, task)
for tinyllm's grader, which reads notebooks back with :func:`cells_from_notebook`.
"""
from __future__ import annotations

import json
import re

from .source import Cell, release_code

__all__ = ["to_notebook", "cells_from_notebook", "read_notebook"]


def _nbgrader(grade_id, *, grade=False, solution=False, locked=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return meta


def to_notebook(assignment, release=False):
    """An ``nbformat`` v4 notebook of ``assignment``; ``release=True``: the student version."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["tinyllm"] = {"assignment": assignment.name}
    solution_count = 0
    for index, cell in enumerate(assignment.cells):
        tag = {"kind": cell.kind}
        if cell.kind == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source)
            new.metadata["nbgrader"] = _nbgrader(f"{assignment.name}-text-{index}", locked=True)
        elif cell.kind == "code":
            new = nbformat.v4.new_code_cell(cell.source)
            new.metadata["nbgrader"] = _nbgrader(f"{assignment.name}-code-{index}", locked=True)
        elif cell.kind == "solution":
            solution_count += 1
            new = nbformat.v4.new_code_cell(release_code(cell.source) if release else cell.source)
            new.metadata["nbgrader"] = _nbgrader(f"{assignment.name}-solution-{solution_count}", solution=True)
        else:  # tests
            tag.update(task=cell.task, points=cell.metadata["points"], title=cell.metadata.get("title", cell.task))
            new = nbformat.v4.new_code_cell(release_code(cell.source) if release else cell.source)
            new.metadata["nbgrader"] = _nbgrader(cell.task, grade=True, locked=True,
                                                 points=cell.metadata["points"])
        new.metadata["tinyllm"] = tag
        if release:  # what Jupyter itself enforces: locked cells cannot be edited, no cell deleted
            new.metadata["editable"] = new.metadata["nbgrader"]["solution"]
            new.metadata["deletable"] = False
        nb.cells.append(new)
    return nb


_MAGIC = re.compile(r"^(\s*)([%!].*)$")


def _without_magics(source: str) -> str:
    """IPython's ``%magic`` and ``!shell`` lines are not Python: comment them out."""
    return "\n".join(_MAGIC.sub(r"\1pass  # \2", line) for line in source.split("\n"))


def cells_from_notebook(nb):
    """The cells of a (student's) notebook, kinds read from ``metadata.tinyllm`` or, when a
    tool dropped it, from nbgrader's metadata. Cells the student added count as code.
    ``nb``: the notebook as a dict (plain JSON, or an ``nbformat`` node)."""
    cells = []
    for index, cell in enumerate(nb.get("cells", [])):
        source = cell.get("source", "")
        source = source if isinstance(source, str) else "".join(source)
        metadata = cell.get("metadata", {})
        tag, grader = metadata.get("tinyllm", {}), metadata.get("nbgrader", {})
        if cell.get("cell_type") == "markdown":
            kind, meta = "markdown", {}
        elif cell.get("cell_type") != "code":
            continue
        elif tag.get("kind") in ("code", "solution", "tests"):
            kind, meta = tag["kind"], {k: v for k, v in tag.items() if k != "kind"}
        elif grader.get("grade"):
            kind, meta = "tests", {"task": grader.get("grade_id"), "points": grader.get("points")}
        elif grader.get("solution"):
            kind, meta = "solution", {}
        else:
            kind, meta = "code", {}
        if kind != "markdown":
            source = _without_magics(source)
        cells.append(Cell(kind, source, 1, {**meta, "cell_index": index, "grade_id": grader.get("grade_id")}))
    return cells


def read_notebook(path):
    """A notebook file as a dict. Plain JSON, not ``nbformat``: the grader reads hundreds of
    notebooks, and importing nbformat costs more than grading one."""
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    if not isinstance(nb, dict) or nb.get("nbformat", 0) < 4:
        raise ValueError(f"{path} is not a version-4 Jupyter notebook (save it again from Jupyter)")
    return nb
