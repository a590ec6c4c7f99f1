"""Build the book: the chapters, their index and glossary, the teachers' guide and the API
reference as one website, in Chinese and in English, into _build/html/.

    python book/build.py              # both editions, then open _build/html/index.html
    python book/build.py --lang en    # one edition (the other keeps its last build)
    python book/build.py --out DIR    # write DIR/html instead of _build/html

Jupyter Book 1 (Sphinx, MyST-NB, the book theme) reads the committed notebooks as they are:
nothing is executed. The sources of each edition are laid out in _build/src/<lang>/ (the
chapters of chapters/<lang>/, chapters/README.md's part in that language and its glossary,
docs/TEACHERS.md, one API page per module written from the modules' ``__all__``), then the
two editions are built side by side, one process each, into _build/html/zh/ and
_build/html/en/. _build/html/index.html lets the reader choose. MathJax comes from the
sphinx-mathjax-offline package and the Chinese font from chapters/fonts/: the site makes no
request beyond its own folder. Any Sphinx warning (a broken link, a docstring that does not
parse) fails the build.
"""
from __future__ import annotations

import argparse
import glob
import html
import os
import posixpath
import re
import shutil
import subprocess
import sys
import time

import yaml

BOOK = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BOOK)
sys.path[:0] = [ROOT, os.path.join(ROOT, "chapters", "build")]   # tinyllm from this clone; the chapters' tools
from make_index import TEXT  # noqa: E402  (the README's headings, in both languages)

LANGS = ("zh", "en")
OTHER = {"zh": "en", "en": "zh"}
# The API reference: one page per module, every name in the module's __all__; then the backward
# rules (the Function subclasses, derivative in each docstring) of the ops and fused functions.
API_MODULES = ("tinyllm", "tinyllm.functional", "tinyllm.nn", "tinyllm.optim", "tinyllm.models",
               "tinyllm.data", "tinyllm.generate")
RULES_MODULE = "tinyllm.ops"
WORDS = {
    "zh": {"title": "tinyllm：从零写一个大语言模型", "chapters": "章节", "reference": "参考",
           "glossary": "术语表", "teachers": "教师指南（英文）", "api": "API 参考（英文）",
           "search": "搜索本书……", "switch": "English", "switch_label": "Read this page in English",
           "index_intro": "本书的每一章都是一个 Jupyter 笔记本，这里显示的是它完整运行后的样子（网站不会重新运行它）。"},
    "en": {"title": "tinyllm: a language model from scratch", "chapters": "Chapters", "reference": "Reference",
           "glossary": "Glossary", "teachers": "Teachers' guide", "api": "API reference",
           "search": "Search this book...", "switch": "中文", "switch_label": "阅读本页的中文版",
           "index_intro": "Each chapter of this book is a Jupyter notebook, shown here as its full run left it "
                          "(the site does not run it again)."},
}
# Pages that are written in English in both editions (their <html lang> says so).
ENGLISH_PAGES = ("teachers", "api/", "genindex", "py-modindex")


def chapter_notebooks(lang: str) -> list[str]:
    """The chapters of edition ``lang`` that exist: chapters/<lang>/NN_name.ipynb, in order."""
    return sorted(glob.glob(os.path.join(ROOT, "chapters", lang, "[0-9][0-9]_*.ipynb")))


# ----------------------------------------------------------------------------- sources
def readme_sections() -> dict[str, str]:
    """chapters/README.md cut at its ``## `` headings: heading line -> the text under it."""
    text = open(os.path.join(ROOT, "chapters", "README.md"), encoding="utf-8").read()
    sections, heading = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line.strip()
            sections[heading] = []
        elif heading:
            sections[heading].append(line)
    return {h: "\n".join(lines).strip() + "\n" for h, lines in sections.items()}


LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def relink(text: str, source: str, doc: str, pages: dict[str, str]) -> str:
    """Rewrite the Markdown links of ``text``, written at repository path ``source`` and shown
    as page ``doc`` (both relative, POSIX), so that a link to a file that is a page of the book
    (``pages``: repository path -> page path) points at that page; a link to any other file of
    the repository, which the site does not have, becomes its text. Web links stay."""
    def one(match):
        bang, label, target = match.groups()
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            return match.group(0)
        path, _, anchor = target.partition("#")
        where = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
        if where not in pages:
            return label
        new = posixpath.relpath(pages[where], posixpath.dirname(doc) or ".")
        return f"{bang}[{label}]({new}{'#' + anchor if anchor else ''})"
    return LINK.sub(one, text)


