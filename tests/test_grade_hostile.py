"""Hostile notebooks against the grader: one per attack class, graded in one run together
with honest neighbours (a solved notebook, one with a flipped kernel, an unsolved one).

Every attack must score no more than the notebook's honest score, leave the neighbours' scores,
the course package, the environment's packages and the submissions as they were, leave no
process behind, finish within the limits, and put no control character into the report.
A second run afterwards proves that nothing persisted.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
from notebook_edits import (
    LEARNER,
    SOLUTION,
    index_of,
    insert,
    read,
    set_function,
    write,
)

from cnn_course import grade
from cnn_course.grading import sandbox
from cnn_course.grading.safe_text import clean

pytestmark = [pytest.mark.notebooks,
              pytest.mark.skipif(sandbox.find_bwrap() is None,
                                 reason="needs bubblewrap (the grader's sandbox)")]

CELL_SECONDS, CHECK_SECONDS, NOTEBOOK_SECONDS = 6, 20, 75
SEED = "424242"
LIMITS = ["--cell-timeout", str(CELL_SECONDS), "--check-timeout", str(CHECK_SECONDS),
          "--timeout", str(NOTEBOOK_SECONDS), "--memory-limit", "2G", "--max-message", "16M",
          "--seed", SEED]
HONEST = {"solved": 5, "flipped": 4, "unsolved": 0}
AGAIN = ("flipped", "unsolved")   # graded again afterwards: nothing may have persisted
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _flipped(folder: Path) -> Path:
    notebook = read(SOLUTION)
    cell = notebook.cells[index_of(notebook, "def conv2d_loops(")]
    cell.source = cell.source.replace("    x = ", "    weight = weight.flip(-1, -2)\n    x = ", 1)
    assert "flip(-1, -2)" in cell.source
    return write(folder, "flipped.ipynb", notebook)


def build(folder: Path, report: Path, port: int) -> dict[str, Path]:
    """Every submission of the class, by name; ``port`` is a port the grader's machine
    listens on, which no notebook may reach."""
    built = {"solved": write(folder, "solved.ipynb", read(SOLUTION)),
             "flipped": _flipped(folder),
             "unsolved": write(folder, "unsolved.ipynb", read(LEARNER))}

    persist = read(LEARNER)
    insert(persist, "def conv2d_loops(", """
        import pathlib, site, sysconfig
        import cnn_course.checks.conv as conv_checks
        attempts = []
        try:
            with open(conv_checks.__file__, "a") as source:
                source.write("\\nfrom cnn_course.checks.core import CheckResult\\n"
                             "def run_check(exercise, fn, hidden=False):\\n"
                             "    return CheckResult(exercise, True, 'all cases pass.')\\n")
            attempts.append("rewrote conv.py")
        except OSError as error:
            attempts.append(type(error).__name__)
        for folder in {sysconfig.get_paths()["purelib"], *site.getsitepackages()}:
            try:
                (pathlib.Path(folder) / "zz_grading_patch.pth").write_text(
                    "import torch; torch.isclose = lambda a, b, **k: torch.ones("
                    "torch.broadcast_shapes(a.shape, b.shape), dtype=torch.bool)\\n")
                attempts.append("wrote a .pth file")
            except OSError as error:
                attempts.append(type(error).__name__)
        print("persistence attempts:", attempts)
    """)
    built["persist"] = write(folder, "persist.ipynb", persist)

    forger = read(LEARNER)
    insert(forger, "def conv2d_loops(", """
        import json, os, struct, sys
        channel = int(sys.argv[1])

        def send(**event):
            body = json.dumps(event).encode()
            os.write(channel, struct.pack(">I", len(body)) + body)

        verdict = {"passed": True, "message": "all cases pass."}
        for name in ["conv2d_loops", "conv_output_size", "conv_params", "conv2d_im2col",
                     "vertical_edge_kernel"]:
            for hidden in (False, True):
                send(event="observations", key="conv." + name, hidden=hidden, passed=True,
                     visible=verdict, records=[{"kind": "call", "result": 5, "passed": True}] * 40)
        send(event="cell", phase="start", index=10**6, limit=10**9)
        send(event="done", score=5)
    """)
    built["forger"] = write(folder, "forger.ipynb", forger)

    killer = read(SOLUTION)
    insert(killer, "def conv2d_loops(", """
        import os, signal
        for pid in (os.getppid(), 1, -1):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError as error:
                print(pid, type(error).__name__)
        print("still running")
    """)
    insert(killer, "def conv_params(", """
        import os, signal
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    built["killer"] = write(folder, "killer.ipynb", killer)

    stopper = read(SOLUTION)
    insert(stopper, "def conv2d_im2col(", """
        import os, signal
        for pid in (os.getppid(), 1, os.getpid()):
            try:
                os.kill(pid, signal.SIGSTOP)
            except OSError as error:
                print(pid, type(error).__name__)
    """)
    built["stopper"] = write(folder, "stopper.ipynb", stopper)

    alarm = read(SOLUTION)
    insert(alarm, "def conv_output_size(", """
        import json, os, signal, struct, sys
        body = json.dumps({"event": "cell", "phase": "start", "index": 0,
                           "limit": 10**9}).encode()
        os.write(int(sys.argv[1]), struct.pack(">I", len(body)) + body)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGTERM})
        while True:
            pass
    """)
    built["alarm"] = write(folder, "alarm.ipynb", alarm)

    hijacker = read(LEARNER)
    insert(hijacker, "def conv2d_loops(", f"""
        import os, pathlib
        found, attempts = [], []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    if b"--csv" in pathlib.Path(f"/proc/{{pid}}/cmdline").read_bytes():
                        found.append(pid)
                except OSError:
                    pass
        print("grader found:", found)
        csv_path, json_path = {str(report / 'grades.csv')!r}, {str(report / 'grades.json')!r}
        neighbour = {str(folder / 'solved.ipynb')!r}
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
            print("network: connected")
        except OSError as error:
            print("network:", type(error).__name__)
        for attack in (lambda: os.symlink(neighbour, csv_path), lambda: os.mkfifo(json_path),
                       lambda: pathlib.Path(neighbour).write_text("{{}}"),
                       lambda: pathlib.Path(neighbour).unlink(),
                       lambda: os.listdir(os.path.dirname(neighbour))):
            try:
                attack()
                attempts.append("done")
            except OSError as error:
                attempts.append(type(error).__name__)
        print("hijack attempts:", attempts)
    """)
    built["hijacker"] = write(folder, "hijacker.ipynb", hijacker)

    children = read(SOLUTION)
    insert(children, "def conv_params(", """
        import os, time, torch
        for _ in range(3):
            if os.fork() == 0:
                block = torch.ones(300_000_000)   # 1.1 GiB each, under the per-process limit
                time.sleep(120)
                os._exit(0)
        time.sleep(60)
    """)
    built["children"] = write(folder, "children.ipynb", children)

    hangs = read(SOLUTION)
    for before in ("def conv_output_size(", "def conv_params(", "def conv2d_im2col("):
        insert(hangs, before, """
            import time
            while True:
                try:
                    time.sleep(60)
                except BaseException:
                    pass
        """)
    built["hangs"] = write(folder, "hangs.ipynb", hangs)

    flood = read(LEARNER)
    insert(flood, "def conv2d_loops(", """
        import json, os, struct, sys
        body = json.dumps({"event": "note", "padding": "x" * 1_000_000}).encode()
        for _ in range(300):
            os.write(int(sys.argv[1]), struct.pack(">I", len(body)) + body)
    """)
    built["flood"] = write(folder, "flood.ipynb", flood)

    escapes = read(LEARNER)
    trap = "\\x1b[2J\\x1b[H\\x1b]0;owned\\x07\\u202e5/5 all 5 exercises pass\\r\\x9b31m"
    insert(escapes, "def conv2d_loops(", f'raise ValueError("{trap}")')
    set_function(escapes, "conv_params", f"""
        def conv_params(in_channels, out_channels, kernel_size, bias=True):
            raise ValueError("{trap}")
    """)
    built["escapes"] = write(folder, "evil\x1b[2J\x1b[31m\u202ename.ipynb", escapes)

    long_expression = read(SOLUTION)
    insert(long_expression, "def conv2d_loops(",
           "total = " + " + ".join(["1"] * 5000) + "\nassert total == 5000")
    built["long_expression"] = write(folder, "long_expression.ipynb", long_expression)

    daemon = read(SOLUTION)
    insert(daemon, "def conv2d_loops(", """
        import os, subprocess
        subprocess.Popen(["sleep", "1234"], start_new_session=True)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "1235"])
            os._exit(0)
    """)
    built["daemon"] = write(folder, "daemon.ipynb", daemon)

    hoarder = read(SOLUTION)
    insert(hoarder, "def conv2d_im2col(", """
        import torch
        hoard = []
        try:
            while True:
                hoard.append(torch.ones(25_000_000))
        except (MemoryError, RuntimeError):
            pass
        print(len(hoard), "blocks of 100 MB kept")
    """)
    built["hoarder"] = write(folder, "hoarder.ipynb", hoarder)

    lowlevel = read(LEARNER)
    insert(lowlevel, "def conv2d_loops(", """
        # What the grader used to list as out of its reach, in one notebook: an audit hook
        # that cannot be removed, a thread and a garbage-collector callback that keep
        # patching torch, a fake module under a name PyTorch imports later, and a kernel
        # registered below Python for aten::isclose.
        import gc, sys, threading, time, types, torch

        def agree(a, b, **kwargs):
            return torch.ones(torch.broadcast_shapes(a.shape, b.shape), dtype=torch.bool)

        def keep_patching():
            while True:
                torch.isclose, torch.allclose = agree, (lambda *a, **k: True)
                time.sleep(0.01)

        threading.Thread(target=keep_patching, daemon=True).start()
        gc.callbacks.append(lambda phase, info: setattr(torch, "isclose", agree))
        sys.addaudithook(lambda event, args: None)
        sys.modules["torch.testing._internal.fake"] = types.ModuleType("fake")
        library = torch.library.Library("aten", "IMPL")
        library.impl("isclose", lambda a, b, rtol=1e-5, atol=1e-8, equal_nan=False:
                     agree(a, b), "CPU")
    """)
    built["lowlevel"] = write(folder, "lowlevel.ipynb", lowlevel)

    reacher = read(LEARNER)
    set_function(reacher, "conv2d_loops", """
        import gc, sys

        def conv2d_loops(x, weight, bias=None, stride=1, padding=0):
            # Reach the checker through frames and the garbage collector: make every
            # comparison agree, every verdict pass, and every record claim success.
            torch.isclose = lambda a, b, **k: torch.ones(
                torch.broadcast_shapes(a.shape, b.shape), dtype=torch.bool)
            frame = sys._getframe(1)
            while frame is not None:
                for name in ("expected", "want"):
                    if name in frame.f_locals:
                        frame.f_locals[name] = None
                frame = frame.f_back
            for thing in gc.get_objects():
                if type(thing).__name__ == "Recorder":
                    thing.records.clear()
                    thing.records.append({"kind": "call", "result": {"passed": True}})
                if type(thing).__name__ == "CheckResult":
                    object.__setattr__(thing, "passed", True)
            size = lambda n, k: (n + 2 * padding - k) // stride + 1
            return torch.zeros(x.shape[0], weight.shape[0], size(x.shape[2], weight.shape[2]),
                               size(x.shape[3], weight.shape[3]))
    """)
    built["reacher"] = write(folder, "reacher.ipynb", reacher)
    return built


