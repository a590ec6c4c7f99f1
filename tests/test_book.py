"""The book's sources (book/build.py) and the chapters' alt text, without a browser: every
figure of every chapter has alt text in its edition's language; the API reference covers every
public name; links are rewritten to the book's pages. The site itself is built and checked in
Chromium by tests/test_book_browser.py."""
import glob
import importlib
import inspect
import os
import re

import pytest

nbformat = pytest.importorskip("nbformat")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "chapters", "build")
EDITIONS = sorted(glob.glob(os.path.join(ROOT, "chapters", "zh", "*.ipynb"))
                  + glob.glob(os.path.join(ROOT, "chapters", "en", "*.ipynb")))
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


def rel(path):
    return os.path.relpath(path, ROOT).replace(os.sep, "/")


@pytest.fixture
def nbtools(monkeypatch):
    monkeypatch.syspath_prepend(BUILD)
    import nbtools
    return nbtools


@pytest.fixture
def book():
    pytest.importorskip("yaml")
    from book import build
    return build


# ----------------------------------------------------------------------------- alt text
@pytest.mark.parametrize("path", EDITIONS, ids=[rel(p) for p in EDITIONS])
def test_every_figure_has_alt_text_in_its_editions_language(path, nbtools):
    """A code cell that shows an image must give it alt text (``code(..., alt=("中文", "English"))``
    in the chapter's builder, carried into the notebook by --sync-sources), in the edition's
    language; a cell that shows no image must not carry stale alt text."""
    nb = nbformat.read(path, as_version=4)
    lang = os.path.basename(os.path.dirname(path))
    builder = f"chapters/build/ch{os.path.basename(path)[:-6]}.py"
    missing = nbtools.figures_without_alt_text(nb)
    assert not missing, (
        f"{rel(path)}: code cells {', '.join(map(str, missing))} show a figure without alt text: give those "
        f"cells alt=(\"中文…\", \"English…\") in {builder}, then run `python {builder} --sync-sources`")
    problems = []
    for i, cell in enumerate(nb.cells):
        alt = nbtools.alt_text(cell) if cell.cell_type == "code" else None
        if alt is None:
            continue
        shows = any(k.startswith("image/") for out in cell.get("outputs", []) for k in out.get("data", {}))
        chinese = len(CJK.findall(alt))
        if not shows:
            problems.append(f"cell {i} has alt text but shows no figure")
        elif len(alt) < 40:
            problems.append(f"cell {i}: alt text {alt!r} is too short to say what the figure shows")
        elif lang == "zh" and chinese < len(alt) / 4:
            problems.append(f"cell {i}: the Chinese edition's alt text is not in Chinese: {alt[:60]!r}")
        elif lang == "en" and chinese:
            problems.append(f"cell {i}: the English edition's alt text has Chinese in it: {alt[:60]!r}")
    assert not problems, f"{rel(path)}:\n" + "\n".join(problems)


def test_alt_text_goes_into_the_cell_metadata_and_sync_sources_carries_it(nbtools, tmp_path, monkeypatch):
    ch = nbtools.Chapter("99_toy", 99, ("玩具", "Toy"), "§0")
    ch.md(zh="# 玩具", en="# Toy")
    ch.code("plt.plot([1, 2]); plt.show()", alt=("一条上升的直线。", "A rising straight line."))
    ch.code("x = 1")
    zh, en = ch.notebook("zh"), ch.notebook("en")
    assert nbtools.alt_text(zh.cells[2]) == "一条上升的直线。" and nbtools.alt_text(en.cells[2]) == "A rising straight line."
    assert zh.cells[2].metadata == {"mystnb": {"image": {"alt": "一条上升的直线。"}}}   # as MyST-NB reads it
    assert nbtools.alt_text(zh.cells[3]) is None

    # a saved edition from before the alt text: --check names the cell, --sync-sources fixes it, outputs kept
    saved = ch.notebook("en")
    del saved.cells[2].metadata["mystnb"]
    saved.cells[2].outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBOR"})]
    saved.metadata["tinyllm"] = {"lang": "en", "values": {}}
    assert nbtools.figures_without_alt_text(saved) == [2]
    assert nbtools.cell_differences(ch.notebook("en").cells, saved.cells) == [
        "cell 2: alt text 'A rising straight line.' in the builder, 'None' in the notebook (--sync-sources copies it)"]
    path = tmp_path / "99_toy.ipynb"
    nbformat.write(saved, path)
    ch._sync_sources(str(path))
    synced = nbformat.read(path, as_version=4)
    assert nbtools.alt_text(synced.cells[2]) == "A rising straight line."
    assert synced.cells[2].outputs[0]["data"]["image/png"] == "iVBOR"
    assert nbtools.figures_without_alt_text(synced) == []

    with pytest.raises(ValueError, match=r"alt must be a pair of non-empty strings \(中文, English\)"):
        ch.code("plt.show()", alt="just one language")

    # like the prose, alt text quotes the values the run recorded
    ch.code("plt.plot(losses); plt.show()", alt=("损失降到 {{loss:.2f}}。", "The loss falls to {{loss:.2f}}."))
    assert nbtools.alt_text(ch.notebook("zh", {"loss": 0.1234}).cells[4]) == "损失降到 0.12。"
    unfilled = ch.notebook("en")
    assert "cell 4: an unfilled placeholder {{loss:.2f}} in its alt text" in nbtools.output_problems(unfilled)


