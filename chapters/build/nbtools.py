"""Build the chapters: two editions of every notebook, Chinese (chapters/zh/) and English
(chapters/en/), from one builder script (build/chNN_*.py). How to write a builder:
build/README.md. In short:

    from nbtools import Chapter
    ch = Chapter("01_background", number=1, title=("背景介绍", "Background"), sections="§1.1–1.2")
    md, code = ch.md, ch.code
    md(zh="# 1 · 背景介绍\\n…", en="# 1 · 背景介绍 — Background\\n…")
    ch.setup("from tinyllm.models import GPT, GPTConfig")       # the shared first code cell
    code('losses = train(...)\\nrecord(final_loss=losses[-1])')  # numbers the prose will quote
    code('plt.plot(losses); plt.show()', alt=("损失曲线……", "The loss curve …"))  # a figure's alt text
    md(zh="损失降到 {{final_loss:.3f}}。", en="The loss fell to {{final_loss:.3f}}.")
    ch.index(builds=("…", "…"), figures=("损失 {{final_loss:.3f}}", "loss {{final_loss:.3f}}"))
    if __name__ == "__main__":
        ch.build()

Every code cell is the same in both editions; only the setup cell's first line (``LANG = "zh"``)
differs, and strings that figures or printed sentences show come from ``tr("中文", "English")``.
Comments are English, except where a reader is told what to write (an exercise's starter cell):
there a comment is a pair of lines, ``#zh: 中文`` then ``#en: English`` (same indentation), and
each edition keeps its own as ``# ...`` — the code itself stays identical.
Markdown cells are templates: ``{{name}}`` or ``{{name:.3f}}`` (any format spec) is replaced,
after the notebook has run, by the value a code cell passed to ``record(name=...)`` in that
same run, so the prose cannot quote a number the outputs do not show. The builder also
records ``run_seconds``, ``run_minutes`` and ``run_cores`` (the run's wall time and the
machine's CPU count); the chapters index (build/make_index.py) reads everything from the
saved notebooks' metadata.

Command line of every builder:

    python chapters/build/ch01_background.py               # full run of both editions, saved
    python chapters/build/ch01_background.py --lang zh     # one edition
    python chapters/build/ch01_background.py --fast --out /tmp/ch   # TINYLLM_FAST=1, elsewhere (a check)
    python chapters/build/ch01_background.py --no-execute --out /tmp/ch   # cells only, no outputs
    python chapters/build/ch01_background.py --check       # are the saved editions this builder's
                                                           # cells, from a full run, with clean outputs?
    python chapters/build/ch01_background.py --sync-sources  # copy edited prose, code and alt text
                                                           # into the saved editions, keeping their outputs

A run fails, and saves nothing but a copy for inspection, when an output holds an error, a
warning (matplotlib's missing-glyph warning included), anything written to stderr, or when a
cell that calls ``plt.show()`` shows no figure. ``--sync-sources`` is only for edits that
change nothing a run computes (wording, a comment); anything else needs a full run.
``tests/test_chapters.py`` runs ``--check`` for every builder and both editions in fast mode.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
import textwrap
import time

import nbformat

BUILD_DIR = os.path.dirname(os.path.abspath(__file__))
CHAPTERS_DIR = os.path.dirname(BUILD_DIR)
ROOT = os.path.dirname(CHAPTERS_DIR)
sys.path.insert(0, BUILD_DIR)
from glossary import GLOSSARY  # noqa: E402
LANGS = ("zh", "en")

# The first code cell of every chapter: SETUP_HEAD, the chapter's imports, SETUP_TAIL. Only
# its first line differs between the editions.
SETUP_HEAD = r'''
LANG = "zh"                                        # this edition: "zh" (中文) or "en" (English)
import os, sys, time, math
FAST = os.environ.get("TINYLLM_FAST") == "1"       # CI sets this: fewer steps, same cells
# One BLAS thread: as fast as two on these small matrices, much faster on a busy machine.
# (Read when NumPy loads, so it comes first; set the variables yourself to override.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1"); os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = os.path.abspath(os.path.join("..", ".."))   # this notebook lives in chapters/zh or chapters/en
sys.path.insert(0, ROOT)                           # import tinyllm from this clone

import numpy as np
import matplotlib.pyplot as plt
from matplotlib import font_manager
%matplotlib inline
# Chinese in figures: a subset of Noto Sans SC that ships with the repository (chapters/fonts/)
font_manager.fontManager.addfont(os.path.join(ROOT, "chapters", "fonts", "NotoSansSC-Subset.ttf"))
plt.rcParams.update({"figure.dpi": 85, "font.size": 9, "font.family": ["DejaVu Sans", "Noto Sans SC Subset"]})

def tr(zh, en):
    """The string of this edition's language (figure titles, labels, printed sentences)."""
    return zh if LANG == "zh" else en