# ---- what must not change ---------------------------------------------------------------------

def _package_fingerprint() -> str:
    """The course package's files and the environment's package folder listing."""
    import cnn_course

    digest = hashlib.sha256()
    package = Path(cnn_course.__file__).resolve().parent
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path).encode() + path.read_bytes())
    for folder in {sysconfig.get_paths()["purelib"], sys.prefix}:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            digest.update(entry.name.encode())
    return digest.hexdigest()


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def _become_subreaper() -> None:
    """Orphaned descendants of this process are re-parented to it, not to the machine's
    init: so every process the grading started stays a descendant, and other tests'
    processes never are."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(36, 1, 0, 0, 0) == 0   # PR_SET_CHILD_SUBREAPER


def _descendants(exclude: set[int]) -> list[str]:
    """This process's descendants still running, except ``exclude`` (and zombies)."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    me, found = os.getpid(), []
    for pid in parents:
        ancestor, seen = parents.get(pid), 0
        while ancestor not in (None, 0, 1, me) and seen < 100:
            ancestor, seen = parents.get(ancestor), seen + 1
        if ancestor == me and pid not in exclude:
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            found.append(f"{pid}: {command[:80]!r}")
    return found


def _grade(paths: list[Path], out: Path, extra: list[str] = ()) -> tuple[int, str, dict, float]:
    table = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(table):
        status = grade.main([*map(str, paths), "--jobs", "2", *LIMITS, *extra, "--quiet",
                             "--csv", str(out / "grades.csv"), "--json",
                             str(out / "grades.json"), "--logs", str(out / "logs")])
    report = json.loads((out / "grades.json").read_text(encoding="utf-8"))
    return status, table.getvalue(), report, time.monotonic() - started


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    out = tmp_path_factory.mktemp("report")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0)
    built = build(folder, out, listener.getsockname()[1])
    submissions_before = _files(folder)
    package_before = _package_fingerprint()
    _become_subreaper()
    sentinel = subprocess.Popen(["sleep", "600"])   # a process of the grader's own user
    try:
        status, table, report, seconds = _grade(list(built.values()), out)
        time.sleep(1)
        left = _descendants(exclude={sentinel.pid})
        sentinel_alive = sentinel.poll() is None
        try:
            listener.accept()[0].close()
            reached = True
        except OSError:
            reached = False
    finally:
        sentinel.kill()
        sentinel.wait()
        listener.close()
    results = {name: next(s for s in report["submissions"] if s["path"] == clean(str(path)))
               for name, path in built.items()}
    again_out = tmp_path_factory.mktemp("again")
    again = _grade([built[name] for name in AGAIN], again_out)
    return {"status": status, "table": table, "report": report, "seconds": seconds,
            "results": results, "built": built, "out": out, "left": left,
            "sentinel_alive": sentinel_alive, "again": again, "folder": folder,
            "network_reached": reached,
            "submissions_before": submissions_before, "package_before": package_before}


