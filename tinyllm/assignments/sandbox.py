"""Operating-system limits for the process that runs a student's code.

The grader's worker (:mod:`tinyllm.assignments.worker`) calls :func:`confine` on itself after
importing NumPy and tinyllm and before it reads a line of the student's code. Each layer
uses what the system offers and is skipped where it is missing; :func:`confine` returns the
names of the layers it applied, for the report:

* ``limits``: ``setrlimit`` on CPU seconds, address space, file size, open files, core dumps;
* ``nobody``: when started by root, the process becomes the user ``nobody`` if that user can
  read Python and tinyllm; otherwise it stays root with every capability dropped;
* ``seccomp`` (Linux on x86-64 and ARM64): no new process (threads are allowed), no program
  execution, no signal to another process, no ptrace, no new socket;
* ``landlock`` (Linux 5.13 or later, when enabled): the files it may read are Python's, the
  libraries' and the system's; it may write only in its own temporary folder; no network,
  no signal or ptrace beyond itself.

The judge uses the other half: :func:`set_dumpable` (other processes of the same user cannot
read its memory, environment or open files through ``/proc``, nor attach a debugger),
:func:`become_subreaper` and :func:`kill_children` (a process that escaped its process group
still ends with the task).
"""
from __future__ import annotations

import ctypes
import os
import platform
import resource
import signal
import stat
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

__all__ = ["confine", "set_dumpable", "undumpable", "become_subreaper", "kill_children", "die_with_parent"]

LINUX = sys.platform.startswith("linux")
_libc = ctypes.CDLL(None, use_errno=True) if LINUX else None

PR_SET_PDEATHSIG, PR_GET_DUMPABLE, PR_SET_DUMPABLE = 1, 3, 4
PR_CAPBSET_DROP, PR_SET_SECCOMP, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 24, 22, 36, 38


def _prctl(option, value=0) -> int:
    return _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0),
                       ctypes.c_ulong(0))


# ----------------------------------------------------------------------------- the judge's side
def set_dumpable(flag: bool) -> bool:
    """Mark this process (un)dumpable; returns the previous setting. A non-dumpable process's
    ``/proc/<pid>/{mem,environ,cwd,fd}`` and ptrace are closed to unprivileged processes."""
    if not LINUX:
        return True
    previous = _prctl(PR_GET_DUMPABLE) == 1
    _prctl(PR_SET_DUMPABLE, 1 if flag else 0)
    return previous


_undumpable = {"depth": 0, "previous": True, "lock": threading.Lock()}


@contextmanager
def undumpable():
    """This process is not dumpable inside the block, and as before after the last of the
    blocks that threads entered side by side."""
    with _undumpable["lock"]:
        if _undumpable["depth"] == 0:
            _undumpable["previous"] = set_dumpable(False)
        _undumpable["depth"] += 1
    try:
        yield
    finally:
        with _undumpable["lock"]:
            _undumpable["depth"] -= 1
            if _undumpable["depth"] == 0:
                set_dumpable(_undumpable["previous"])


def become_subreaper() -> None:
    """Orphaned descendants are re-parented to this process (so :func:`kill_children` finds
    a grandchild whose parent died), instead of to init."""
    if LINUX:
        _prctl(PR_SET_CHILD_SUBREAPER, 1)


def _children() -> list:
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                text = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = text.rsplit(")", 1)[-1].split()
            if len(fields) > 1 and int(fields[1]) == me:
                found.append(int(entry))
    return found


def kill_children(keep=None, rounds: int = 50) -> None:
    """SIGKILL every child of this process but ``keep`` (a ``Popen``), reap them, and again for
    the orphans that come back to a subreaper when their parent dies, until none is left."""
    spared = keep.pid if keep is not None else None
    for _ in range(rounds):
        children = [pid for pid in _children() if pid != spared] if LINUX else []
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        if not children:
            return
        time.sleep(0.01)


