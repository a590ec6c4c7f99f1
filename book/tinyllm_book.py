"""The book's Sphinx extension (loaded by book/build.py through Jupyter Book's
``local_extensions``): on every page, the link to the same page in the other edition, the
``<html lang>`` of pages written in English inside the Chinese edition, a name for each
expand/collapse toggle of the navigation, and docstrings' |x| kept as text."""
import html
import re

# pydata-sphinx-theme (0.17) draws each expandable entry of the navigation as
# <a ...>Title</a><details><summary><span role="presentation">chevron</span></summary>: a
# control without a name, which screen readers announce as nothing (axe: summary-name, serious).
TOGGLE = re.compile(r'(<a [^>]*>((?:(?!<a ).)*?)</a>\s*<details[^>]*>\s*)<summary>', re.S)
TOGGLE_LABEL = {"zh": "展开或收起“{}”下的页面", "en": "Show or hide the pages under “{}”"}


def page_context(app, pagename, templatename, context, doctree):
    book = app.config.tinyllm_book
    target = "index" if pagename in book["missing_in_other"] else pagename
    up = "../" * (pagename.count("/") + 1)           # from this page to the folder of both editions
    context["lang_switch"] = {"href": f"{up}{book['other']}/{target}.html", "text": book["switch"],
                              "label": book["switch_label"], "lang": "zh-CN" if book["other"] == "zh" else "en"}
    if any(pagename == page or (page.endswith("/") and pagename.startswith(page)) for page in book["english_pages"]):
        context["language"] = "en"


def name_toggles(app, pagename, templatename, context, doctree):
    book = app.config.tinyllm_book
    make_toctree = context.get("generate_toctree_html")   # the theme's, set by its own handler (runs first)
    if make_toctree:
        def labelled(*args, **kwargs):
            def name(match):
                title = html.unescape(re.sub(r"<[^>]+>", "", match.group(2))).strip()
                label = TOGGLE_LABEL[book["lang"]].format(title)
                return f'{match.group(1)}<summary aria-label="{html.escape(label)}">'
            return TOGGLE.sub(name, str(make_toctree(*args, **kwargs)))   # a BeautifulSoup, or a str
        context["generate_toctree_html"] = labelled


def plain_bars(app, what, name, obj, options, lines):
    """The docstrings write |x| for an absolute value and |V| for a set's size; reST would read
    each as a substitution reference (and fail). Escape the bars, except in ``literals`` and in
    the indented blocks after a line ending in ``::`` (code, .. math::)."""
    block = None                                        # the indent of the "::" line of the block we are in
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if block is not None and (not line.strip() or indent > block):
            continue
        block = None
        if "|" in line:
            parts = line.split("``")
            lines[i] = "``".join(part.replace("|", "\\|") if k % 2 == 0 else part for k, part in enumerate(parts))
        if line.rstrip().endswith("::"):
            block = indent


def setup(app):
    app.add_config_value("tinyllm_book", {}, "html")
    # before the theme's handlers, which drop header templates that render empty without lang_switch
    app.connect("html-page-context", page_context, priority=400)
    app.connect("html-page-context", name_toggles, priority=900)
    app.connect("autodoc-process-docstring", plain_bars, priority=600)   # after napoleon's (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
