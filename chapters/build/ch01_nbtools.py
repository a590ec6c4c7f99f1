"""Notebook assembly for chapters 1, 8 and 9 (build/ch01_background.py, ch08_trends.py,
ch09_faq.py): collect markdown and code cells, execute them top to bottom with nbclient,
save the notebook with its outputs.

    from ch01_nbtools import Notebook
    nb = Notebook()
    nb.md("# Title")
    nb.code("import os; FAST = os.environ.get('TINYLLM_FAST') == '1'")
    nb.build("01_background.ipynb")

Command line of each builder:

    python chapters/build/ch01_background.py               # full run, saved to chapters/
    python chapters/build/ch01_background.py --fast        # TINYLLM_FAST=1, saved to /tmp (a check)
    python chapters/build/ch01_background.py --no-execute  # cells only, no outputs
    python chapters/build/ch01_background.py --markdown-only  # new prose into the executed notebook
                                                              # (code cells must be unchanged)
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
        parser.add_argument("--markdown-only", action="store_true",
                            help="replace the prose of the executed notebook, keeping its outputs")
        args = parser.parse_args(argv)
        nb = self.notebook()
        out = os.path.join("/tmp" if args.fast else CHAPTERS_DIR, filename)
        if args.markdown_only:
            self._replace_markdown(out)
            return
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
            nb.metadata["tinyllm_build"] = {"fast": bool(args.fast), "seconds": round(elapsed, 1),
                                            "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}
            print(f"{filename}: executed in {elapsed:.1f} s ({'fast' if args.fast else 'full'} mode), "
                  f"load average {os.getloadavg()}", file=sys.stderr)
        nbformat.write(nb, out)
        print(f"wrote {out} ({os.path.getsize(out) / 1024:.0f} KiB)", file=sys.stderr)

    def _replace_markdown(self, path: str) -> None:
        old = nbformat.read(path, as_version=4)
        kinds = [c.cell_type for c in old.cells]
        if kinds != [c.cell_type for c in self.cells]:
            raise SystemExit(f"{path}: the cells differ in number or kind; rebuild it fully")
        for mine, theirs in zip(self.cells, old.cells):
            if mine.cell_type == "code" and mine.source != theirs.source:
                raise SystemExit(f"{path}: a code cell changed; rebuild it fully:\n{mine.source[:200]}")
            if mine.cell_type == "markdown":
                theirs.source = mine.source
        nbformat.write(old, path)
        print(f"replaced the markdown of {path}", file=sys.stderr)
