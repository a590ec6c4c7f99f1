"""The chapters: two editions per chapter (chapters/zh, chapters/en) written by one builder
(chapters/build/chNN_*.py). The saved editions must be exactly their builder's cells, from a
full run, with clean outputs (a figure in every cell that shows one; no error, warning or
missing glyph); both editions must run in fast mode (TINYLLM_FAST=1 shrinks iteration
counts, the cells stay the same); the index must be the one make_index.py writes."""
import glob
import os
import re
import subprocess
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "chapters", "build")
LANGS = ("zh", "en")
BUILDERS = sorted(glob.glob(os.path.join(BUILD, "ch[0-9][0-9]_*.py")))
# builders of the second edition (nbtools.Chapter) and of the first (one English notebook in chapters/)
CHAPTERS = [b for b in BUILDERS if re.search(r"^\w+ = Chapter\(", open(b, encoding="utf-8").read(), re.M)]


def ids(paths):
    return [os.path.basename(p) for p in paths]


def edition(builder, lang):
    name = os.path.basename(builder)[2:-3]  # ch03_self_attention.py -> 03_self_attention
    return nbformat.read(os.path.join(ROOT, "chapters", lang, f"{name}.ipynb"), as_version=4)


@pytest.fixture
def nbtools(monkeypatch):
    monkeypatch.syspath_prepend(BUILD)
    import nbtools
    return nbtools