# ----------------------------------------------------------------------------- the worker's side
def die_with_parent() -> None:
    """SIGKILL this process when its parent (the judge) dies."""
    if LINUX:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def confine(workdir, cpu_seconds: float, memory_bytes: int, file_bytes: int = 64 << 20) -> list:
    """Apply every layer this system offers to the current process; the names applied."""
    applied = ["limits"]
    _set_limit(resource.RLIMIT_CORE, 0)
    _set_limit(resource.RLIMIT_CPU, int(cpu_seconds) + 1, int(cpu_seconds) + 2)
    _set_limit(resource.RLIMIT_AS, memory_bytes)
    _set_limit(resource.RLIMIT_FSIZE, file_bytes)
    _set_limit(resource.RLIMIT_NOFILE, 64)
    if os.geteuid() == 0:
        applied.append(_drop_root(workdir))
    if LINUX:
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        if _seccomp():
            applied.append("seccomp")
        abi = _landlock(workdir)
        if abi:
            applied.append(f"landlock (ABI {abi})")
    if "seccomp" not in applied and os.geteuid() != 0:
        _set_limit(resource.RLIMIT_NPROC, 0)  # per user: no fork (and no thread) at all
    die_with_parent()  # after the change of user, which clears it
    return applied


def _set_limit(which, soft, hard=None):
    hard = soft if hard is None else hard
    try:
        current_hard = resource.getrlimit(which)[1]
        if current_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        resource.setrlimit(which, (soft, hard))
    except (ValueError, OSError):  # not supported here (RLIMIT_AS on macOS)
        pass


def _readable_by_others(path) -> bool:
    """Every folder on the way is searchable and the path itself readable by "others"."""
    path = Path(path).resolve()
    for folder in [*reversed(path.parents), path]:
        mode = folder.stat().st_mode
        need = stat.S_IXOTH | (stat.S_IROTH if folder == path else 0)
        if mode & need != need:
            return False
    return True


def _drop_root(workdir) -> str:
    """Become ``nobody`` when that user can run this Python; else keep uid 0 without any
    capability (the files stay readable as their owner: landlock is what hides them)."""
    import pwd

    import tinyllm

    try:
        nobody = pwd.getpwnam("nobody")
        usable = all(_readable_by_others(p) for p in (sys.executable, os.path.dirname(os.__file__),
                                                       os.path.dirname(tinyllm.__file__)))
    except (KeyError, OSError):
        usable = False
    if usable:
        os.chown(workdir, nobody.pw_uid, nobody.pw_gid)
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
        return "nobody"
    if LINUX:
        for capability in range(64):
            _prctl(PR_CAPBSET_DROP, capability)
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
        data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable: none, twice (64 bits)
        _libc.syscall(_SYSCALLS[platform.machine()]["capset"], header, data)
        return "root without capabilities"
    return "root"


# ----------------------------------------------------------------------------- seccomp
_SYSCALLS = {  # syscall numbers, from each architecture's unistd table
    "x86_64": {"arch": 0xC000003E, "capset": 126, "clone": 56, "clone3": 435, "fork": 57, "vfork": 58,
               "execve": 59, "execveat": 322, "ptrace": 101, "kill": 62, "tkill": 200, "tgkill": 234,
               "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297, "pidfd_open": 434,
               "pidfd_send_signal": 424, "pidfd_getfd": 438, "process_vm_readv": 310,
               "process_vm_writev": 311, "socket": 41, "socketpair": 53},
    "aarch64": {"arch": 0xC00000B7, "capset": 91, "clone": 220, "clone3": 435, "execve": 221, "execveat": 281,
                "ptrace": 117, "kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138,
                "rt_tgsigqueueinfo": 240, "pidfd_open": 434, "pidfd_send_signal": 424, "pidfd_getfd": 438,
                "process_vm_readv": 270, "process_vm_writev": 271, "socket": 198, "socketpair": 199},
}
_SYSCALLS["arm64"] = _SYSCALLS["aarch64"]


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def _seccomp() -> bool:
    """A classic-BPF filter: the denied calls fail with EPERM (clone3 with ENOSYS, so that
    the C library falls back to clone, whose flags the filter can read: a thread passes)."""
    table = _SYSCALLS.get(platform.machine())
    if table is None:
        return False
    load, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_JMP|JSET|K, BPF_RET|K
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    denied = [table[name] for name in ("fork", "vfork", "execve", "execveat", "ptrace", "kill", "tkill",
                                       "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open",
                                       "pidfd_send_signal", "pidfd_getfd", "process_vm_readv",
                                       "process_vm_writev", "socket", "socketpair") if name in table]
    program = [(load, 0, 0, 4), (jeq, 1, 0, table["arch"]), (ret, 0, 0, eperm), (load, 0, 0, 0)]
    if table["arch"] == 0xC000003E:  # x32 calls share the architecture tag: refuse them all
        program += [(0x35, 0, 1, 0x40000000), (ret, 0, 0, eperm)]  # BPF_JMP|JGE|K
    program += [(jeq, 0, 1, table["clone3"]), (ret, 0, 0, enosys)]
    program += [(jeq, 0, 4, table["clone"]), (load, 0, 0, 16),  # args[0], the low 32 bits: flags
                (jset, 0, 1, 0x00010000), (ret, 0, 0, allow), (ret, 0, 0, eperm)]  # CLONE_THREAD
    for number in denied:
        program += [(jeq, 0, 1, number), (ret, 0, 0, eperm)]
    program.append((ret, 0, 0, allow))
    filters = (_SockFilter * len(program))(*[_SockFilter(*line) for line in program])
    fprog = _SockFprog(len(program), filters)
    return _libc.prctl(PR_SET_SECCOMP, 2, ctypes.byref(fprog), 0, 0) == 0  # SECCOMP_MODE_FILTER