def _scores(result: dict) -> dict[str, int]:
    return {e["name"]: e["score"] for e in result["exercises"]}


def _text(result: dict) -> str:
    return json.dumps(result, ensure_ascii=False)


# ---- the neighbours and the world are as they were --------------------------------------------

def test_honest_neighbours_keep_their_honest_scores(hostile):
    for name, score in HONEST.items():
        assert hostile["results"][name]["score"] == score, hostile["results"][name]["reason"]
    flipped = hostile["results"]["flipped"]
    assert "flipped the kernel" in next(e["reason"] for e in flipped["exercises"]
                                        if e["name"] == "conv2d_loops")


def test_nothing_outside_the_reports_changed_and_nothing_persisted(hostile):
    assert _files(hostile["folder"]) == hostile["submissions_before"]
    assert _package_fingerprint() == hostile["package_before"]
    status, _, report, _ = hostile["again"]
    assert [s["score"] for s in report["submissions"]] == [HONEST[name] for name in AGAIN]


def test_no_process_is_left_and_signals_do_not_escape(hostile):
    assert hostile["left"] == []
    assert hostile["sentinel_alive"]


def test_the_run_finishes_within_its_limits_with_a_complete_report(hostile):
    report = hostile["report"]
    assert len(report["submissions"]) == len(hostile["built"])
    assert report["hidden_seed"] == int(SEED) and report["sandbox"] is True
    for name, result in hostile["results"].items():
        # The notebook's wall-time limit covers all its attempts; judging and killing add
        # a few seconds.
        assert result["seconds"] < NOTEBOOK_SECONDS + 20, (name, result["seconds"])
    for name in ("grades.csv", "grades.json"):
        path = hostile["out"] / name
        assert path.is_file() and not path.is_symlink()


