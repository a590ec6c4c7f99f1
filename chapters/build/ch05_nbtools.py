"""Small helpers shared by the chapter 5–7 notebook builders (build/ch05_*.py, ch06_*.py,
ch07_*.py): collect markdown and code cells, then execute the notebook with nbclient and
save it with its outputs.

    from ch05_nbtools import Notebook
    nb = Notebook()
    nb.md("# Title")
    nb.code("import os; FAST = os.environ.get('TINYLLM_FAST') == '1'")
    nb.build("05_project_practice.ipynb")          # executes fully, saves with outputs

Command line of every builder:  python chapters/build/chNN_x.py [--fast] [--no-execute]
``--fast`` executes with TINYLLM_FAST=1 and writes to /tmp instead of chapters/ (a check).
``--sync-sources`` copies the builder's cell sources into the saved notebook and keeps its
outputs: only for edits that change nothing a full run computes (prose, fast-mode values).
"""
from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time

import nbformat
from nbclient import NotebookClient

BUILD_DIR = os.path.dirname(os.path.abspath(__file__))
CHAPTERS_DIR = os.path.dirname(BUILD_DIR)
ROOT = os.path.dirname(CHAPTERS_DIR)


class Notebook:
    def __init__(self):
        self.cells = []

    def md(self, text: str) -> None:
        self.cells.append(nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip("\n")))

    def code(self, text: str) -> None:
        self.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(text).strip("\n")))

    def notebook(self):
        nb = nbformat.v4.new_notebook()
        nb.cells = self.cells
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        return nb

    def build(self, filename: str, argv=None) -> None:
        parser = argparse.ArgumentParser()
        parser.add_argument("--fast", action="store_true", help="execute with TINYLLM_FAST=1, save to /tmp")
        parser.add_argument("--no-execute", action="store_true", help="write the notebook without outputs")
        parser.add_argument("--sync-sources", action="store_true",
                            help="update the saved notebook's cell sources, keep its outputs")
        args = parser.parse_args(argv)
        nb = self.notebook()
        out = os.path.join(CHAPTERS_DIR, filename)
        if args.sync_sources:
            saved = nbformat.read(out, as_version=4)
            kinds = [c.cell_type for c in saved.cells]
            if kinds != [c.cell_type for c in nb.cells]:
                raise SystemExit(f"{out}: the cells differ in number or kind; rebuild it instead")
            changed = 0
            for old, new in zip(saved.cells, nb.cells):
                changed += old.source != new.source
                old.source = new.source
            nbformat.write(saved, out)
            print(f"{out}: {changed} cell sources updated, outputs kept", file=sys.stderr)
            return
        if args.fast:
            out = os.path.join("/tmp", filename)
        if not args.no_execute:
            env_before = dict(os.environ)
            os.environ["PYTHONPATH"] = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
            if args.fast:
                os.environ["TINYLLM_FAST"] = "1"
            else:
                os.environ.pop("TINYLLM_FAST", None)
            os.environ.pop("MPLBACKEND", None)  # inline figures in the saved notebook
            start = time.perf_counter()
            try:
                client = NotebookClient(nb, timeout=3600, kernel_name="python3",
                                        resources={"metadata": {"path": CHAPTERS_DIR}})
                client.execute()
            finally:
                os.environ.clear()
                os.environ.update(env_before)
            elapsed = time.perf_counter() - start
            nb.metadata["tinyllm_build"] = {"fast": bool(args.fast), "seconds": round(elapsed, 1)}
            print(f"{filename}: executed in {elapsed:.1f} s ({'fast' if args.fast else 'full'} mode)",
                  file=sys.stderr)
        nbformat.write(nb, out)
        print(f"wrote {out} ({os.path.getsize(out) / 1024:.0f} KiB)", file=sys.stderr)
