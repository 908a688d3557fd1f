"""The grader's reports: text from submissions made safe, files written safely, shards and
their merge, and the command line around them. No notebook runs here: the grader is replaced
by one that returns prepared results."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import random
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from cnn_course import grade
from cnn_course.grading import merge, report, shards
from cnn_course.grading.chapters import Chapter, ExerciseSpec
from cnn_course.grading.report import (
    NO_SANDBOX_WARNING,
    ReportPathError,
    format_table,
    write_csv,
    write_json,
)
from cnn_course.grading.results import (
    CaseSetResult,
    ExerciseResult,
    ResultFormatError,
    SubmissionResult,
)
from cnn_course.grading.safe_text import clean
from cnn_course.grading.shards import Shard, parse_shard, select

CONV = Chapter("01_convolution", "Convolution",
               (ExerciseSpec("conv", "conv2d_loops", "conv2d_loops"),
                ExerciseSpec("conv", "conv_params", "conv_params")), frozenset())
POOL = Chapter("03_pooling", "Pooling", (ExerciseSpec("pooling", "max_pool", "max_pool"),),
               frozenset())
CHAPTERS = [CONV, POOL]

EVIL = ("\x1b[2J\x1b]0;owned\x07\x9b31m\u202eevil\u202c\u2066x\u2069\u200b\ufeff\x7f"
        "\r\nnext\tline\x00\x85\u2028end\ud800")
# Every C0 and C1 control, DEL, bidi overrides and isolates, zero-width and other format chars.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff"
                    "\u2028\u2029\ud800-\udfff]")


def _passes(ok: bool, message: str = "ok") -> CaseSetResult:
    return CaseSetResult(ok, message)


def _exercises(chapter: Chapter, solved: int, message: str = "wrong shape") -> list:
    return [ExerciseResult(e.module, e.name, _passes(i < solved, message), _passes(i < solved))
            for i, e in enumerate(chapter.exercises)]


def fake_result(path: str) -> SubmissionResult:
    """A result that depends only on the notebook's name."""
    name = Path(path).stem
    chapter = POOL if "pool" in name else CONV
    solved = chapter.max_score if "solved" in name else (1 if "half" in name else 0)
    if "broken" in name:
        return SubmissionResult(path, None, "unreadable", "not valid JSON", seconds=0.25)
    result = SubmissionResult(path, chapter.id, max_score=chapter.max_score, seconds=1.25,
                              exercises=_exercises(chapter, solved))
    if "flagged" in name:
        result.flags.append("reads the checkers' files")
    return result


@dataclasses.dataclass
class FakeOptions:
    solutions: Path = Path("solutions")
    chapter: str | None = None
    jobs: int = 1
    limits: object = None
    seed: int | None = None
    sandbox: bool = True
    max_processes: int | None = None
    max_message: int | None = None


class FakeGrader:
    """Grades without running anything; remembers what it was given."""

    made: list[FakeGrader] = []
    before_return = None   # called with the paths, as if the world changed while grading

    def __init__(self, options: FakeOptions) -> None:
        self.options, self.chapters = options, CHAPTERS
        if hasattr(options, "seed"):
            self.seed = options.seed
        self.graded: list[Path] = []
        FakeGrader.made.append(self)

    def grade_all(self, paths, progress=None):
        self.graded = list(paths)
        results = [fake_result(str(p)) for p in self.graded]
        for done, result in enumerate(results, start=1):
            if progress:
                progress(done, len(results), result)
        if FakeGrader.before_return:
            FakeGrader.before_return(self.graded)
        return results


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(grade, "Grader", FakeGrader)
    monkeypatch.setattr(grade, "GradingOptions", FakeOptions)
    monkeypatch.delenv(grade.SEED_VARIABLE, raising=False)
    FakeGrader.made, FakeGrader.before_return = [], None
    return FakeGrader


def run(argv, capsys) -> tuple[int, str, str]:
    status = grade.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


def make_class(folder: Path, names) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("{}")
    return folder


CLASS = ["ada_solved.ipynb", "bo_half.ipynb", "cy.ipynb", "di_pool_solved.ipynb",
         "eve_broken.ipynb", "fay_flagged_solved.ipynb", "sub/gus_half.ipynb",
         "sub/hal_pool.ipynb", "ida-solved.ipynb", "jo_half.ipynb"]


