"""The sandbox's child side: run as ``python -I child_runner.py`` in a process of its own, it
fences itself in and only then runs the model-written code it reads from stdin.

Standard library only, and never imported by the engine (it is run by path, so that ``-I``
keeps the environment's ``PYTHON*`` variables and the user's site out). Its layers, in the
order it raises them, and what each one guarantees:

1. resource limits (``setrlimit``, kernel): CPU seconds (SIGXCPU, then SIGKILL), address space
   (a ``MemoryError``), the size of any file written (``EFBIG``), open files, core dumps; and
   processes (``RLIMIT_NPROC``, which the kernel does not apply to root).
2. Landlock (kernel, unprivileged, also binds root; Linux 5.13+): no file or directory is
   created, written, removed or renamed outside the scratch directory; with ABI 4+ no TCP
   connect or bind; with ABI 6+ no signal to a process outside the sandbox.
3. seccomp (kernel): ``socket``/``socketpair`` fail with EPERM, ``fork``/``vfork``/``clone``
   of a process and ``execve`` too (threads stay allowed): no fork bomb, no other program.
4. an audit hook (Python): the same refusals raised early as ``PermissionError`` with a
   message that says what was refused, and ``ctypes`` refused; a tripwire for honest
   mistakes, not a boundary (the kernel layers are).

The engine adds a network namespace (``unshare``), a process group killed on the wall-clock
limit, the output cap and a clean environment (``tether.agents.sandbox.local``).

The input is one JSON document on stdin: ``{"code": str, "input": any, "limits": {...},
"scratch": str}``. The code sees ``INPUT``; its stdout and stderr are the engine's pipes.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import signal
import struct
import sys
import traceback

#: Exit codes that say which fence stopped the code (the engine reads them; code that exits
#: with one itself only claims it was stopped).
EXIT_MEMORY = 101
EXIT_REFUSED = 102
EXIT_SETUP = 103

MARK = "[sandbox]"


def _limits(limits: dict[str, float]) -> None:
    cpu = max(1, int(limits["cpu_secs"]))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    memory = int(limits["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    file_bytes = int(limits["file_bytes"])
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (1, 1))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap raises EFBIG


_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22

# Landlock: the syscall numbers are the same on every architecture.
_LL_CREATE, _LL_ADD_RULE, _LL_RESTRICT = 444, 445, 446
_LL_WRITES_V1 = (1 << 1) | (1 << 4) | (1 << 5) | sum(1 << b for b in range(6, 13))
_LL_REFER, _LL_TRUNCATE = 1 << 13, 1 << 14


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _landlock(scratch: str) -> str:
    abi = _LIBC.syscall(_LL_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return "landlock: unavailable"
    writes = _LL_WRITES_V1 | (_LL_REFER if abi >= 2 else 0) | (_LL_TRUNCATE if abi >= 3 else 0)
    net = 3 if abi >= 4 else 0  # BIND_TCP | CONNECT_TCP, no rule allows either
    scoped = 3 if abi >= 6 else 0  # abstract unix sockets and signals stay inside
    fields = [writes, net, scoped][: 1 + (abi >= 4) + (abi >= 6)]
    attr = struct.pack(f"={len(fields)}Q", *fields)
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = _LIBC.syscall(_LL_CREATE, buf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if fd < 0:
        return f"landlock: ruleset refused (errno {ctypes.get_errno()})"
    try:
        for path, access in ((scratch, writes), ("/dev/null", 1 << 1)):
            target = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = _PathBeneath(access, target)
                if _LIBC.syscall(_LL_ADD_RULE, fd, 1, ctypes.byref(rule), 0) != 0:
                    return f"landlock: rule refused (errno {ctypes.get_errno()})"
            finally:
                os.close(target)
        _LIBC.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if _LIBC.syscall(_LL_RESTRICT, fd, 0) != 0:
            return f"landlock: restrict refused (errno {ctypes.get_errno()})"
    finally:
        os.close(fd)
    return f"landlock: abi {abi}"


# seccomp: (audit arch, {name: number}) per machine.
_ARCHES = {
    "x86_64": (0xC000003E, {"socket": 41, "socketpair": 53, "clone": 56, "fork": 57,
                            "vfork": 58, "execve": 59, "execveat": 322, "clone3": 435}),
    "aarch64": (0xC00000B7, {"socket": 198, "socketpair": 199, "clone": 220, "execve": 221,
                             "execveat": 281, "clone3": 435}),
}  # fmt: skip
_CLONE_THREAD = 0x10000
_RET_ALLOW, _RET_KILL = 0x7FFF0000, 0x80000000
_EPERM, _ENOSYS = 1, 38


def _seccomp() -> str:
    found = _ARCHES.get(platform.machine())
    if found is None:
        return f"seccomp: no table for {platform.machine()}"
    arch, numbers = found
    ld, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06
    prog: list[tuple[int, int, int, int]] = [
        (ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, _RET_KILL), (ld, 0, 0, 0),
    ]  # fmt: skip
    if platform.machine() == "x86_64":  # the x32 numbers (0x40000000 and up) are refused
        prog += [(0x35, 0, 1, 0x40000000), (ret, 0, 0, 0x00050000 | _EPERM)]
    for name in ("socket", "socketpair", "fork", "vfork", "execve", "execveat"):
        if name in numbers:
            prog += [(jeq, 0, 1, numbers[name]), (ret, 0, 0, 0x00050000 | _EPERM)]
    prog += [(jeq, 0, 1, numbers["clone3"]), (ret, 0, 0, 0x00050000 | _ENOSYS)]
    # clone: a thread (CLONE_THREAD in the flags, its first argument) passes; a process not.
    prog += [
        (jeq, 0, 4, numbers["clone"]), (ld, 0, 0, 16), (jset, 0, 1, _CLONE_THREAD),
        (ret, 0, 0, _RET_ALLOW), (ret, 0, 0, 0x00050000 | _EPERM), (ret, 0, 0, _RET_ALLOW),
    ]  # fmt: skip
    raw = b"".join(struct.pack("=HBBI", code, jt, jf, k) for code, jt, jf, k in prog)
    filters = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("@HP", len(prog), ctypes.addressof(filters))  # struct sock_fprog
    fbuf = ctypes.create_string_buffer(fprog, len(fprog))
    _LIBC.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    ulong = ctypes.c_ulong
    if _LIBC.prctl(_PR_SET_SECCOMP, ulong(2), ulong(ctypes.addressof(fbuf)), ulong(0), ulong(0)):
        return f"seccomp: refused (errno {ctypes.get_errno()})"
    return "seccomp: on"


_WRITE_EVENTS = {
    "os.remove", "os.rmdir", "os.mkdir", "os.rename", "os.truncate", "os.chmod", "os.chown",
    "os.link", "os.symlink", "os.utime", "shutil.rmtree", "shutil.move", "shutil.copyfile",
}  # fmt: skip
_PROCESS_EVENTS = {
    "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system",
    "os.startfile", "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg",
}  # fmt: skip
_BLOCKED_MODULES = {"ctypes", "_ctypes"}


def _audit_hook(scratch: str) -> None:
    root = os.path.realpath(scratch) + os.sep

    def outside(path: object) -> bool:
        if isinstance(path, int):
            return False
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        full = os.path.realpath(os.path.join(scratch, str(path)))
        return not (full + os.sep).startswith(root) and full != "/dev/null"

    def refuse(what: str) -> None:
        raise PermissionError(f"{MARK} {what} is refused in the sandbox")

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event == "socket.__new__" or event.startswith("socket."):
            refuse("network access")
        elif event in _PROCESS_EVENTS:
            refuse(f"starting or signalling a process ({event})")
        elif event.startswith("ctypes."):
            refuse("ctypes")
        elif event == "import" and args and args[0] in _BLOCKED_MODULES:
            refuse(f"import of {args[0]}")
        elif event == "open" and len(args) >= 2:
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            )
            if writes and outside(args[0]):
                refuse(f"writing {args[0]!r} outside the scratch directory")
        elif event in _WRITE_EVENTS and args and outside(args[0]):
            refuse(f"{event} on {args[0]!r} outside the scratch directory")

    sys.addaudithook(hook)


def main() -> int:
    job = json.loads(sys.stdin.buffer.read())
    os.close(0)
    scratch, limits = job["scratch"], job["limits"]
    os.chdir(scratch)
    try:
        _limits(limits)
        layers = [_landlock(scratch), _seccomp()]
    except OSError as exc:
        print(f"{MARK} setup failed: {exc}", file=sys.stderr)
        return EXIT_SETUP
    for name in ("ctypes", "ctypes._endian", "_ctypes"):
        sys.modules.pop(name, None)
    if limits.get("audit_hook", True):  # off only to test the kernel layers on their own
        _audit_hook(scratch)
    if limits.get("report_layers"):
        print(f"{MARK} layers: {'; '.join(layers)}", file=sys.stderr)
    namespace = {"__name__": "__main__", "INPUT": job.get("input")}
    try:
        exec(compile(job["code"], "<run_code>", "exec"), namespace)  # the sandboxed child
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except MemoryError:
        print(f"{MARK} memory limit of {limits['memory_mb']} MB reached", file=sys.stderr)
        return EXIT_MEMORY
    except PermissionError as exc:
        traceback.print_exc(limit=-3)
        return EXIT_REFUSED if str(exc).startswith(MARK) else 1
    except BaseException:  # the code's own failure: its traceback is its output
        traceback.print_exc(limit=-5)
        return 1
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
