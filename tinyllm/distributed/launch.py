"""Starting N ranks: find ``mpiexec`` and run a command under it.

``pip install mpich`` puts MPICH's ``mpiexec`` in the environment's ``bin`` folder, next to
the Python interpreter, which is not always on ``PATH`` (a virtual environment that was not
activated, a notebook's kernel). :func:`find_mpiexec` looks there first.

``python -m tinyllm train --nproc 2 ...`` is the same as
``mpiexec -n 2 python -m tinyllm train --distributed ...``, with each rank's BLAS threads
limited to its share of the cores (one rank per core, not two threads per rank fighting
for one core).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig

__all__ = ["find_mpiexec", "launch_environment", "rank_command", "run_under_mpiexec"]

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def find_mpiexec() -> str:
    """The path of ``mpiexec``: next to this Python first (where the ``mpich`` wheel puts
    it), then on ``PATH``; a clear error if there is none."""
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        candidate = os.path.join(folder, "mpiexec")
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("mpiexec")
    if found is None:
        raise FileNotFoundError("mpiexec was not found next to this Python nor on PATH: pip install mpich mpi4py "
                                "(or pip install 'tinyllm[distributed]')")
    return found


def launch_environment(nproc: int) -> dict:
    """This process's environment, with BLAS threads per rank = cores // nproc (unless set)."""
    env = dict(os.environ)
    threads = str(max(1, (os.cpu_count() or 1) // nproc))
    for name in _THREAD_VARIABLES:
        env.setdefault(name, threads)
    return env


def rank_command(argv: list[str], nproc: int) -> list[str]:
    """``mpiexec -n nproc python -m tinyllm <argv>``, with ``--nproc`` taken out of argv and
    ``--distributed`` put in."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"--nproc must be a number of processes >= 1, got {nproc!r}")
    args, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token == "--nproc":
            skip = True
        elif not token.startswith("--nproc="):
            args.append(token)
    if not any(a == "--distributed" or a.startswith("--distributed=") for a in args):
        args.append("--distributed")
    return [find_mpiexec(), "-n", str(nproc), sys.executable, "-m", "tinyllm", *args]


def run_under_mpiexec(argv: list[str], nproc: int) -> int:
    """Run :func:`rank_command` and return mpiexec's exit status (1, with the reason, when
    there is no mpiexec). Ctrl-C reaches the ranks directly (they share this terminal);
    SIGTERM sent to this process is passed on to mpiexec."""
    try:
        command = rank_command(argv, nproc)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    process = subprocess.Popen(command, env=launch_environment(nproc))
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
                signal.SIGTERM: signal.signal(signal.SIGTERM, lambda signum, frame: process.send_signal(signum))}
    try:
        return process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