# Han characters and CJK punctuation: a line break between two of them is not a space.
CJK_CHAR = re.compile("[\u2e80-\u2fdf\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
# Full-width punctuation (，。：；（）、) brings its own space: no break beside it is a space either.
# (Curly quotes, dashes and ellipses are English punctuation too: they are not in it.)
CJK_PUNCTUATION = re.compile("[\u3000-\u303f\uff00-\uffef]")
QUOTE = re.compile(r"^\s*(?:>\s?)+")           # the marks of a block quote line ("> ", "> > ")
# A line that starts a block of its own (list item, heading, table row, display math, fence,
# directive, HTML): never joined to the line above.
BLOCK_START = re.compile(r"^\s*(?:[-+*]\s|\d+[.)]\s|#|\||\$\$|```|~~~|:::|<)")


def join_cjk_lines(markdown: str) -> str:
    """Join the lines of a Markdown paragraph (in a block quote too) where one ends and the
    next begins with Chinese, or where either side of the break is full-width punctuation
    (**emphasis** marks aside): a browser shows such a line break as a space, which Chinese
    text does not have. Between Chinese and a Latin word the space stays. Headings, fenced
    code and a line that starts a block (a list item, a table row...) are left alone."""
    lines, fenced = [], False
    for line in markdown.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        previous = lines[-1].rstrip() if lines else ""
        quote, before = (QUOTE.match(text) for text in (line, previous))
        quote, before = (m.group(0) if m else "" for m in (quote, before))
        body = line[len(quote):]
        last, first = previous.rstrip("*_")[-1:], body.strip().lstrip("*_")[:1]   # past **emphasis**
        chinese = last and first and ((CJK_CHAR.match(last) and CJK_CHAR.match(first))
                                      or CJK_PUNCTUATION.match(last) or CJK_PUNCTUATION.match(first))
        if (not fenced and chinese and quote.replace(" ", "") == before.replace(" ", "")
                and not BLOCK_START.match(body) and not previous[len(before):].lstrip().startswith("#")):
            lines[-1] = previous + body.strip()
        else:
            lines.append(line)
    return "\n".join(lines)


def write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def api_pages() -> dict[str, str]:
    """The API reference in reStructuredText: page name -> text. Every public name of every
    module in API_MODULES (its ``__all__``) is documented by autodoc where it is public; a
    public submodule that has no page of its own gets a section on its parent's page."""
    import importlib
    import inspect
    modules = {name: importlib.import_module(name) for name in API_MODULES}
    documented = {}                                # id(object) -> the public path it is documented at
    for name, module in modules.items():
        for attr in module.__all__:
            obj = getattr(module, attr)
            if not inspect.ismodule(obj) and (inspect.isclass(obj) or callable(obj)):
                documented.setdefault(id(obj), f"{name}.{attr}")

    def entries(module, path: str, heading_char: str) -> list[str]:
        lines = []
        for attr in module.__all__:
            obj, full = getattr(module, attr), f"{path}.{attr}"
            if inspect.ismodule(obj):
                if obj.__name__ in modules:
                    lines += [f".. py:data:: {full}", "   :no-index:", "",
                              f"   The module :doc:`{obj.__name__} </{page_name(obj.__name__)}>`.", ""]
                else:
                    lines += submodule(obj, full, heading_char)
            elif documented.get(id(obj), full) != full:
                lines += [f".. py:data:: {full}", "   :no-index:", "",
                          f"   The same object as :py:obj:`{documented[id(obj)]}`.", ""]
            elif inspect.isclass(obj) and obj.__module__.split(".")[0] == "numpy":
                lines += [f".. py:data:: {full}", f"   :value: numpy.{obj.__name__}", "",
                          f"   The NumPy type ``numpy.{obj.__name__}``, used as a dtype "
                          f"(``tl.{attr}`` as ``torch.{attr.rstrip('_')}``).", ""]
            elif inspect.isclass(obj):
                lines += [f".. autoclass:: {full}", "   :members:", "   :show-inheritance:", ""]
            elif callable(obj):
                lines += [f".. autofunction:: {full}", ""]
            else:
                lines += [f".. py:data:: {full}", f"   :value: {obj!r}", ""]
        return lines

    def submodule(obj, full: str, heading_char: str) -> list[str]:
        title = f"``{full}``"
        return [title, heading_char * len(title), "", f".. automodule:: {full}", "   :no-members:", "",
                *entries(obj, full, "^"), ""]

    def backward_rules(module) -> list[str]:
        """The module's own Function subclasses that its __all__ does not list, in source order."""
        from tinyllm import Function
        rules = sorted((inspect.getsourcelines(obj)[1], name) for name, obj in vars(module).items()
                       if inspect.isclass(obj) and issubclass(obj, Function) and obj is not Function
                       and obj.__module__ == module.__name__ and name not in getattr(module, "__all__", ()))
        if not rules:
            return []
        return ["Backward rules", "-" * 14, "",
                "The :class:`~tinyllm.Function` subclasses that compute the functions above: forward and "
                "backward side by side on raw arrays, the derivative in each docstring (``y`` the output, "
                "``g = ∂L/∂y`` the incoming gradient).", "",
                *(line for _, name in rules for line in (f".. autoclass:: {module.__name__}.{name}", "")), ""]

    pages = {}
    for name, module in modules.items():
        title = f"``{name}``"
        pages[page_name(name)] = "\n".join([
            title, "=" * len(title), "", f".. automodule:: {name}", "   :no-members:", "",
            f".. currentmodule:: {name}", "", ".. autosummary::", "   :nosignatures:", "",
            *(f"   {attr}" for attr in module.__all__ if not inspect.ismodule(getattr(module, attr))), "",
            *entries(module, name, "-"), *backward_rules(module)]) + "\n"
    ops = importlib.import_module(RULES_MODULE)
    title = f"``{RULES_MODULE}``: the primitive operations"
    pages[page_name(RULES_MODULE)] = "\n".join([
        title, "=" * len(title), "", f".. automodule:: {RULES_MODULE}", "   :no-members:", "",
        *backward_rules(ops)]) + "\n"
    pages["api/index"] = "\n".join([
        "API reference", "=============", "",
        "Every public name of tinyllm's modules (what their ``__all__`` lists), with its docstring; "
        "then the backward rules behind them, each with its derivative (``y`` the output, "
        "``g = ∂L/∂y`` the incoming gradient).", "",
        *(f"* :doc:`{name} <{page_name(name).split('/')[-1]}>`: {first_line(modules[name])}" for name in API_MODULES),
        f"* :doc:`{RULES_MODULE} <{page_name(RULES_MODULE).split('/')[-1]}>`: {first_line(ops)}", ""])
    return pages


def page_name(module: str) -> str:
    """The API page of ``module``: api/tinyllm, api/functional, api/nn, ..."""
    return "api/" + module.rpartition(".")[2]


def first_line(module) -> str:
    return (module.__doc__ or "").strip().splitlines()[0].rstrip(".") + "."


def stage(lang: str, src: str) -> dict:
    """Lay out the sources of edition ``lang`` in ``src`` (emptied first); return the Jupyter
    Book config."""
    import nbformat
    shutil.rmtree(src, ignore_errors=True)
    words = WORDS[lang]
    notebooks = chapter_notebooks(lang)
    if not notebooks:
        raise SystemExit(f"no chapters in chapters/{lang}/: nothing to build")
    chapters = [f"chapters/{os.path.basename(p)[:-6]}" for p in notebooks]
    pages = {f"chapters/{lang}/{os.path.basename(p)}": f"{doc}.ipynb" for p, doc in zip(notebooks, chapters)}
    pages.update({"chapters/README.md": "index.md", "docs/TEACHERS.md": "teachers.md"})

    def put(doc: str, text: str) -> None:
        write(os.path.join(src, doc), text)

    for path, doc in zip(notebooks, chapters):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = join_cjk_lines(relink(cell.source, f"chapters/{lang}/{os.path.basename(path)}", doc, pages))
        put(f"{doc}.ipynb", nbformat.writes(nb) + "\n")

    sections = readme_sections()
    index = join_cjk_lines(sections[TEXT[lang]["heading"]])
    put("index.md", f"# {words['title']}\n\n{words['index_intro']}\n\n"
                    f"{relink(index, 'chapters/README.md', 'index.md', pages)}\n"
                    f"- [{words['glossary']}](glossary.md)\n- [{words['teachers']}](teachers.md)\n"
                    f"- [{words['api']}](api/index.rst)\n")
    glossary = sections[TEXT["zh"]["glossary"]]
    put("glossary.md", f"# {TEXT['zh']['glossary'][3:]}\n\n{relink(glossary, 'chapters/README.md', 'glossary.md', pages)}")
    teachers = open(os.path.join(ROOT, "docs", "TEACHERS.md"), encoding="utf-8").read()
    put("teachers.md", relink(teachers, "docs/TEACHERS.md", "teachers.md", pages))
    api = api_pages()
    for doc, text in api.items():
        put(f"{doc}.rst", text)

    toc = {"format": "jb-book", "root": "index", "parts": [
        {"caption": words["chapters"], "chapters": [{"file": doc} for doc in chapters]},
        {"caption": words["reference"], "chapters": [
            {"file": "glossary"}, {"file": "teachers"},
            {"file": "api/index", "sections": [{"file": page_name(m)} for m in (*API_MODULES, RULES_MODULE)]}]}]}
    write(os.path.join(src, "_toc.yml"), yaml.safe_dump(toc, allow_unicode=True, sort_keys=False))
    other_chapters = {f"chapters/{os.path.basename(p)[:-6]}" for p in chapter_notebooks(OTHER[lang])}
    return {
        "title": words["title"], "author": "tinyllm", "copyright": "tinyllm",
        "only_build_toc_files": True,
        "execute": {"execute_notebooks": "off"},
        "parse": {"myst_enable_extensions": ["dollarmath", "amsmath", "colon_fence"]},
        "html": {"home_page_in_navbar": True, "use_multitoc_numbering": False},
        "launch_buttons": {"notebook_interface": "classic"},
        "repository": {"url": ""},
        "sphinx": {
            "local_extensions": {"tinyllm_book": BOOK},        # puts book/ on sys.path
            "config": {
                # Jupyter Book's extensions less sphinx_thebe (live code through Binder; Sphinx
                # writes its inline script twice, a "const" declared twice: a console error) and
                # intersphinx (nothing to link to offline); plus ours.
                "extensions": ["myst_nb", "jupyter_book", "sphinx_book_theme", "sphinx_external_toc",
                               "sphinx_togglebutton", "sphinx_copybutton", "sphinx_design", "sphinx_comments",
                               "sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.napoleon",
                               "sphinx-mathjax-offline", "tinyllm_book"],
                "language": "zh_CN" if lang == "zh" else "en",
                "templates_path": [os.path.join(BOOK, "templates")],
                "html_static_path": [os.path.join(BOOK, "static"),
                                     os.path.join(ROOT, "chapters", "fonts", "NotoSansSC-Subset.ttf"),
                                     os.path.join(ROOT, "chapters", "fonts", "OFL.txt")],
                "html_css_files": ["tinyllm-book.css"],
                "html_favicon": os.path.join(BOOK, "static", "favicon.svg"),
                "html_theme_options": {
                    "search_bar_text": words["search"],
                    "home_page_in_toc": True,
                    "show_navbar_depth": 1,
                    "use_download_button": True,
                    "use_fullscreen_button": False,
                    "navbar_persistent": [],
                    "article_header_end": ["lang-switch.html", "article-header-buttons.html"],
                    "pygments_light_style": "a11y-high-contrast-light",
                    "pygments_dark_style": "a11y-high-contrast-dark",
                },
                "html_context": {"default_mode": "auto"},    # light or dark, as the reader's system says
                "html_show_sourcelink": False,
                "autosummary_generate": False,
                "autodoc_member_order": "bysource",
                "add_module_names": False,
                # the docstrings' Args: / Raises: / Fields: sections (Google style)
                "napoleon_numpy_docstring": False,
                "napoleon_custom_sections": [("Fields", "params_style")],
                # TEACHERS.md shows JSON with "…" in it: Pygments says so, then highlights it anyway
                "suppress_warnings": ["myst.domains", "misc.highlighting_failure"],
                "tinyllm_book": {
                    "lang": lang, "other": OTHER[lang], "switch": words["switch"],
                    "switch_label": words["switch_label"],
                    "missing_in_other": sorted(set(chapters) - other_chapters),
                    "english_pages": list(ENGLISH_PAGES) if lang == "zh" else [],
                },
            },
        },
    }


# ----------------------------------------------------------------------------- building
def build_edition(lang: str, out: str, quiet: bool) -> int:
    """Stage and build one edition into ``out``/``lang``/html; Sphinx's exit status."""
    from jupyter_book.sphinx import build_sphinx
    if quiet and lang == "zh":                    # Sphinx's Chinese search index uses jieba, which
        import logging                            # reports loading its dictionary on stderr
        import jieba
        jieba.setLogLevel(logging.WARNING)
    src = os.path.join(out, "src", lang)
    config = stage(lang, src)
    config_path = os.path.join(src, "_config.yml")
    write(config_path, yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    # as `jupyter-book build` calls it, with our folders
    result = build_sphinx(src, os.path.join(out, lang, "html"), noconfig=True, path_config=config_path,
                          confoverrides={"external_toc_path": os.path.join(src, "_toc.yml"),
                                         "latex_individualpages": False},
                          doctreedir=os.path.join(out, lang, "doctrees"), freshenv=True,
                          warningiserror=True, keep_going=True, quiet=quiet)
    return result if isinstance(result, int) else 1


def site_pages(site: str) -> list[str]:
    """The pages of a built site (its theme's own HTML snippets in _static left out), relative."""
    found = glob.glob(os.path.join(site, "**", "*.html"), recursive=True)
    return sorted(os.path.relpath(p, site).replace(os.sep, "/") for p in found
                  if "_static" not in os.path.relpath(p, site).split(os.sep))


def landing_page() -> str:
    """_build/html/index.html: the two editions, side by side."""
    z, e = WORDS["zh"], WORDS["en"]
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tinyllm — {html.escape(e['title'])}</title>
<link rel="icon" href="zh/_static/favicon.svg">
<link rel="stylesheet" href="zh/_static/tinyllm-book.css">
</head>
<body class="tinyllm-landing">
<main>
<h1>tinyllm</h1>
<p lang="zh-CN"><a href="zh/index.html">{html.escape(z['title'])}</a>（中文版）</p>
<p><a href="en/index.html">{html.escape(e['title'])}</a> (English edition)</p>
</main>
</body>
</html>
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="build the book into _build/html (both editions)")
    parser.add_argument("--lang", choices=LANGS, action="append", help="only this edition (repeatable)")
    parser.add_argument("--out", default=os.path.join(ROOT, "_build"), help="the build folder (default: _build)")
    parser.add_argument("--quiet", action="store_true", help="print only warnings and the summary")
    parser.add_argument("--edition", choices=LANGS, help=argparse.SUPPRESS)   # a child process's one edition
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    if args.edition:
        return build_edition(args.edition, out, args.quiet)

    start = time.perf_counter()
    langs = args.lang or list(LANGS)
    command = [sys.executable, os.path.abspath(__file__), "--out", out] + (["--quiet"] if args.quiet else [])
    children = {lang: subprocess.Popen(command + ["--edition", lang]) for lang in langs}   # one core each
    failed = [lang for lang, child in children.items() if child.wait() != 0]
    if failed:
        print(f"the book did not build: edition(s) {', '.join(failed)} failed (the messages above say why)",
              file=sys.stderr)
        return 1
    site = os.path.join(out, "html")
    os.makedirs(site, exist_ok=True)
    for lang in langs:
        shutil.rmtree(os.path.join(site, lang), ignore_errors=True)
        shutil.copytree(os.path.join(out, lang, "html"), os.path.join(site, lang))
    write(os.path.join(site, "index.html"), landing_page())
    pages = len(site_pages(site))
    print(f"built {site}: {pages} pages in {time.perf_counter() - start:.0f} s; open "
          f"{os.path.join(site, 'index.html')} (or serve it: python -m http.server -d {site})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
