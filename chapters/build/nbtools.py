"""Notebook assembly shared by every chapter builder (build/chNN_*.py): collect markdown and
code cells, execute them top to bottom with nbclient, save the notebook with its outputs.

    from nbtools import Notebook
    nb = Notebook()
    md, code = nb.md, nb.code
    md("# Title")
    code("import os; FAST = os.environ.get('TINYLLM_FAST') == '1'")
    if __name__ == "__main__":
        nb.build("01_background.ipynb")

Command line of every builder:

    python chapters/build/ch01_background.py                 # full run, saved to chapters/
    python chapters/build/ch01_background.py --fast          # TINYLLM_FAST=1, saved to /tmp (a check)
    python chapters/build/ch01_background.py --no-execute    # cells only, no outputs
    python chapters/build/ch01_background.py --check         # do the builder's cells equal the saved
                                                             # notebook's? (writes nothing; exit 1 if not)
    python chapters/build/ch01_background.py --sync-sources  # copy the builder's cell sources into the
                                                             # saved notebook, keeping its outputs

``--sync-sources`` is only for edits that change nothing a full run computes (prose, values
used in fast mode); anything else needs a full run. ``tests/test_chapters.py`` runs
``--check`` for every builder, so a notebook and its builder cannot drift apart.
"""
from __future__ import annotations

import argparse
import copy
import itertools
import os
import sys
import textwrap
import time

import nbformat

BUILD_DIR = os.path.dirname(os.path.abspath(__file__))
CHAPTERS_DIR = os.path.dirname(BUILD_DIR)
ROOT = os.path.dirname(CHAPTERS_DIR)


class Notebook:
    """The cells of one chapter, in order, and the command line that builds it."""

    def __init__(self):
        self.cells = []

    def md(self, text: str) -> None:
        self.cells.append(nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip("\n")))

    def code(self, text: str) -> None:
        self.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(text).strip("\n")))

    def notebook(self):
        nb = nbformat.v4.new_notebook()
        nb.cells = copy.deepcopy(self.cells)  # executing fills outputs into these, not ours
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        return nb

    def build(self, filename: str, argv=None) -> None:
        parser = argparse.ArgumentParser(description=f"build chapters/{filename}")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--fast", action="store_true", help="execute with TINYLLM_FAST=1, save to /tmp")
        mode.add_argument("--no-execute", action="store_true", help="write the notebook without outputs")
        mode.add_argument("--check", action="store_true",
                          help="compare the cells with the saved notebook's; write nothing, exit 1 on a difference")
        mode.add_argument("--sync-sources", action="store_true",
                          help="update the saved notebook's cell sources, keep its outputs")
        args = parser.parse_args(argv)
        saved_path = os.path.join(CHAPTERS_DIR, filename)
        if args.check:
            differences = self.differences(saved_path)
            for line in differences:
                print(line, file=sys.stderr)
            print(f"{saved_path}: {'matches its builder' if not differences else 'differs from its builder'}",
                  file=sys.stderr)
            raise SystemExit(1 if differences else 0)
        if args.sync_sources:
            self._sync_sources(saved_path)
            return
        nb = self.notebook()
        if not args.no_execute:
            self._execute(nb, filename, fast=args.fast)
        out = os.path.join("/tmp", filename) if args.fast else saved_path
        nbformat.write(nb, out)
        print(f"wrote {out} ({os.path.getsize(out) / 1024:.0f} KiB)", file=sys.stderr)

    def differences(self, path: str) -> list[str]:
        """How the saved notebook at ``path`` differs from these cells (kind and source)."""
        saved = nbformat.read(path, as_version=4).cells
        lines = []
        if len(saved) != len(self.cells):
            lines.append(f"{len(self.cells)} cells in the builder, {len(saved)} in the notebook")
        for i, (mine, theirs) in enumerate(zip(self.cells, saved)):
            if mine.cell_type != theirs.cell_type:
                lines.append(f"cell {i}: {mine.cell_type} in the builder, {theirs.cell_type} in the notebook")
            elif mine.source != theirs.source:
                pairs = itertools.zip_longest(mine.source.splitlines(), theirs.source.splitlines(), fillvalue="")
                n, (a, b) = next((n, ab) for n, ab in enumerate(pairs) if ab[0] != ab[1])
                lines.append(f"cell {i} ({mine.cell_type}), line {n + 1}: builder {a[:80]!r}, notebook {b[:80]!r}")
        return lines

    def _sync_sources(self, path: str) -> None:
        saved = nbformat.read(path, as_version=4)
        if [c.cell_type for c in saved.cells] != [c.cell_type for c in self.cells]:
            raise SystemExit(f"{path}: the cells differ in number or kind; rebuild it instead")
        changed = 0
        for old, new in zip(saved.cells, self.cells):
            changed += old.source != new.source
            old.source = new.source
        nbformat.write(saved, path)
        print(f"{path}: {changed} cell sources updated, outputs kept", file=sys.stderr)

    @staticmethod
    def _execute(nb, filename: str, fast: bool) -> None:
        from nbclient import NotebookClient
        env_before = dict(os.environ)
        os.environ["PYTHONPATH"] = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
        if fast:
            os.environ["TINYLLM_FAST"] = "1"
        else:
            os.environ.pop("TINYLLM_FAST", None)
        os.environ.pop("MPLBACKEND", None)  # inline figures in the saved notebook
        start = time.perf_counter()
        try:
            NotebookClient(nb, timeout=3600, kernel_name="python3", record_timing=False,
                           resources={"metadata": {"path": CHAPTERS_DIR}}).execute()
        finally:
            os.environ.clear()
            os.environ.update(env_before)
        elapsed = time.perf_counter() - start
        nb.metadata["tinyllm_build"] = {"fast": bool(fast), "seconds": round(elapsed, 1)}
        print(f"{filename}: executed in {elapsed:.1f} s ({'fast' if fast else 'full'} mode)", file=sys.stderr)