def run_editions(builder, tmp_path, langs=LANGS):
    """Run a builder's editions in fast mode side by side (one kernel each); the finished
    processes, by language."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the chapters' run folders (tempfile.mkdtemp) land here
    procs = {lang: subprocess.Popen([sys.executable, builder, "--fast", "--lang", lang, "--out", str(tmp_path)],
                                    cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for lang in langs}
    return {lang: (proc, *proc.communicate(timeout=900)) for lang, proc in procs.items()}


@pytest.mark.parametrize("builder", CHAPTERS, ids=ids(CHAPTERS))
def test_both_editions_run_in_fast_mode_with_clean_outputs(builder, tmp_path):
    """The builder's own fast run fails on an error, a warning, text on stderr, a missing
    glyph, a plt.show() without a figure, or prose quoting a value no cell recorded."""
    for lang, (proc, _, stderr) in run_editions(builder, tmp_path).items():
        assert proc.returncode == 0, f"{lang} edition:\n{stderr[-4000:]}"


@pytest.mark.parametrize("builder", BUILDERS, ids=ids(BUILDERS))
def test_saved_notebooks_are_exactly_their_builders_full_run(builder):
    """--check: the saved editions have the builder's cells (prose filled with the values their
    own run recorded), come from a full run, and their outputs are clean."""
    run = subprocess.run([sys.executable, builder, "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("builder", CHAPTERS, ids=ids(CHAPTERS))
def test_the_editions_share_every_code_cell(builder, nbtools):
    """Only the setup cell's language line and the starter cells' translated comments differ;
    figure and printed strings go through tr()."""
    zh, en = (edition(builder, lang) for lang in LANGS)
    assert [c.cell_type for c in zh.cells] == [c.cell_type for c in en.cells]
    for a, b in zip(zh.cells, en.cells):
        if a.cell_type == "code":
            a_code, b_code = (nbtools.without_comment_lines(c.source) for c in (a, b))
            assert a_code.replace('LANG = "zh"', 'LANG = "en"', 1) == b_code
            assert len(a.source.splitlines()) == len(b.source.splitlines())  # a comment for a comment


def test_a_starter_cell_comment_comes_in_each_editions_language(nbtools):
    source = "def f(x):\n    #zh: 在这里写\n    #en: write it here\n    return x  # stays\n"
    assert nbtools.localized_comments(source, "zh") == "def f(x):\n    # 在这里写\n    return x  # stays\n"
    assert nbtools.localized_comments(source, "en") == "def f(x):\n    # write it here\n    return x  # stays\n"
    with pytest.raises(ValueError, match="without its pair"):
        nbtools.localized_comments("#zh: 只有中文\nx = 1\n", "zh")
    with pytest.raises(ValueError, match="without its pair"):  # the pair's lines must share indentation
        nbtools.localized_comments("  #zh: 中文\n#en: English\n", "en")


@pytest.mark.parametrize("builder", CHAPTERS, ids=ids(CHAPTERS))
def test_the_chinese_edition_is_written_in_chinese(builder, nbtools):
    zh, en = (nbtools.prose_counts(edition(builder, lang)) for lang in LANGS)
    assert zh["chinese_characters"] > 3 * zh["english_words"], zh
    assert en["english_words"] > 3 * en["chinese_characters"], en
    assert zh["figures"] == en["figures"] > 0


def test_the_index_is_generated_from_the_builders_and_their_runs():
    run = subprocess.run([sys.executable, os.path.join(BUILD, "make_index.py"), "--check"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_every_article_section_has_its_chapter_with_the_chinese_heading():
    headings = ["背景介绍", "核心概念与联系", "核心算法原理", "数学模型和公式", "项目实践",
                "实际应用场景", "工具和资源推荐", "未来发展趋势与挑战", "常见问题与解答"]
    notebooks = sorted(glob.glob(os.path.join(ROOT, "chapters", "zh", "*.ipynb")))
    text = "".join(open(p, encoding="utf-8").read() for p in notebooks)
    assert [h for h in headings if h not in text] == []


# ----------------------------------------------------------------------------- the machinery
def test_output_problems_names_every_kind_of_dirty_output(nbtools):
    new = nbformat.v4
    nb = new.new_notebook(cells=[
        new.new_markdown_cell("loss {{loss:.3f}}"),
        new.new_code_cell("plt.plot([1, 2]); plt.show()"),
        new.new_code_cell("x = 1", outputs=[new.new_output("stream", name="stderr", text="UserWarning: careful\n")]),
        new.new_code_cell("y = 1", outputs=[new.new_output("error", ename="ValueError", evalue="bad", traceback=[])]),
        new.new_code_cell("z = 1", outputs=[new.new_output(
            "stream", name="stdout", text="Glyph 40856 (\\N{CJK UNIFIED IDEOGRAPH-9F98}) missing from font(s) DejaVu Sans.\n")]),
        new.new_code_cell("plt.show()", outputs=[new.new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure>"})]),
    ])
    problems = nbtools.output_problems(nb)
    assert problems[0] == "cell 0: an unfilled placeholder {{loss:.3f}}"
    assert problems[1] == "cell 1: calls plt.show() but holds no figure"
    assert problems[2].startswith("cell 2: wrote to stderr: UserWarning")
    assert problems[3] == "cell 3: raised ValueError: bad"
    assert problems[4].startswith("cell 4: an output says 'Glyph 40856")
    assert len(problems) == 5  # the last cell is clean


def test_render_fills_values_and_names_one_no_cell_recorded(nbtools):
    values = {"loss": 2.34567, "steps": 1200, "share": 0.583}
    assert nbtools.render("{{loss:.3f}} after {{ steps:, }} steps, {{share:.0%}}; $\\frac{1}{2}$", values) == \
        "2.346 after 1,200 steps, 58%; $\\frac{1}{2}$"
    with pytest.raises(KeyError, match=r"quotes \{\{accuracy\}\}, which no cell passed to record\(\)"):
        nbtools.render("{{accuracy}}", values, "cell 3")


def test_the_check_reports_a_changed_cell(nbtools):
    new = nbformat.v4
    mine = [new.new_markdown_cell("# Title"), new.new_code_cell("x = 1\nprint(x)")]
    assert nbtools.cell_differences(mine, [new.new_markdown_cell("# Title"), new.new_code_cell("x = 1\nprint(x)")]) == []
    theirs = [new.new_markdown_cell("# Title"), new.new_code_cell("x = 2\nprint(x)"), new.new_markdown_cell("more")]
    assert nbtools.cell_differences(mine, theirs) == [
        "2 cells in the builder, 3 in the notebook", "cell 1 (code), line 1: builder 'x = 1', notebook 'x = 2'"]


def test_the_glossary_cell_lists_the_terms_the_chinese_prose_uses_in_order(nbtools):
    ch = nbtools.Chapter("99_toy", 99, ("玩具", "Toy"), "§0")
    ch.md(zh="# 玩具\n先算梯度，再看交叉熵。", en="# Toy\nThe gradient, then the cross-entropy.")
    assert [zh for zh, _, _ in ch.glossary_terms()] == ["梯度", "交叉熵"]
    cells = ch.notebook("en").cells
    assert cells[1].source.splitlines()[2:] == ["| English | 中文 | tinyllm |", "|---|---|---|",
                                                "| gradient | 梯度 | `Tensor.grad`, `tl.gradcheck` |",
                                                "| cross-entropy | 交叉熵 | `F.cross_entropy` |"]


def test_a_chinese_figure_draws_with_the_shipped_font_and_a_missing_glyph_fails_the_build(tmp_path):
    """The en edition's title (common hanzi) draws; the zh edition's (a character outside
    GB 2312, hence outside the shipped font) makes matplotlib warn, and the build refuses."""
    builder = tmp_path / "ch99_toy.py"
    builder.write_text(
        f"import sys\nsys.path.insert(0, {BUILD!r})\nfrom nbtools import Chapter\n"
        "ch = Chapter('99_toy', 99, ('玩具', 'Toy'), '§0')\n"
        "ch.md(zh='# 玩具', en='# Toy')\n"
        "ch.setup()\n"
        "ch.code('plt.plot([1, 2]); plt.title(tr(\"龘\", \"损失 loss\")); plt.show()')\n"
        "ch.build()\n", encoding="utf-8")
    runs = run_editions(str(builder), tmp_path)
    proc, _, stderr = runs["en"]
    assert proc.returncode == 0, stderr
    assert "image/png" in (tmp_path / "en" / "99_toy.ipynb").read_text(encoding="utf-8")
    proc, _, stderr = runs["zh"]
    assert proc.returncode != 0 and "missing from font" in stderr, stderr
    assert not (tmp_path / "zh" / "99_toy.ipynb").exists()
