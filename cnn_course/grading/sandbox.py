"""Run a learner's notebook in an operating-system sandbox, and watch it from outside.

The sandbox is bubblewrap (``bwrap``): the filesystem is read-only and holds only what
Python, PyTorch and the course package need (no submissions, no reports, no home folder); a
private ``/tmp`` of bounded size is the only writable place; there is no network; the
sandbox has its own PID namespace, so its processes cannot see or signal anything outside,
and all of them die with it. When the grader runs as root, the learner's code runs as an
unprivileged user of its own (one per job slot), so that the kernel bounds its processes.

From outside, a monitor thread adds up the memory and counts the processes of the whole
sandbox several times a second and kills it when either passes its limit; the caller's
deadlines kill it when time is up. Nothing the sandbox sends sets a limit.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cnn_course
from cnn_course.messages import N_, tr

PACKAGE_DIR = Path(cnn_course.__file__).resolve().parent
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
_FIRST_UID = 61000          # the learners' user ids when the grader runs as root
_POLL_SECONDS = 0.05
_PAGE = os.sysconf("SC_PAGE_SIZE")

INSTALL_HELP = N_(
    "The grader runs each notebook in a bubblewrap sandbox, and bubblewrap (the 'bwrap' "
    "command) was not found. Install it (Debian/Ubuntu: sudo apt-get install bubblewrap; "
    "Fedora: sudo dnf install bubblewrap; Arch: sudo pacman -S bubblewrap) and grade again. "
    "To grade trusted notebooks without a sandbox, pass --no-sandbox: a notebook graded that "
    "way can change other notebooks' grades, your files and later runs, and the report says "
    "so at the top.")
USERNS_HELP = N_(
    "bubblewrap is installed but cannot create its namespaces here ({detail}). On Ubuntu "
    "23.10+ and Debian 13+ unprivileged user namespaces are restricted by AppArmor: allow "
    "them for bwrap with an AppArmor profile, or run `sudo sysctl -w "
    "kernel.apparmor_restrict_unprivileged_userns=0` (GitHub's Ubuntu 24.04 runners need "
    "this), or grade as root. Inside a container, bubblewrap needs the container to allow "
    "user namespaces.")


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run on this machine; the message says how to fix that."""


@dataclass(frozen=True)
class SandboxLimits:
    """What one notebook's sandbox may use, for all its processes together."""

    memory: int | None = 8 << 30     # bytes resident, all processes together
    processes: int = 64
    scratch: int = 512 << 20         # bytes of /tmp
    threads: int = 1


def find_bwrap() -> str | None:
    return shutil.which("bwrap")


def _readable_paths() -> list[Path]:
    """What the learner's Python needs to see: the interpreter, its libraries, the
    environment's packages, the course package, and the dataset folders (read-only)."""
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(),
             Path(sys.executable).resolve().parent, PACKAGE_DIR}
    for name in ("CNN_COURSE_DATA", "CNN_COURSE_DATA_MIRROR"):
        if os.environ.get(name) and Path(os.environ[name]).is_dir():
            paths.add(Path(os.environ[name]).resolve())
    home_cache = Path.home() / ".cache" / "cnn_course"
    if "CNN_COURSE_DATA" not in os.environ and home_cache.is_dir():
        paths.add(home_cache.resolve())
    # Keep only the outermost of nested paths.
    ordered = sorted(paths, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in ordered:
        if not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return kept


def _parents(path: Path) -> list[Path]:
    return [p for p in reversed(path.parents) if p != Path("/")]


def bwrap_command(bwrap: str, command: list[str], limits: SandboxLimits,
                  env: dict[str, str], info_fd: int) -> list[str]:
    """The bwrap command line that runs ``command`` in a sandbox."""
    args = [bwrap, "--info-fd", str(info_fd)]
    for system in _SYSTEM_DIRS:
        if Path(system).exists():
            args += ["--ro-bind", system, system] if not Path(system).is_symlink() \
                else ["--symlink", os.readlink(system), system]
    # The scratch /tmp comes before the read-only folders, so that a package or virtual
    # environment that lives under /tmp is bound on top of it instead of hidden by it.
    args += ["--dev", "/dev", "--proc", "/proc",
             "--perms", "1777", "--size", str(limits.scratch), "--tmpfs", "/tmp"]
    made: set[Path] = {Path("/tmp")}  # already there, and writable by the learner
    for path in _readable_paths():
        if any(path.is_relative_to(s) for s in map(Path, _SYSTEM_DIRS)):
            continue
        for parent in _parents(path):
            if parent not in made and not any(parent.is_relative_to(s)
                                               for s in map(Path, _SYSTEM_DIRS)):
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        args += ["--ro-bind", str(path), str(path)]
    args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
             "--unshare-cgroup-try", "--die-with-parent", "--new-session",
             "--chdir", "/tmp", "--clearenv"]
    if os.geteuid() == 0:
        # Root keeps only what it needs to become the learner's own user, then drops it.
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args + ["--"] + command