# ---- safe text ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("plain text", "plain text"),
    ("✅ 中文 café naïve Ωμέγα", "✅ 中文 café naïve Ωμέγα"),
    ("\x1b[31mred\x1b[0m", "\ufffd[31mred\ufffd[0m"),
    ("\x9b2J", "\ufffd2J"),
    ("a\u202egnp.exe\u202c", "a\ufffdgnp.exe\ufffd"),
    ("pass\u200bed\u2066", "pass\ufffded\ufffd"),
    ("one\n  two\r\nthree\tfour", "one two three four"),
    ("lone \ud800 surrogate \x7f", "lone \ufffd surrogate \ufffd"),
])
def test_clean_replaces_controls_and_keeps_printable_text(text, expected):
    assert clean(text) == expected
    assert clean(expected) == expected


def test_clean_caps_length_keeps_lines_on_request_and_tames_zalgo():
    assert clean("x" * 50, 10) == "x" * 9 + "…"
    assert clean("x" * 10**7, 10) == "x" * 9 + "…"
    assert clean("a\r\nb\rc\x1bd\te", lines=True) == "a\nb\nc\ufffdd    e"
    assert clean("e" + "\u0301" * 40) == "e" + "\u0301" * 4
    assert not UNSAFE.search(clean(EVIL)) and not UNSAFE.search(clean(EVIL, lines=True)
                                                                .replace("\n", ""))


def _evil_result() -> SubmissionResult:
    result = SubmissionResult(f"sub/{EVIL}.ipynb", CONV.id, max_score=2,
                              exercises=[ExerciseResult("conv", "conv2d_loops",
                                                        _passes(False, EVIL), None),
                                         ExerciseResult("conv", "conv_params",
                                                        problem=f"raised {EVIL}")],
                              problems=[EVIL], flags=[f"flag {EVIL}"])
    result.notes.append(EVIL)          # added after creation: cleaned all the same
    result.flags += [EVIL]
    result.fatal = None
    return result


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_text_from_a_submission_never_reaches_the_reports_raw(tmp_path):
    results = [_evil_result(), SubmissionResult(EVIL, None, "unreadable", EVIL)]
    table = format_table(results, CHAPTERS, 100, warning=NO_SANDBOX_WARNING)
    assert "evil" in table and not UNSAFE.search(table.replace("\n", ""))
    write_csv(results, CHAPTERS, tmp_path / "g.csv")
    write_json(results, CHAPTERS, {"note": EVIL}, tmp_path / "g.json")
    rows = list(csv.reader(io.StringIO((tmp_path / "g.csv").read_text("utf-8"), newline="")))
    assert len(rows) == 3
    assert all(not UNSAFE.search(cell) for row in rows for cell in row)
    raw = (tmp_path / "g.json").read_text("utf-8")
    assert "\\u" not in raw   # json.dumps escapes control characters: there are none left
    assert all(not UNSAFE.search(s) for s in _strings(json.loads(raw)))


def test_results_hold_only_clean_text():
    result = _evil_result()
    texts = [result.path, result.reason, *result.problems, *result.notes, *result.flags,
             *(e.reason for e in result.exercises)]
    assert all(not UNSAFE.search(text) for text in texts)
    result.status = EVIL
    result.problems[0] = EVIL
    result.problems.insert(0, EVIL)
    assert not UNSAFE.search(result.status + "".join(result.problems))


