"""``python -m tinyllm <command>``: see ``tinyllm.cli``."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