def sandbox_env(threads: int, quick: bool) -> dict[str, str]:
    """The environment inside: nothing of the grader's but what the course reads."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
           "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/.matplotlib",
           "IPYTHONDIR": "/tmp/.ipython", "JUPYTER_PLATFORM_DIRS": "1",
           "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONHASHSEED": "0"}
    for name in ("CNN_COURSE_DATA", "CNN_COURSE_DATA_MIRROR", "CNN_COURSE_LANG"):
        if os.environ.get(name):
            env[name] = str(Path(os.environ[name]).resolve()) if name != "CNN_COURSE_LANG" \
                else os.environ[name]
    if quick:
        env["CNN_COURSE_QUICK"] = "1"
    return env


_checked: dict[str, str | None] = {}
_checked_lock = threading.Lock()


def check_sandbox() -> None:
    """Raise :class:`SandboxUnavailable` unless bwrap can start a sandbox here (once)."""
    bwrap = find_bwrap()
    if bwrap is None:
        raise SandboxUnavailable(tr(INSTALL_HELP))
    with _checked_lock:
        if bwrap not in _checked:
            read_end, write_end = os.pipe()
            try:
                command = bwrap_command(bwrap, [sys.executable, "-I", "-c", "pass"],
                                        SandboxLimits(), {}, write_end)
                done = subprocess.run(command, capture_output=True, timeout=60,
                                      pass_fds=(write_end,))
                problem = None if done.returncode == 0 else (
                    done.stderr.decode("utf-8", "replace").strip().splitlines() or
                    [tr("exit status {code}", code=done.returncode)])[-1][:200]
            except (OSError, subprocess.SubprocessError) as error:
                problem = f"{type(error).__name__}: {error}"[:200]
            finally:
                os.close(read_end)
                os.close(write_end)
            _checked[bwrap] = problem
        problem = _checked[bwrap]
    if problem:
        raise SandboxUnavailable(tr(USERNS_HELP, detail=problem))


# ---- one run ---------------------------------------------------------------------------------

_free_uids: list[int] = []
_uid_lock = threading.Lock()


def _take_uid() -> int:
    """A user id for one sandbox: one this grader has freed, or a new one that no process on
    the machine runs as (another grader may be running too)."""
    with _uid_lock:
        if _free_uids:
            return _free_uids.pop()
        uid = getattr(_take_uid, "next", _FIRST_UID + (os.getpid() % 1000) * 64)
        while _processes_of_uid(uid):
            uid += 1
        _take_uid.next = uid + 1
        return uid


def _give_uid(uid: int) -> None:
    with _uid_lock:
        _free_uids.append(uid)


def _processes_of_uid(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


@dataclass
class Usage:
    """What the monitor saw: the largest totals, and why it killed the sandbox."""

    peak_memory: int = 0
    peak_processes: int = 0
    killed_for: str | None = None


@dataclass(eq=False)
class Run:
    """One sandboxed (or, when asked, unsandboxed) process tree and its pipes."""

    process: subprocess.Popen
    events: object              # binary file: the event channel's read end
    output: object              # binary file: stdout and stderr together
    usage: Usage = field(default_factory=Usage)
    init_pid: int | None = None  # the sandbox's first process, as seen from outside
    uid: int | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def kill(self, why: str | None = None) -> None:
        """Kill every process of the run (idempotent); ``why`` is kept when it is the first."""
        with self._lock:
            if why and not self.usage.killed_for:
                self.usage.killed_for = why
        for pid in (self.init_pid, self.process.pid):
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if self.init_pid is None:   # unsandboxed: its process group
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def close(self) -> None:
        self._stop.set()
        self.kill()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.events, self.output, self.process.stdin):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass
        if self.uid is not None:
            _give_uid(self.uid)
            self.uid = None


def _namespace_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _members(run: Run, namespace: str | None) -> list[int]:
    """The pids of every process in the run: its PID namespace, or its session."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if namespace is not None:
            if pid != run.process.pid and _namespace_of(pid) == namespace:
                found.append(pid)
        else:
            try:
                if os.getsid(pid) == run.process.pid:
                    found.append(pid)
            except OSError:
                pass
    return found