def test_csv_cells_are_never_formulas(tmp_path):
    result = SubmissionResult("=HYPERLINK(\"http://x\")", CONV.id, max_score=2,
                              exercises=_exercises(CONV, 0), flags=["@SUM(A1)"],
                              problems=["+1+1", "-2"])
    write_csv([result, SubmissionResult("-x.ipynb", None, "unreadable", "=1+1")], CHAPTERS,
              tmp_path / "g.csv")
    rows = list(csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8", newline="")))
    assert rows[0]["submission"] == "'=HYPERLINK(\"http://x\")"
    assert rows[0]["reason"].startswith("'+1+1")
    assert rows[0]["flags"] == "'@SUM(A1)"
    assert (rows[1]["submission"], rows[1]["reason"]) == ("'-x.ipynb", "'=1+1")
    assert rows[0]["score"] == "0"


# ---- writing files --------------------------------------------------------------------------

def _writers(tmp_path):
    results = [fake_result("a_solved.ipynb")]
    return [lambda p: write_csv(results, CHAPTERS, p),
            lambda p: write_json(results, CHAPTERS, {}, p)]


@pytest.mark.parametrize("kind", ["link to a file", "link to nothing", "link to another file",
                                  "folder", "fifo"])
def test_refuses_to_write_to_anything_but_a_regular_file(tmp_path, kind):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    out = tmp_path / "out"
    if kind == "link to a file":
        out.symlink_to(target)
    elif kind == "link to nothing":
        out.symlink_to(tmp_path / "nothing")
    elif kind == "link to another file":
        (tmp_path / "other.csv").write_text("old report")
        out.symlink_to(tmp_path / "other.csv")
    elif kind == "folder":
        out.mkdir()
    else:
        os.mkfifo(out)
    for write in _writers(tmp_path):
        with pytest.raises(ReportPathError, match="refusing to write") as error:
            write(out)
        assert "\n" not in str(error.value)
    assert target.read_text() == "keep me"
    assert not (tmp_path / "nothing").exists()
    if kind == "link to another file":
        assert (tmp_path / "other.csv").read_text() == "old report"
    assert out.is_symlink() or out.is_dir() or out.is_fifo()
    assert not list(tmp_path.glob(".*.tmp"))


def test_atomic_writes_replace_the_file_and_leave_no_temporary_files(tmp_path, monkeypatch):
    out = tmp_path / "g.json"
    for write in _writers(tmp_path)[1:] * 2:
        write(out)
    assert json.loads(out.read_text("utf-8"))["submissions"]
    assert sorted(os.listdir(tmp_path)) == ["g.json"]
    before = out.read_bytes()

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        write_json([fake_result("b.ipynb")], CHAPTERS, {}, out)
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["g.json"]
    with pytest.raises(ReportPathError, match="folder .* does not exist"):
        write_json([], CHAPTERS, {}, tmp_path / "missing" / "g.json")


# ---- the command line ---------------------------------------------------------------------

def test_bad_outputs_are_refused_before_grading(tmp_path, fake, capsys):
    folder = make_class(tmp_path / "class", CLASS[:2])
    (tmp_path / "dir.csv").mkdir()
    (tmp_path / "link.json").symlink_to(tmp_path / "x.json")
    status, out, err = run([folder, "--csv", tmp_path / "dir.csv", "--json",
                            tmp_path / "link.json"], capsys)
    assert status == 2 and out == "" and not fake.made
    assert "--csv" in err and "it is a folder" in err
    assert "--json" in err and "symbolic link" in err
    status, _, err = run([folder, "--json", tmp_path / "no" / "g.json"], capsys)
    assert status == 2 and "does not exist" in err and not fake.made
    status, _, err = run([folder, "--csv", tmp_path / "g", "--json", tmp_path / "g"], capsys)
    assert status == 2 and "same file" in err


def test_outputs_that_became_unwritable_while_grading_are_reported_after_the_table(
        tmp_path, fake, capsys):
    folder = make_class(tmp_path / "class", CLASS[:3])
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    csv_path, json_path, logs = tmp_path / "g.csv", tmp_path / "g.json", tmp_path / "logs"

    def attack(paths):
        json_path.symlink_to(victim)
        logs.mkdir()
        (logs / "002_bo_half.log").symlink_to(victim)

    fake.before_return = attack
    status, out, err = run([folder, "--csv", csv_path, "--json", json_path, "--logs", logs],
                           capsys)
    assert status == 2
    assert "3 submissions" in out                       # the table came first
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 2 and all("symbolic link" in line for line in lines)
    assert victim.read_text() == "keep me"
    assert csv_path.is_file() and len(list(csv.reader(open(csv_path)))) == 4
    assert sorted(p.name for p in logs.iterdir()) == ["001_ada_solved.log",
                                                      "002_bo_half.log", "003_cy.log"]


def test_progress_lines_and_logs_are_clean(tmp_path, fake, capsys, monkeypatch):
    folder = make_class(tmp_path / "class", ["ok_solved.ipynb"])
    hostile = folder / "x\x1b[2Jy\u202e.ipynb"
    hostile.write_text("{}")
    real = fake_result

    def with_log(path):
        result = real(path)
        result.log = ("printed \x1b]0;title\x07 and \x9b2J\n" + EVIL).encode(
            "utf-8", "surrogatepass")
        return result

    monkeypatch.setitem(globals(), "fake_result", with_log)
    status, out, err = run([folder, "--logs", tmp_path / "logs"], capsys)
    assert status == 1
    assert "[2/2]" in err and not UNSAFE.search(err.replace("\n", ""))
    assert not UNSAFE.search(out.replace("\n", ""))
    for log in (tmp_path / "logs").iterdir():
        assert not UNSAFE.search(log.read_text("utf-8").replace("\n", ""))


def test_options_reach_the_grader_and_the_report(tmp_path, fake, capsys, monkeypatch):
    folder = make_class(tmp_path / "class", ["a_solved.ipynb"])
    status, out, _ = run([folder, "--seed", 42, "--max-processes", 8, "--max-message", "2M",
                          "--json", tmp_path / "g.json"], capsys)
    options = fake.made[-1].options
    assert status == 0
    assert (options.seed, options.sandbox, options.max_processes, options.max_message) == (
        42, True, 8, 2 << 20)
    meta = json.loads((tmp_path / "g.json").read_text("utf-8"))
    assert (meta["hidden_seed"], meta["sandbox"]) == (42, True)
    assert "warning" not in meta and "WARNING" not in out and "shard" not in meta

    monkeypatch.setenv(grade.SEED_VARIABLE, "7")
    run([folder], capsys)
    assert fake.made[-1].options.seed == 7
    assert grade.SEED_VARIABLE not in os.environ   # not inherited by what the grader starts
    monkeypatch.setenv(grade.SEED_VARIABLE, "")
    run([folder], capsys)
    assert 0 <= fake.made[-1].options.seed < 1 << 63
    assert fake.made[-1].options.max_message == 64 << 20
    monkeypatch.setenv(grade.SEED_VARIABLE, "not a number")
    status, _, err = run([folder], capsys)
    assert status == 2 and grade.SEED_VARIABLE in err


def test_without_the_sandbox_the_table_and_the_json_start_with_a_warning(
        tmp_path, fake, capsys):
    folder = make_class(tmp_path / "class", ["a_solved.ipynb"])
    status, out, _ = run([folder, "--no-sandbox", "--json", tmp_path / "g.json"], capsys)
    assert status == 0 and fake.made[-1].options.sandbox is False
    assert out.startswith(NO_SANDBOX_WARNING + "\n")
    data = json.loads((tmp_path / "g.json").read_text("utf-8"))
    assert next(iter(data)) == "warning" and data["warning"] == NO_SANDBOX_WARNING
    assert data["sandbox"] is False


@pytest.mark.parametrize("shard", ["0/3", "4/3", "a/b", "3", "1/0", "-1/2"])
def test_bad_shards_are_argparse_errors(shard, fake, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        grade.main([str(tmp_path), "--shard", shard])
    assert exit_.value.code == 2
    assert "--shard" in capsys.readouterr().err


def test_parse_shard():
    assert parse_shard("2/8") == Shard(2, 8) and str(Shard(2, 8)) == "2/8"


# ---- shards ---------------------------------------------------------------------------------

def test_shards_are_disjoint_cover_everything_and_do_not_depend_on_order(tmp_path):
    paths = [Path(f"class/{name}_{i}.ipynb") for i, name in
             enumerate(["ann", "bob", "cat", "dan", "eli", "fox", "gil"] * 5)]
    for count in (1, 2, 3, 7, 50):
        parts = [select(paths, Shard(k, count)) for k in range(1, count + 1)]
        flat = [p for part in parts for p in part]
        assert sorted(flat) == sorted(paths) and len(set(flat)) == len(flat)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
        shuffled = paths[:]
        random.Random(count).shuffle(shuffled)
        assert [select(shuffled, Shard(k, count)) for k in range(1, count + 1)] == parts
    # the same relative key whether given absolute (inside the current folder) or relative
    absolute = [tmp_path / p for p in paths]
    assert [p.relative_to(tmp_path) for p in select(absolute, Shard(2, 3), tmp_path)] == \
        select(paths, Shard(2, 3))
    assert shards.shard_key(Path("./class/a.ipynb")) == "class/a.ipynb"


# ---- merging --------------------------------------------------------------------------------

def _grade(tmp_path, capsys, folder, name, *extra):
    out = tmp_path / f"{name}.json"
    status, table, err = run([folder, "--seed", 5, "--quiet", "--json", out, "--csv",
                              tmp_path / f"{name}.csv", *extra], capsys)
    return status, table, out


def _table_of(stdout: str) -> str:
    return stdout[:stdout.rindex("\n", 0, stdout.rindex("\n"))]   # without the last line


def test_merging_three_shards_gives_the_report_of_one_run(tmp_path, fake, capsys):
    folder = make_class(tmp_path / "class", CLASS)
    status, table, _ = _grade(tmp_path, capsys, folder, "all")
    parts = [_grade(tmp_path, capsys, folder, f"s{k}", "--shard", f"{k}/3")
             for k in (3, 1, 2)]
    sizes = [len(json.loads(p[2].read_text())["submissions"]) for p in parts]
    assert sum(sizes) == len(CLASS) and min(sizes) >= 3
    merged_status, merged_table, err = run(
        ["merge", *(p[2] for p in parts), "--csv", tmp_path / "m.csv", "--json",
         tmp_path / "m.json"], capsys)
    assert merged_status == status == 1
    assert (tmp_path / "m.csv").read_bytes() == (tmp_path / "all.csv").read_bytes()
    assert _table_of(merged_table) == _table_of(table)
    whole = json.loads((tmp_path / "all.json").read_text("utf-8"))
    merged = json.loads((tmp_path / "m.json").read_text("utf-8"))
    assert merged["submissions"] == whole["submissions"]
    assert merged["chapters"] == whole["chapters"]
    assert merged["hidden_seed"] == 5 and merged["sandbox"] is True
    assert [s["shard"] for s in merged["shards"]] == [{"index": k, "count": 3} for k in (1, 2, 3)]
    assert merged["seconds"] == pytest.approx(sum(s["seconds"] for s in merged["shards"]))
    # and the merged report merges again, alone
    assert run(["merge", tmp_path / "m.json"], capsys)[0] == 1


def test_a_folder_named_merge_is_still_graded(tmp_path, fake, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_class(tmp_path / "merge", ["a_solved.ipynb"])
    status, out, _ = run(["merge", "--quiet"], capsys)
    assert status == 0 and fake.made and "1 submission" in out


def _shard_reports(tmp_path, fake, capsys, *extra_per_shard):
    folder = make_class(tmp_path / "class", CLASS)
    paths = []
    for k in (1, 2, 3):
        extra = extra_per_shard[k - 1] if extra_per_shard else ()
        paths.append(_grade(tmp_path, capsys, folder, f"s{k}", "--shard", f"{k}/3",
                            *extra)[2])
    return paths


def _merge_error(capsys, *reports) -> str:
    status, out, err = run(["merge", *reports], capsys)
    assert status == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_merge_refuses_shards_that_do_not_belong_together(tmp_path, fake, capsys):
    s1, s2, s3 = _shard_reports(tmp_path, fake, capsys)
    assert "missing shard 3 of 3" in _merge_error(capsys, s1, s2)
    assert "shard 2 of 3 given twice" in _merge_error(capsys, s1, s2, s2, s3)
    other = tmp_path / "other"
    other.mkdir()
    o1, o2, o3 = _shard_reports(other, fake, capsys, (), ("--seed", 6), ("--no-sandbox",))
    assert "different hidden seeds" in _merge_error(capsys, s1, o2, s3)
    assert "different sandbox settings" in _merge_error(capsys, s1, s2, o3)
    whole = _grade(tmp_path, capsys, tmp_path / "class", "whole")[2]
    assert "some reports are shards" in _merge_error(capsys, s1, s2, s3, whole)
    copy = tmp_path / "copy.json"
    copy.write_text(whole.read_text())
    assert "graded twice" in _merge_error(capsys, whole, copy)


def _edited(tmp_path, source: Path, edit) -> Path:
    data = json.loads(source.read_text("utf-8"))
    edit(data)
    path = tmp_path / f"edited{len(list(tmp_path.glob('edited*')))}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["submissions"][0].update(score="5"), r"submissions\[0\]\.score"),
    (lambda d: d["submissions"][0].update(score=99), r"does not match"),
    (lambda d: d["submissions"][0].update(path=3), r"submissions\[0\]\.path: expected a str"),
    (lambda d: d["submissions"][0].update(exercises={}), r"exercises: expected a list"),
    (lambda d: next(s for s in d["submissions"] if s["exercises"])["exercises"][0].update(
        visible=[True]), r"visible"),
    (lambda d: d["submissions"][0].update(flags=[1]), r"flags: expected a list of strings"),
    (lambda d: d["submissions"][0].update(seconds=float("nan")), r"seconds"),
    (lambda d: d["submissions"][0].update(chapter="99_nothing"), r"not among"),
    (lambda d: d["chapters"][0].update(max_score=7), r"max_score"),
    ("retitle a chapter another shard lists", r"disagree on chapter"),
    (lambda d: d.update(hidden_seed="5"), r"hidden_seed"),
    (lambda d: d.update(shard={"index": 4, "count": 3}), r"shard"),
    (lambda d: d.update(submissions=None), r"expected lists"),
])
def test_merge_refuses_reports_of_the_wrong_shape(tmp_path, fake, capsys, edit, message):
    s1, s2, s3 = _shard_reports(tmp_path, fake, capsys)
    if isinstance(edit, str):
        # Which chapters a shard lists depends on how the paths hash, so retitle one that
        # the other shards list too; otherwise there is nothing to disagree with.
        others = {c["id"] for s in (s1, s2) for c in json.loads(s.read_text("utf-8"))["chapters"]}

        def edit(d):
            shared = [c for c in d["chapters"] if c["id"] in others]
            assert shared, "the shards share no chapter"
            shared[0].update(title="Other")
        line = _merge_error(capsys, s1, s2, _edited(tmp_path, s3, edit))
    else:
        # Which submissions a shard holds also depends on how the paths hash: edit the last
        # shard that has what the edit changes (a submission with graded exercises, say).
        reports = [s1, s2, s3]
        for index in (2, 1, 0):
            try:
                reports[index] = _edited(tmp_path, reports[index], edit)
                break
            except (StopIteration, IndexError):
                continue
        line = _merge_error(capsys, *reports)
    assert re.search(message, line), line


@pytest.mark.parametrize("content", [b"", b"not json", b"[1, 2]", b"\xff\xfe", b"[" * 100000,
                                     b'{"chapters": [], "submissions": [{}]}'])
def test_merge_refuses_garbage(tmp_path, fake, capsys, content):
    path = tmp_path / "garbage.json"
    path.write_bytes(content)
    assert "garbage.json" in _merge_error(capsys, path)


def test_merge_reads_no_fifo_and_cleans_what_it_reads(tmp_path, fake, capsys):
    os.mkfifo(tmp_path / "fifo.json")
    assert "not a regular file" in _merge_error(capsys, tmp_path / "fifo.json")
    s1, s2, s3 = _shard_reports(tmp_path, fake, capsys)

    def inject(data):
        data["submissions"][0]["path"] = EVIL
        data["submissions"][0]["problems"] = [EVIL] * 3
        data["note"] = {EVIL: [EVIL]}

    status, out, _ = run(["merge", s1, s2, _edited(tmp_path, s3, inject), "--json",
                          tmp_path / "m.json"], capsys)
    assert status == 1 and not UNSAFE.search(out.replace("\n", ""))
    raw = (tmp_path / "m.json").read_text("utf-8")
    assert all(not UNSAFE.search(s) for s in _strings(json.loads(raw)))


def test_from_dict_round_trips_and_rejects_wrong_types():
    result = fake_result("x_half.ipynb")
    result.problems.append("cell 3 raised ValueError")
    again = SubmissionResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.to_dict() == result.to_dict()
    with pytest.raises(ResultFormatError):
        SubmissionResult.from_dict({**result.to_dict(), "passed": 1})
    with pytest.raises(ResultFormatError):
        SubmissionResult.from_dict([])
    assert merge.MAX_REPORT_BYTES >= 1 << 20


# ---- the grading workflow -------------------------------------------------------------------

WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "grade.yml"


def _step(job: str, contains: str) -> dict:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"][job]["steps"]
    return next(step for step in steps if contains in step.get("run", ""))


def test_the_workflow_grades_shards_in_a_sandbox_and_merges_them():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    assert set(workflow[True]["workflow_dispatch"]["inputs"]) >= {"submissions", "shards"}
    assert jobs["grade"]["strategy"]["matrix"]["shard"] == \
        "${{ fromJSON(needs.plan.outputs.shards) }}"
    setup = _step("grade", "bubblewrap")["run"]
    assert "apt-get install -y bubblewrap" in setup
    assert "kernel.apparmor_restrict_unprivileged_userns=0" in setup
    assert _step("grade", "cnn_course.grade")["env"]["CNN_COURSE_GRADE_SEED"] == \
        "${{ secrets.GRADE_SEED }}"
    assert "cnn_course.grading.merge shards/*.json" in _step("merge", "merge")["run"]
    assert jobs["merge"]["needs"] == ["plan", "grade"]


@pytest.mark.parametrize("count, shards", [("3", "[1, 2, 3]"), ("1", "[1]"), ("0", None),
                                           ("65", None), ("2; echo x", None)])
def test_the_workflow_plans_one_job_per_shard(tmp_path, count, shards):
    output = tmp_path / "output"
    output.write_text("")
    done = subprocess.run(["bash", "-e", "-c", _step("plan", "GITHUB_OUTPUT")["run"]],
                          env={**os.environ, "COUNT": count, "GITHUB_OUTPUT": str(output)},
                          capture_output=True, text=True)
    if shards is None:
        assert done.returncode != 0 and "from 1 to 64" in done.stderr
    else:
        assert done.returncode == 0, done.stderr
        assert output.read_text().splitlines() == [f"count={count}", f"shards={shards}"]


@pytest.mark.parametrize("status, ok", [(0, True), (1, True), (2, False)])
def test_the_workflows_grade_step_fails_only_when_grading_failed(tmp_path, status, ok):
    stub = tmp_path / "bin" / "python"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/args"\nexit {status}\n')
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{stub.parent}:{os.environ['PATH']}", "SHARD": "2/3",
           "CNN_COURSE_GRADE_SEED": "5", "SUBMISSIONS": "-odd folder", "CHAPTER": "1",
           "REPORT": "r.json", "LOGS": "logs"}
    done = subprocess.run(["bash", "-e", "-c", _step("grade", "cnn_course.grade")["run"]],
                          env=env, capture_output=True, text=True, cwd=tmp_path)
    assert (done.returncode == 0) == ok, done.stdout + done.stderr
    args = (tmp_path / "args").read_text().splitlines()
    assert args[:2] == ["-m", "cnn_course.grade"] and args[-2:] == ["--", "-odd folder"]
    assert "--shard" in args and "2/3" in args and "--chapter" in args
    no_seed = subprocess.run(["bash", "-e", "-c", _step("grade", "cnn_course.grade")["run"]],
                             env={**env, "CNN_COURSE_GRADE_SEED": ""}, capture_output=True,
                             text=True, cwd=tmp_path)
    assert no_seed.returncode == 2 and "GRADE_SEED" in no_seed.stdout