# ----------------------------------------------------------------------------- landlock
_FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_READ_FILE, _READ_DIR = 1 << 2, 1 << 3
_FILE_ONLY = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 14) | (1 << 15)  # execute, write, read, truncate, ioctl


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _readable_paths():
    """What Python and the libraries need: their installation, the system's libraries and
    configuration, and tinyllm's package without the assignments' solutions."""
    import tinyllm

    package = Path(tinyllm.__file__).resolve().parent
    roots = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    roots |= {Path(p).resolve() for p in sys.path if p and Path(p).is_dir()}
    if (package.parent / "pyproject.toml").exists():  # a source checkout: its package, not its tests and files
        roots.discard(package.parent)
    roots.discard(Path.cwd().resolve())
    roots |= {Path(p) for p in ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/etc") if Path(p).exists()}
    roots |= {p for p in package.iterdir() if p.name != "assignments"}
    roots |= {p for p in (package / "assignments").iterdir() if p.name in ("__init__.py", "checks.py")}
    return sorted(roots), [Path(p) for p in ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")]


def _landlock(workdir) -> int:
    """Restrict the file system (and, from ABI 4, the network; from ABI 6, signals and
    abstract sockets) to what the worker needs. Returns the ABI used, 0 if unavailable."""
    create, add_rule, restrict = 444, 445, 446  # the same numbers on x86-64 and ARM64
    if platform.machine() not in _SYSCALLS:
        return 0
    abi = _libc.syscall(create, None, ctypes.c_size_t(0), ctypes.c_uint32(1))  # ..._CREATE_RULESET_VERSION
    if abi <= 0:
        return 0
    fs_rights = _FS_RIGHTS_BY_ABI[max(k for k in _FS_RIGHTS_BY_ABI if k <= abi)]
    attr = _RulesetAttr(fs_rights, 0b11 if abi >= 4 else 0, 0b11 if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = _libc.syscall(create, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return 0
    folders, devices = _readable_paths()
    rules = [(p, _READ_FILE | _READ_DIR) for p in folders] + [(p, _FILE_ONLY & fs_rights) for p in devices]
    rules.append((Path(workdir), fs_rights))
    try:
        for path, rights in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            if stat.S_ISREG(os.fstat(fd).st_mode) or stat.S_ISCHR(os.fstat(fd).st_mode):
                rights &= _FILE_ONLY
            rule = _PathBeneathAttr(rights & fs_rights, fd)
            _libc.syscall(add_rule, ctypes.c_int(ruleset), ctypes.c_int(1), ctypes.byref(rule), ctypes.c_uint32(0))
            os.close(fd)
        if _libc.syscall(restrict, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            return 0
    finally:
        os.close(ruleset)
    return abi