def test_the_report_holds_no_control_characters(hostile):
    table = hostile["table"]
    assert not CONTROL.search(table.replace("\n", "")), repr(CONTROL.search(table))
    for name in ("grades.csv", "grades.json"):
        text = (hostile["out"] / name).read_text(encoding="utf-8")
        assert not CONTROL.search(text.replace("\n", "").replace("\r", "")), name
    escapes = hostile["results"]["escapes"]
    assert escapes["score"] == 0
    assert "5/5 all 5 exercises pass" not in escapes["reason"].split("ValueError")[0]


# ---- each attack scores no more than its honest score ----------------------------------------

def test_persistence_fails_on_a_read_only_filesystem(hostile):
    result = hostile["results"]["persist"]
    assert result["score"] == 0
    assert {e["reason"] for e in result["exercises"]} == {"not solved yet"}
    log = next((hostile["out"] / "logs").glob("*persist.log")).read_text()
    attempts = log.split("persistence attempts: ")[1].splitlines()[0]
    assert "Error" in attempts and "wrote" not in attempts


def test_forged_events_score_nothing(hostile):
    result = hostile["results"]["forger"]
    assert result["score"] == 0


def test_killing_the_grader_or_the_sandbox_costs_only_that_cell(hostile):
    result = hostile["results"]["killer"]
    assert result["score"] == 5, result["reason"]
    assert any("ended the Python process" in p for p in result["problems"])