def test_options_may_come_before_a_double_dash_and_the_folder(tmp_path, fake, capsys):
    folder = make_class(tmp_path / "-odd", ["a_solved.ipynb"])
    status, out, _ = run(["--shard", "1/1", "--seed", 3, "--", folder], capsys)
    assert status == 0 and "1 submission" in out


def test_a_package_under_tmp_is_bound_over_the_sandbox_scratch(monkeypatch, tmp_path):
    """bwrap applies its mounts in order: the scratch /tmp must come before the read-only
    folders, or a checkout or virtual environment under /tmp would be hidden by it."""
    from cnn_course.grading import sandbox

    package = tmp_path / "checkout" / "cnn_course"
    package.mkdir(parents=True)
    monkeypatch.setattr(sandbox, "_readable_paths", lambda: [package])
    args = sandbox.bwrap_command("bwrap", ["python"], sandbox.SandboxLimits(), {}, 3)
    scratch = args.index("--tmpfs")
    assert args[scratch + 1] == "/tmp"
    bound = args.index(str(package))
    assert args[bound - 1] == "--ro-bind" and bound > scratch
    # The folders above the package are made inside the scratch, /tmp itself is left writable.
    assert "/tmp" not in [args[i + 1] for i, a in enumerate(args) if a == "--dir"]


@pytest.mark.parametrize("language, expected", [
    ("en", "returned 3, but nn.Conv2d gives 5"),
    ("zh_CN", "返回了 3，但 nn.Conv2d 得到的是 5")])
def test_a_short_reason_drops_the_case_and_the_hint_in_either_language(language, expected):
    from cnn_course.checks import conv
    from cnn_course.messages import using_language

    def wrong(*args, **kwargs):
        return 3

    with using_language(language):
        verdict = conv.run_check("conv_output_size", wrong)
        exercise = ExerciseResult("conv", "conv_output_size",
                                  CaseSetResult(verdict.passed, verdict.message))
        assert exercise.short_reason == expected
    # A report graded in English still reads short when it is merged in Chinese.
    if language == "en":
        with using_language("zh_CN"):
            assert exercise.short_reason == expected