# ----------------------------------------------------------------------------- sources
def test_the_api_reference_documents_every_public_name(book):
    """Each name in the __all__ of the seven modules has its entry (autodoc, or a line naming
    the module or the object it is) on its module's page; the backward rules (Function
    subclasses, where the derivatives are written) follow, and tinyllm.ops has a page of them."""
    pages = book.api_pages()
    assert set(pages) == {"api/index"} | {book.page_name(m) for m in (*book.API_MODULES, book.RULES_MODULE)}
    assert ".. autoclass:: tinyllm.functional.LayerNorm" in pages["api/functional"]
    assert ".. autoclass:: tinyllm.ops.MatMul" in pages["api/ops"]
    for name in book.API_MODULES:
        module, text = importlib.import_module(name), pages[book.page_name(name)]
        for attr in module.__all__:
            entry = re.compile(rf"^\.\. (auto\w+|py:data):: {re.escape(name)}\.{attr}$", re.M)
            assert entry.search(text), f"{name}.{attr} is missing from {book.page_name(name)}"
        if any(inspect.ismodule(getattr(module, attr)) for attr in module.__all__):
            assert ".. automodule::" in text


def test_links_to_book_pages_are_rewritten_and_links_to_other_files_become_text(book):
    pages = {"chapters/zh/01_background.ipynb": "chapters/01_background.ipynb", "docs/TEACHERS.md": "teachers.md"}
    text = ("[第 1 章](zh/01_background.ipynb#1.1) · [老师](../docs/TEACHERS.md) · [代码](../tinyllm/ops.py) · "
            "[d2l](https://d2l.ai/) · [上面](#top) · ![图](../docs/bench.png)")
    assert book.relink(text, "chapters/README.md", "index.md", pages) == (
        "[第 1 章](chapters/01_background.ipynb#1.1) · [老师](teachers.md) · 代码 · "
        "[d2l](https://d2l.ai/) · [上面](#top) · 图")
    assert book.relink("[后面](02_core_concepts.ipynb)", "chapters/zh/01_background.ipynb", "chapters/01_background.ipynb",
                       {"chapters/zh/02_core_concepts.ipynb": "chapters/02_core_concepts.ipynb"}) == \
        "[后面](02_core_concepts.ipynb)"


def test_the_book_takes_the_chapters_that_exist_in_each_edition(book):
    for lang in book.LANGS:
        found = [os.path.basename(p) for p in book.chapter_notebooks(lang)]
        assert found == sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "chapters", lang, "*.ipynb")))
        assert found, f"no chapters in chapters/{lang}/"


def test_chinese_lines_of_a_paragraph_are_joined_without_a_space(book):
    """A line break inside a paragraph shows as a space; between two Chinese characters, or
    beside full-width punctuation, it must not be there, in a block quote too. Between Chinese
    and a Latin word the space stays; headings, English, fenced code and the lines that start a
    block (list items, table rows, display math) keep their lines."""
    text = ("## 3.1 架构\n先手算一遍，\n再让库函数做同样的事、\n**注意力权重**\nthen English\n中文\n"
            "```python\nx = 1  # 注释，\n继续\n```\n"
            "> **原文**：能够处理人类语言，\n> 并在众多领域\n>\n> 第二段\n\n"
            "（文本摘要，\n   text summarization）\n\n用 NumPy\n写成\n\nsaid “hi”\nand — so\n“quoted”\n\n"
            "1. 第一项。\n2. 第二项，\n   续写\n- 列表。\n| 表 |\n$$x$$")
    assert book.join_cjk_lines(text) == (
        "## 3.1 架构\n先手算一遍，再让库函数做同样的事、**注意力权重**\nthen English\n中文\n"
        "```python\nx = 1  # 注释，\n继续\n```\n"
        "> **原文**：能够处理人类语言，并在众多领域\n>\n> 第二段\n\n"
        "（文本摘要，text summarization）\n\n用 NumPy\n写成\n\nsaid “hi”\nand — so\n“quoted”\n\n"
        "1. 第一项。\n2. 第二项，续写\n- 列表。\n| 表 |\n$$x$$")