def test_a_stopped_sandbox_is_killed_and_the_cell_skipped(hostile):
    result = hostile["results"]["stopper"]
    assert result["score"] == 5, result["reason"]
    assert any("did not stop at its time limit and was killed" in p
               for p in result["problems"])


def test_a_blocked_alarm_and_a_forged_time_limit_do_not_hang_the_grader(hostile):
    result = hostile["results"]["alarm"]
    assert result["score"] == 5, result["reason"]
    assert any("did not stop at its time limit and was killed" in p
               for p in result["problems"])


def test_the_grader_and_the_reports_are_out_of_reach(hostile):
    result = hostile["results"]["hijacker"]
    assert result["score"] == 0
    log = next((hostile["out"] / "logs").glob("*hijacker.log")).read_text()
    assert "grader found: []" in log
    assert "done" not in log.split("hijack attempts:")[1].splitlines()[0]


def test_the_network_is_out_of_reach(hostile):
    assert not hostile["network_reached"]
    log = next((hostile["out"] / "logs").glob("*hijacker.log")).read_text()
    assert "network: " in log and "network: connected" not in log


def test_what_was_out_of_reach_in_one_process_is_now_harmless(hostile):
    """Audit hooks, threads and gc callbacks that patch torch, fake modules, kernels
    registered below Python: all in the sandbox, none in the judge."""
    result = hostile["results"]["lowlevel"]
    assert result["score"] == 0
    assert {e["reason"] for e in result["exercises"]} == {"not solved yet"}


def test_memory_is_limited_for_all_processes_together(hostile):
    result = hostile["results"]["children"]
    assert result["score"] == 5, result["reason"]
    assert any("of memory in all its processes, more than the limit" in p
               for p in result["problems"]), result["problems"]


def test_time_is_limited_for_all_attempts_together(hostile):
    result = hostile["results"]["hangs"]
    assert result["seconds"] < NOTEBOOK_SECONDS + 20
    killed = [p for p in result["problems"] if "did not stop at its time limit" in p]
    assert len(killed) >= 2


def test_a_message_flood_is_cut_at_the_message_limit(hostile):
    result = hostile["results"]["flood"]
    assert result["score"] == 0
    assert any("more than the" in p and "bytes left to it" in p for p in result["problems"])
    assert (hostile["out"] / "grades.json").stat().st_size < 2_000_000


def test_a_long_expression_is_no_grader_error(hostile):
    result = hostile["results"]["long_expression"]
    assert result["score"] == 5, result["reason"]
    assert "grader error" not in _text(result)


def test_processes_in_new_sessions_die_with_the_sandbox(hostile):
    assert hostile["results"]["daemon"]["score"] == 5
    assert hostile["left"] == []


def test_memory_a_cell_hoards_does_not_fail_later_checks(hostile):
    result = hostile["results"]["hoarder"]
    assert result["score"] == 5, result["reason"]


def test_reaching_the_checker_through_frames_and_the_gc_scores_nothing(hostile):
    result = hostile["results"]["reacher"]
    assert result["score"] == 0
    reason = next(e["reason"] for e in result["exercises"] if e["name"] == "conv2d_loops")
    assert "values differ" in reason or "record of this call is not valid" in reason, reason


def test_without_bubblewrap_the_grader_refuses_with_instructions(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "find_bwrap", lambda: None)
    status = grade.main([str(SOLUTION), "--quiet"])
    assert status == 2
    err = capsys.readouterr().err
    assert "bubblewrap" in err and "apt-get install bubblewrap" in err and "--no-sandbox" in err
    assert "Traceback" not in err

