"""The command line: ``python -m tinyllm demo|...``."""
from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tinyllm",
                                     description="tinyllm: a teachable LLM on NumPy/CuPy")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="a small graph, its backward, numbers to check against PyTorch")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run
        run()
    return 0