RECORDED = {}
def record(**values):
    """Keep numbers the text quotes: the builder writes them into the prose after the run."""
    RECORDED.update(values)

import tinyllm as tl
'''
SETUP_TAIL = r'''
tl.manual_seed(0)
print(f"tinyllm {tl.__version__} · numpy {np.__version__} · FAST={FAST} · {os.cpu_count()} CPU cores")
'''


def setup_cell(lang: str, imports: str) -> str:
    """The setup cell of edition ``lang`` with a chapter's ``imports``."""
    head = _clean(SETUP_HEAD).replace('LANG = "zh"', f'LANG = "{lang}"', 1)
    return "\n".join(part for part in (head, imports, _clean(SETUP_TAIL)) if part)


PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*(?::([^{}]*))?\}\}")
# What must never appear in an output: errors, warnings, a glyph matplotlib could not draw.
BAD_OUTPUT = re.compile(r"Traceback \(most recent call last\)|^\W*\w*(Error|Warning|Exception): "
                        r"|missing from font|does not have a glyph|findfont", re.M)
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")


def render(text: str, values: dict, where: str = "") -> str:
    """Replace every ``{{name}}`` / ``{{name:spec}}`` in ``text`` by ``format(values[name], spec)``."""
    def one(match):
        name, spec = match.group(1), match.group(2) or ""
        if name not in values:
            raise KeyError(f"{where}: the prose quotes {{{{{name}}}}}, which no cell passed to record() "
                           f"(recorded: {', '.join(sorted(values)) or 'nothing'})")
        return format(values[name], spec.strip())
    return PLACEHOLDER.sub(one, text)


def output_problems(nb) -> list[str]:
    """What is wrong with an executed notebook's outputs: errors, warnings, text on stderr,
    a figure that does not show. Empty when all is well."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and PLACEHOLDER.search(cell.source):
            problems.append(f"cell {i}: an unfilled placeholder {PLACEHOLDER.search(cell.source).group(0)}")
        if PLACEHOLDER.search(alt_text(cell) or ""):
            problems.append(f"cell {i}: an unfilled placeholder {PLACEHOLDER.search(alt_text(cell)).group(0)} in its alt text")
        if cell.cell_type != "code":
            continue
        texts = []
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"cell {i}: raised {out.ename}: {out.evalue}")
            elif out.output_type == "stream":
                if out.name == "stderr":
                    problems.append(f"cell {i}: wrote to stderr: {out.text.strip()[:300]}")
                else:
                    texts.append(out.text)
            else:
                texts += [v for k, v in out.get("data", {}).items() if k.startswith("text/") and isinstance(v, str)]
        for text in texts:
            if BAD_OUTPUT.search(text):
                line = next(line for line in text.splitlines() if BAD_OUTPUT.search(line))
                problems.append(f"cell {i}: an output says {line.strip()[:300]!r}")
        shown = sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))
        if "plt.show()" in cell.source and not shown:
            problems.append(f"cell {i}: calls plt.show() but holds no figure")
    return problems


def prose_counts(nb) -> dict:
    """Chinese characters and English words in a notebook's markdown (formulas, code spans and
    links left out), and its numbers of cells and figures."""
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    prose = re.sub(r"\$\$.*?\$\$|\$[^$\n]*\$|`[^`\n]*`|\]\([^)]*\)", " ", prose, flags=re.S)
    figures = sum("image/png" in out.get("data", {}) for c in nb.cells if c.cell_type == "code" for out in c.outputs)
    return {"cells": len(nb.cells), "code_cells": sum(c.cell_type == "code" for c in nb.cells),
            "figures": figures, "chinese_characters": len(CJK.findall(prose)),
            "english_words": len(ENGLISH_WORD.findall(prose))}


def assignment_task(assignment: str, task_id: str) -> dict[str, str]:
    """A sentence in each language that sends the reader to task ``task_id`` of ``assignment``
    (tinyllm/assignments/tasks/), with its number, title and points read from the task file,
    so that a renamed or renumbered task fails the build instead of leaving a stale link."""
    sys.path.insert(0, ROOT)
    from tinyllm.assignments import load_assignment
    from tinyllm.assignments.source import builtin_tasks_dir
    task = load_assignment(builtin_tasks_dir() / f"{assignment}.py").task(task_id)
    release = f"python -m tinyllm.assignments release --out release/ --assignment {assignment}"
    return {
        "zh": f"这道题是课堂作业 `{assignment}` 的任务 {task.number}（{task.title}，{task.points:g} 分）："
              f"`{release}` 生成学生版，`python -m tinyllm.assignments grade --visible-only release/` "
              f"用公开测试打分（见 docs/TEACHERS.md）。",
        "en": f"This is task {task.number} of the classroom assignment `{assignment}` ({task.title}, "
              f"{task.points:g} points): `{release}` writes the student version, "
              f"`python -m tinyllm.assignments grade --visible-only release/` scores it on the visible "
              f"tests (see docs/TEACHERS.md).",
    }


def edition_path(name: str, lang: str, folder: str = CHAPTERS_DIR) -> str:
    """Where edition ``lang`` of chapter ``name`` lives: ``folder/lang/name.ipynb``."""
    return os.path.join(folder, lang, f"{name}.ipynb")


class Chapter:
    """The cells of one chapter in both languages, and the command line that builds it."""

    def __init__(self, name: str, number: int, title: tuple[str, str], sections: str):
        self.name, self.number, self.title, self.sections = name, number, title, sections
        self.items = []                 # ("markdown", {"zh": ..., "en": ...}) or ("code", source)
        self.alt = {}                   # index in items -> {"zh": ..., "en": ...}: the alt text of its figure
        self.index_row = None

    # ------------------------------------------------------------------ writing
    def md(self, zh: str, en: str) -> None:
        """A markdown cell, in Chinese and in English; ``{{name:spec}}`` quotes a recorded value."""
        self.items.append(("markdown", {"zh": _clean(zh), "en": _clean(en)}))

    def code(self, source: str, alt: tuple[str, str] | None = None) -> None:
        """A code cell, the same in both editions. ``alt=("中文", "English")`` describes the
        figure the cell shows, for a reader who cannot see it: what is drawn, and what to
        notice. It goes into the cell's metadata, where the book (MyST-NB) reads it; like the
        prose, it may quote recorded values (``{{name:spec}}``)."""
        if alt is not None:
            if not (isinstance(alt, tuple) and len(alt) == 2 and all(isinstance(a, str) and a.strip() for a in alt)):
                raise ValueError(f"{self.name}: alt must be a pair of non-empty strings (中文, English), got {alt!r}")
            self.alt[len(self.items)] = {"zh": _clean(alt[0]), "en": _clean(alt[1])}
        self.items.append(("code", _clean(source)))

    def setup(self, imports: str = "") -> None:
        """The shared first code cell (language, fast mode, paths, fonts, ``tr``, ``record``),
        ending with this chapter's own imports."""
        self.items.append(("setup", _clean(imports)))

    def index(self, builds: tuple[str, str], figures: tuple[str, str]) -> None:
        """This chapter's row of the index: what the reader builds, and the key figures
        (templates like the prose, filled with the saved edition's values)."""
        self.index_row = {"builds": dict(zip(LANGS, builds)), "figures": dict(zip(LANGS, figures))}

    # ------------------------------------------------------------------ assembling
    def glossary_terms(self) -> list:
        """The glossary entries whose Chinese term the Chinese prose uses, in order of first use."""
        prose = "\n".join(item["zh"] for kind, item in self.items if kind == "markdown")
        found = [(prose.find(entry[0]), entry) for entry in GLOSSARY if entry[0] in prose]
        return [entry for _, entry in sorted(found, key=lambda pair: pair[0])]

    def glossary_cell(self, lang: str) -> str:
        heading = ("**术语表 (glossary)**：本章用到的术语，按首次出现的顺序。"
                   if lang == "zh" else "**Glossary (术语表)**: the terms this chapter uses, in order of first use.")
        header = "| 中文 | English | tinyllm |" if lang == "zh" else "| English | 中文 | tinyllm |"
        rows = [f"| {zh} | {en} | {where} |" if lang == "zh" else f"| {en} | {zh} | {where} |"
                for zh, en, where in self.glossary_terms()]
        return "\n".join([heading, "", header, "|---|---|---|", *rows])

    def notebook(self, lang: str, values: dict | None = None):
        """The edition ``lang`` as an unexecuted notebook; markdown filled from ``values`` when
        given, left as templates otherwise."""
        if not self.items or self.items[0][0] != "markdown":
            raise ValueError(f"{self.name}: the first cell must be the title (markdown)")
        nb = nbformat.v4.new_notebook()
        for i, (kind, item) in enumerate(self.items):
            if kind == "markdown":
                text = item[lang] if values is None else render(item[lang], values, f"{self.name} ({lang}) cell {i}")
                nb.cells.append(nbformat.v4.new_markdown_cell(text))
            elif kind == "setup":
                nb.cells.append(nbformat.v4.new_code_cell(setup_cell(lang, item)))
            else:
                nb.cells.append(nbformat.v4.new_code_cell(localized_comments(item, lang)))
                if i in self.alt:
                    alt = self.alt[i][lang] if values is None else render(self.alt[i][lang], values, f"{self.name} ({lang}) cell {i} alt")
                    nb.cells[-1].metadata.update(alt_metadata(alt))
            if i == 0:
                nb.cells.append(nbformat.v4.new_markdown_cell(self.glossary_cell(lang)))
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        return nb

    # ------------------------------------------------------------------ running
    def run(self, lang: str, fast: bool):
        """Execute the edition; return it with its prose filled in and its build metadata."""
        nb = self.notebook(lang)
        folder = os.path.join(CHAPTERS_DIR, lang)       # the kernel runs where the edition lives
        os.makedirs(folder, exist_ok=True)
        start = time.perf_counter()
        values = _execute(nb, folder, fast)
        seconds = time.perf_counter() - start
        values.update(run_seconds=round(seconds, 1), run_minutes=seconds / 60, run_cores=os.cpu_count())
        for i, (cell, (kind, item)) in enumerate(zip(_without_glossary(nb.cells), self.items)):
            if kind == "markdown":
                cell.source = render(item[lang], values, f"{self.name} ({lang}) cell {i}")
            elif i in self.alt:
                cell.metadata.update(alt_metadata(render(self.alt[i][lang], values, f"{self.name} ({lang}) cell {i} alt")))
        nb.metadata["tinyllm"] = {"lang": lang, "fast": fast, "seconds": round(seconds, 1),
                                  "cores": os.cpu_count(), "values": values}
        print(f"{self.name} ({lang}): executed in {seconds:.1f} s ({'fast' if fast else 'full'} mode)", file=sys.stderr)
        return nb

    def build(self, argv=None) -> None:
        parser = argparse.ArgumentParser(description=f"build chapters/zh|en/{self.name}.ipynb")
        parser.add_argument("--lang", choices=LANGS, action="append", help="only this edition (repeatable)")
        parser.add_argument("--out", help="write to this folder instead of chapters/zh, chapters/en")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--fast", action="store_true", help="execute with TINYLLM_FAST=1 (needs --out)")
        mode.add_argument("--no-execute", action="store_true", help="write the cells without outputs (needs --out)")
        mode.add_argument("--check", action="store_true",
                          help="compare the saved editions with this builder; write nothing, exit 1 on a difference")
        mode.add_argument("--sync-sources", action="store_true",
                          help="update the saved editions' cell sources, keep their outputs")
        args = parser.parse_args(argv)
        langs = args.lang or list(LANGS)
        if (args.fast or args.no_execute) and not args.out:
            parser.error("--fast and --no-execute write elsewhere: give --out FOLDER")
        if args.check:
            failed = False
            for lang in langs:
                problems = self.differences(edition_path(self.name, lang))
                for line in problems:
                    print(f"  {line}", file=sys.stderr)
                print(f"{edition_path(self.name, lang)}: {'differs from its builder' if problems else 'matches its builder'}",
                      file=sys.stderr)
                failed |= bool(problems)
            raise SystemExit(1 if failed else 0)
        if args.sync_sources:
            for lang in langs:
                self._sync_sources(edition_path(self.name, lang))
            return
        for lang in langs:
            out = edition_path(self.name, lang, args.out or CHAPTERS_DIR)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            if args.no_execute:
                nbformat.write(self.notebook(lang), out)
                continue
            nb = self.run(lang, fast=args.fast)
            problems = output_problems(nb)
            if problems:
                failed_copy = os.path.join(tempfile.gettempdir(), f"{self.name}.{lang}.failed.ipynb")
                nbformat.write(nb, failed_copy)
                raise SystemExit("\n".join([f"{self.name} ({lang}): the run has problems, not saved "
                                            f"(the executed notebook is in {failed_copy}):", *problems]))
            nbformat.write(nb, out)
            print(f"wrote {out} ({os.path.getsize(out) / 1024:.0f} KiB)", file=sys.stderr)

    # ------------------------------------------------------------------ checking
    def differences(self, path: str) -> list[str]:
        """How the saved edition at ``path`` differs from what this builder makes from the
        values that edition recorded: cell kinds and sources, a fast run, dirty outputs."""
        if not os.path.exists(path):
            return [f"{path} does not exist: build it"]
        saved = nbformat.read(path, as_version=4)
        meta = saved.metadata.get("tinyllm", {})
        lang = meta.get("lang")
        if lang not in LANGS or "values" not in meta:
            return ["the saved notebook has no build metadata: build it"]
        lines = [] if meta.get("fast") is False else ["the saved notebook comes from a fast run: build it in full"]
        try:
            mine = self.notebook(lang, meta["values"]).cells
        except KeyError as error:
            return lines + [f"{error.args[0]} (the saved run predates it: build it)"]
        return lines + cell_differences(mine, saved.cells) + output_problems(saved)

    def _sync_sources(self, path: str) -> None:
        saved = nbformat.read(path, as_version=4)
        mine = self.notebook(saved.metadata["tinyllm"]["lang"], saved.metadata["tinyllm"]["values"])
        if [c.cell_type for c in saved.cells] != [c.cell_type for c in mine.cells]:
            raise SystemExit(f"{path}: the cells differ in number or kind; rebuild it instead")
        changed = 0
        for old, new in zip(saved.cells, mine.cells):
            changed += old.source != new.source or old.metadata.get(ALT_KEY) != new.metadata.get(ALT_KEY)
            old.source = new.source
            old.metadata.pop(ALT_KEY, None)
            old.metadata.update(alt_metadata(alt_text(new)) if alt_text(new) else {})
        nbformat.write(saved, path)
        print(f"{path}: {changed} cells updated (sources, alt text), outputs kept", file=sys.stderr)


_COMMENT_PAIR = re.compile(r"^([ \t]*)#zh:[ ]?(.*)\n\1#en:[ ]?(.*)$", re.M)


def localized_comments(source: str, lang: str) -> str:
    """``source`` with each ``#zh: …`` / ``#en: …`` pair of comment lines replaced by the one
    comment of edition ``lang``. A ``#zh:`` or ``#en:`` line outside such a pair is an error."""
    keep = 2 if lang == "zh" else 3
    out = _COMMENT_PAIR.sub(lambda m: f"{m.group(1)}# {m.group(keep)}".rstrip(), source)
    stray = re.search(r"^[ \t]*#(zh|en):", out, re.M)
    if stray:
        line = out[stray.start():].splitlines()[0].strip()
        raise ValueError(f"a #{stray.group(1)}: comment without its pair (#zh: then #en:, same indentation): {line!r}")
    return out


def without_comment_lines(source: str) -> str:
    """``source`` less its lines that hold only a comment: what must be the same in both editions."""
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))


# A figure's alt text lives in its cell's metadata as MyST-NB reads it: {"mystnb": {"image": {"alt": ...}}}.
ALT_KEY = "mystnb"


def alt_metadata(text: str) -> dict:
    """The cell metadata that gives the figures of a cell the alt text ``text``."""
    return {ALT_KEY: {"image": {"alt": text}}}


def alt_text(cell) -> str | None:
    """The alt text a code cell gives its figures, or None."""
    return cell.get("metadata", {}).get(ALT_KEY, {}).get("image", {}).get("alt")


def figures_without_alt_text(nb) -> list[int]:
    """The indices of the code cells that show an image but give it no alt text."""
    return [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and not alt_text(cell)
            and any(key.startswith("image/") for out in cell.get("outputs", []) for key in out.get("data", {}))]


def cell_differences(mine, theirs) -> list[str]:
    """Cell by cell, where the builder's cells ``mine`` and a saved notebook's differ in kind or source."""
    lines = [] if len(mine) == len(theirs) else [f"{len(mine)} cells in the builder, {len(theirs)} in the notebook"]
    for i, (a_cell, b_cell) in enumerate(zip(mine, theirs)):
        if a_cell.cell_type != b_cell.cell_type:
            lines.append(f"cell {i}: {a_cell.cell_type} in the builder, {b_cell.cell_type} in the notebook")
        elif a_cell.source != b_cell.source:
            pairs = itertools.zip_longest(a_cell.source.splitlines(), b_cell.source.splitlines(), fillvalue="")
            n, (a, b) = next((n, ab) for n, ab in enumerate(pairs) if ab[0] != ab[1])
            lines.append(f"cell {i} ({a_cell.cell_type}), line {n + 1}: builder {a[:80]!r}, notebook {b[:80]!r}")
        elif alt_text(a_cell) != alt_text(b_cell):
            lines.append(f"cell {i}: alt text {str(alt_text(a_cell))[:60]!r} in the builder, "
                         f"{str(alt_text(b_cell))[:60]!r} in the notebook (--sync-sources copies it)")
    return lines


def _clean(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def _without_glossary(cells):
    return cells[:1] + cells[2:]


def _execute(nb, folder: str, fast: bool, collect: bool = True) -> dict:
    """Run ``nb`` top to bottom in a fresh kernel whose working folder is ``folder``; return
    the values its cells passed to ``record`` (when ``collect``)."""
    from nbclient import NotebookClient
    from traitlets.config import Config
    env_before = dict(os.environ)
    os.environ["PYTHONPATH"] = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
    if fast:
        os.environ["TINYLLM_FAST"] = "1"
    else:
        os.environ.pop("TINYLLM_FAST", None)
    os.environ.pop("MPLBACKEND", None)  # inline figures in the saved notebook
    probe = nbformat.v4.new_code_cell("import json; print(json.dumps(RECORDED, default=lambda v: v.item()))")
    # The kernel talks over Unix sockets in a folder of its own, not over TCP: a TCP port that
    # jupyter_client finds free can be taken by another kernel (the two editions, or pytest-xdist
    # workers, start theirs at once) before this one binds it, and the kernel then dies at start
    # ("Address already in use"). A clean-clone CI run failed that way once.
    # (Windows has no Unix sockets here, and a socket's path must stay under ~100 bytes: there
    # the kernel keeps TCP.)
    sockets = tempfile.mkdtemp(prefix="tinyllm-kernel-")
    unix = os.name == "posix" and len(os.path.join(sockets, "kernel-99999")) < 100
    ipc = Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "kernel")}} if unix else {})
    try:
        client = NotebookClient(nb, timeout=3600, kernel_name="python3", record_timing=False,
                                config=ipc, resources={"metadata": {"path": folder}})
        with client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
            if collect:                                  # ask the kernel for RECORDED, then drop the question
                nb.cells.append(probe)
                client.execute_cell(probe, len(nb.cells) - 1)
                nb.cells.pop()
    finally:
        os.environ.clear()
        os.environ.update(env_before)
        shutil.rmtree(sockets, ignore_errors=True)
    return json.loads("".join(out.text for out in probe.outputs if out.output_type == "stream") or "{}")
