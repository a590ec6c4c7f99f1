"""Every chapter notebook runs top to bottom (in fast mode: TINYLLM_FAST=1 shrinks iteration
counts, the cells stay the same). A notebook that raises fails the test."""
import glob
import os

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "chapters", "*.ipynb")))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p) for p in NOTEBOOKS])
def test_chapter_runs_top_to_bottom(path, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLLM_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the chapters' run folders (tempfile.mkdtemp) land here
    monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": os.path.dirname(path)}})
    client.execute()  # raises CellExecutionError naming the cell on any error


def test_every_seed_section_has_its_chapter_with_the_chinese_heading():
    if len(NOTEBOOKS) < 9:
        pytest.skip(f"{len(NOTEBOOKS)} of 9 chapters written so far")
    headings = ["背景介绍", "核心概念与联系", "核心算法原理", "数学模型和公式", "项目实践",
                "实际应用场景", "工具和资源推荐", "未来发展趋势与挑战", "常见问题与解答"]
    text = "".join(open(p, encoding="utf-8").read() for p in NOTEBOOKS)
    assert [h for h in headings if h not in text] == []


BUILDERS = sorted(glob.glob(os.path.join(ROOT, "chapters", "build", "ch0*_*.py")))


@pytest.mark.parametrize("builder", BUILDERS, ids=[os.path.basename(p) for p in BUILDERS])
def test_each_notebook_has_exactly_its_builders_cells(builder):
    """The committed notebook and the script that generates it (chapters/build/) agree cell for
    cell, so an edit to one alone is caught."""
    import subprocess
    import sys
    run = subprocess.run([sys.executable, builder, "--check"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_the_builder_check_reports_a_changed_cell(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(ROOT, "chapters", "build"))
    from nbtools import Notebook
    nb = Notebook()
    nb.md("# Title")
    nb.code("x = 1\nprint(x)")
    saved = nb.notebook()
    nbformat.write(saved, tmp_path / "a.ipynb")
    assert nb.differences(str(tmp_path / "a.ipynb")) == []
    saved.cells[1].source = "x = 2\nprint(x)"
    nbformat.write(saved, tmp_path / "a.ipynb")
    assert nb.differences(str(tmp_path / "a.ipynb")) == [
        "cell 1 (code), line 1: builder 'x = 1', notebook 'x = 2'"]
    saved.cells.append(nbformat.v4.new_markdown_cell("more"))
    nbformat.write(saved, tmp_path / "a.ipynb")
    assert "2 cells in the builder, 3 in the notebook" in nb.differences(str(tmp_path / "a.ipynb"))