def _resident(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _monitor(run: Run, limits: SandboxLimits, namespace: str | None) -> None:
    while not run._stop.is_set() and run.process.poll() is None:
        pids = _members(run, namespace)
        memory = sum(_resident(pid) for pid in pids)
        run.usage.peak_memory = max(run.usage.peak_memory, memory)
        run.usage.peak_processes = max(run.usage.peak_processes, len(pids))
        if limits.memory and memory > limits.memory:
            run.kill(tr("used {used:.2f} GiB of memory in all its processes, more than the "
                        "limit of {limit:.2f} GiB", used=memory / 2**30,
                        limit=limits.memory / 2**30))
            return
        if len(pids) > limits.processes:
            run.kill(tr("ran {count} processes at once, more than the limit of {limit}",
                        count=len(pids), limit=limits.processes))
            return
        run._stop.wait(_POLL_SECONDS)


def _read_info(fd: int, timeout: float) -> int | None:
    """bwrap's ``--info-fd`` JSON: the sandbox's first process as seen from outside."""
    deadline, data = time.monotonic() + timeout, b""
    os.set_blocking(fd, False)
    try:
        while time.monotonic() < deadline and len(data) < 4096:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            if not chunk:
                break
            data += chunk
            try:
                pid = json.loads(data).get("child-pid")
                return pid if isinstance(pid, int) and pid > 0 else None
            except ValueError:
                continue
    finally:
        os.close(fd)
    return None


def start(command: list[str], payload: bytes, limits: SandboxLimits, quick: bool,
          sandboxed: bool = True) -> Run:
    """Start ``command`` (a Python worker) in a sandbox and write ``payload`` to its stdin.

    Three arguments are appended to ``command``: the number of the event channel's
    descriptor, the user id to become (-1: stay) and the number of processes allowed to that
    user (-1: no limit to set)."""
    events_read, events_write = os.pipe()
    env = sandbox_env(limits.threads, quick)
    uid = _take_uid() if sandboxed and os.geteuid() == 0 else None
    command = command + [str(events_write), str(-1 if uid is None else uid),
                         str(-1 if uid is None else limits.processes)]
    info_read = info_write = None
    if sandboxed:
        info_read, info_write = os.pipe()
        argv = bwrap_command(find_bwrap() or "bwrap", command, limits, env, info_write)
        keep = (events_write, info_write)
        child_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    else:
        argv = command
        keep = (events_write,)
        child_env = dict(os.environ) | env | {"TMPDIR": os.environ.get("TMPDIR", "/tmp")}
    nproc = None if uid is not None else _processes_of_uid(os.getuid()) + limits.processes

    def before_exec() -> None:
        import resource
        if nproc is not None:   # the grader's user: its own processes plus the allowance
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    try:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, pass_fds=keep, env=child_env,
                                   start_new_session=True, preexec_fn=before_exec,
                                   cwd="/" if sandboxed else os.environ.get("TMPDIR", "/tmp"))
    except BaseException:
        for fd in (events_read, events_write, info_read, info_write):
            if fd is not None:
                os.close(fd)
        if uid is not None:
            _give_uid(uid)
        raise
    os.close(events_write)
    run = Run(process, os.fdopen(events_read, "rb", buffering=0), process.stdout, uid=uid)
    if info_write is not None:
        os.close(info_write)
        run.init_pid = _read_info(info_read, timeout=30)
        if run.init_pid is None:
            run.kill(tr("did not start: bubblewrap gave no process id"))
    namespace = _namespace_of(run.init_pid) if run.init_pid else None
    if sandboxed and namespace is None:
        run.kill(tr("did not start: its PID namespace could not be read"))
    threading.Thread(target=_monitor, args=(run, limits, namespace), daemon=True).start()
    try:
        process.stdin.write(payload)
        process.stdin.close()
    except OSError:
        pass   # it died at once; the caller sees the channel close
    return run
