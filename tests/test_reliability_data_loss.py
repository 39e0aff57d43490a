"""Data loss, corrupt input and malformed requests, second round (issue 16).

Each case gets a named, actionable error and loses nothing: a report never replaces a device, a
FIFO, a symlink or an input of the run; a failed write keeps the old file; a hostile cassette is
refused quickly; a bad model spec or a malformed emulator request is a clear error.
``docs/reliability.md`` lists every case with the error a user sees and the test here.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import hypothesis  # noqa: F401  (see tests/test_reliability.py: imported once, not per pytester run)
import pytest
import yaml

from pytest_modelmigrate.files import WriteError, stale_temp_files, write_atomically
from pytest_modelmigrate.reports.writers import ReportWriteError, check_report_targets, write_reports

TEST_CHAT = """
import app

def test_it(model):
    assert app.chat(model, "hello")
"""


def cassette(project: pytest.Pytester, module: str, model: str, test: str) -> Path:
    return project.path / "cassettes" / module / model / f"{test}.yaml"


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*.tmp"))


# -- 1. where files are written ---------------------------------------------------------------------


def test_writing_to_dev_null_and_dev_stdout_writes_through_never_replaces_the_node() -> None:
    before = os.stat("/dev/null")
    write_atomically(Path("/dev/null"), "discarded\n")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    assert not [name for name in os.listdir("/dev") if name.startswith(".null.")]
    code = "from pathlib import Path; from pytest_modelmigrate.files import write_atomically as w; "
    code += "w(Path('/dev/stdout'), 'to stdout\\n')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "to stdout\n"


def test_a_fifo_with_a_reader_gets_the_report_and_stays_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    deadline = time.monotonic() + 10
    while True:  # wait for the reader to open its end
        try:
            write_atomically(fifo, "x" * 200_000)  # more than a pipe holds: the writer must block
            break
        except WriteError:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    reader.join(10)
    assert got == [b"x" * 200_000]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_fifo_nobody_reads_is_refused_at_once_never_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(WriteError) as caught:
        write_atomically(fifo, "report")
    assert time.monotonic() - started < 2
    assert str(caught.value) == (
        f"{fifo}: is a FIFO (named pipe) that no process is reading, so nothing was written; "
        "start the reader first, or give a regular file"
    )
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert temp_files(tmp_path) == []


def test_a_folder_as_the_path_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    (folder / "keep").mkdir(parents=True)
    with pytest.raises(IsADirectoryError, match="is a folder, not a file; give a file path"):
        write_atomically(folder, "report")
    run: dict[str, object] = {"outcomes": []}
    with pytest.raises(ReportWriteError) as caught:
        write_reports(run, [("--migration-json", folder, "json")])
    assert (
        str(caught.value)
        == f"--migration-json: cannot write {folder}: is a folder, not a file; give a file path"
    )
    assert (folder / "keep").is_dir()


def test_a_report_path_that_is_a_folder_names_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(model):\n    open('ran', 'w').close()\n")
    (pytester.path / "out").mkdir()
    result = pytester.runpytest("--models=a", "--migration-json=out")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --migration-json: cannot write */out: is a folder, not a file; give a file path"]
    )
    assert (pytester.path / "out").is_dir()
    assert not (pytester.path / "ran").exists()  # refused before any test ran (and spent anything)


def test_a_report_over_a_source_file_or_the_baseline_is_refused_before_the_tests(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_x="def test_it(model):\n    open('ran', 'w').close()\n")
    (pytester.path / "base.json").write_text("{}")
    for args, said in [
        (
            ("--migration-markdown=test_x.py",),
            "--migration-markdown: refusing to write */test_x.py: it is an existing .py file*",
        ),
        (
            ("--migration-json=r.json", "--migration-html=r.json"),
            "--migration-html: refusing to write */r.json: --migration-json writes the same file*",
        ),
        (
            ("--migration-baseline-compare=base.json", "--migration-json=base.json"),
            "--migration-json: refusing to write */base.json: it is the baseline (--migration-baseline-compare) this run reads*",
        ),
    ]:
        result = pytester.runpytest("--models=a", *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: {said}"])
        assert not (pytester.path / "ran").exists()


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "store" / "run.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "run.json"
    link.symlink_to(real)
    write_atomically(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new"
    assert temp_files(tmp_path) == []
    dangling = tmp_path / "later.json"
    dangling.symlink_to(tmp_path / "store" / "made-later.json")
    write_atomically(dangling, "made")
    assert dangling.is_symlink() and (tmp_path / "store" / "made-later.json").read_text() == "made"


def test_a_rerecorded_symlinked_cassette_stays_a_link(project: pytest.Pytester) -> None:
    project.makepyfile(test_chat=TEST_CHAT)
    project.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=1)
    path = cassette(project, "test_chat", "emu-a", "test_it")
    shared = project.path / "shared" / "test_it.yaml"
    shared.parent.mkdir()
    path.rename(shared)
    path.symlink_to(shared)
    before = shared.read_text()
    shared.write_text(before.replace("hello", "hello"))  # same text; the rewrite must go through the link
    project.runpytest("--models=emu-a", "--record-mode=rewrite").assert_outcomes(passed=1)
    assert path.is_symlink() and os.readlink(path) == str(shared)
    assert "interactions:" in shared.read_text()
    assert temp_files(project.path) == []


def test_temp_files_left_by_a_killed_writer_are_removed_by_the_next_write(tmp_path: Path) -> None:
    target = tmp_path / "test_it.yaml"
    target.write_text("old")
    killed = tmp_path / ".test_it.yaml.k1ll3d_x.tmp"  # what mkstemp names it; SIGKILL left it
    killed.write_text("half a cass")
    young = tmp_path / ".test_it.yaml.y0ungxx.tmp"  # a writer that started a moment ago
    young.write_text("being written")
    held = tmp_path / ".test_it.yaml.h3ldxxx.tmp"  # an old one a live writer still holds locked
    held.write_text("being written slowly")
    other = tmp_path / ".other.yaml.abcdefgh.tmp"  # another file's: not ours to judge
    other.write_text("x")
    old = time.time() - 3600
    for path in (killed, held, other):
        os.utime(path, (old, old))
    fd = os.open(held, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert stale_temp_files(target) == [killed]
        write_atomically(target, "new")
    finally:
        os.close(fd)
    assert target.read_text() == "new"
    assert temp_files(tmp_path) == sorted([young.name, held.name, other.name])


def test_a_sigkilled_writer_leaves_a_temp_file_the_next_write_removes(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    target.write_text("old")
    code = (
        "import sys, time; from pathlib import Path; from pytest_modelmigrate.files import write_atomically\n"
        "def slow(handle):\n    handle.write('half'); handle.flush(); print('writing', flush=True); time.sleep(60)\n"
        f"write_atomically(Path({str(target)!r}), slow)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "writing\n"
        left = temp_files(tmp_path)
        assert len(left) == 1
        assert stale_temp_files(target, older_than=0) == []  # alive: it holds its temp file locked
    finally:
        proc.kill()
        proc.wait()
    assert temp_files(tmp_path) == left and target.read_text() == "old"
    assert [p.name for p in stale_temp_files(target, older_than=0)] == left
    old = time.time() - 60
    os.utime(tmp_path / left[0], (old, old))
    write_atomically(target, "new")
    assert target.read_text() == "new" and temp_files(tmp_path) == []


def _disk_full(*args: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_disk_full_keeps_the_old_file_whole_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    target = tmp_path / "cassettes" / "test_it.yaml"
    target.parent.mkdir()
    target.write_text("the old recording\n")

    def fill_up(handle: object) -> None:
        handle.write("the new record")  # type: ignore[attr-defined]
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "fsync":
        monkeypatch.setattr(os, "fsync", _disk_full)
    with pytest.raises(OSError) as caught:
        write_atomically(target, fill_up if where == "write" else "the new recording\n")
    assert caught.value.errno == errno.ENOSPC
    assert str(caught.value) == f"{target}: No space left on device; the previous file is unchanged"
    assert target.read_text() == "the old recording\n"
    assert temp_files(tmp_path) == []


DISK_FULL_CONFTEST = """
import errno, os
import pytest


def _full(fd):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture(autouse=True)
def disk_full(request, monkeypatch):
    if "full" in request.node.name:
        monkeypatch.setattr(os, "fsync", _full)
"""

DISK_FULL_TESTS = """
import app

def test_full(model):
    assert app.chat(model, "hello")

def test_fine(model):
    assert app.chat(model, "hello")
"""


def test_a_cassette_that_cannot_be_saved_errors_that_test_only_and_keeps_the_old_file(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(test_disk=DISK_FULL_TESTS)
    project.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=2)
    old = project.path / "cassettes" / "test_disk" / "emu-a" / "test_full.yaml"
    before = old.read_bytes()
    project.makeconftest(DISK_FULL_CONFTEST)
    result = project.runpytest("--models=emu-a", "--record-mode=rewrite", "-p", "no:randomly")
    # the disk filled up at teardown, after the paid call: that (test, model) errors, the run goes on
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_full[[]emu-a[]]*",
            f"test_disk.py::test_full[[]emu-a[]]: the recording could not be saved: {old}: No space left on "
            "device; the previous file is unchanged. The calls were made; make room (or make the folder "
            "writable) and record it again: pytest 'test_disk.py::test_full[[]emu-a[]]' --models=emu-a "
            "--record-mode=rewrite",
            "*test_full *error*",
            "*test_fine *1/1 100%*",
        ]
    )
    assert "Traceback" not in result.stdout.str() and "files.py" not in result.stdout.str()
    assert old.read_bytes() == before
    assert temp_files(old.parent) == []


def test_disk_full_while_writing_a_report_names_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "run.json"
    target.write_text("{}")
    monkeypatch.setattr(os, "fsync", _disk_full)
    with pytest.raises(ReportWriteError) as caught:
        write_reports({"outcomes": []}, [("--migration-json", target, "json")])
    assert str(caught.value) == (
        f"--migration-json: cannot write {target}: No space left on device; the previous file is unchanged"
    )
    assert target.read_text() == "{}"


def test_a_report_never_overwrites_an_input(project: pytest.Pytester) -> None:
    project.makepyfile(test_chat=TEST_CHAT)
    project.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=1)
    path = cassette(project, "test_chat", "emu-a", "test_it")
    before = path.read_bytes()
    rel = path.relative_to(project.path)
    result = project.runpytest("--models=emu-a", f"--migration-json={rel}")
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --migration-json: refusing to write */{rel}: *; nothing was written; give the report a path of its own"
        ]
    )
    assert path.read_bytes() == before
    source = (project.path / "test_chat.py").read_bytes()
    result = project.runpytest("--models=emu-a", "--migration-markdown=test_chat.py")
    result.stderr.fnmatch_lines(
        [
            "ERROR: --migration-markdown: refusing to write */test_chat.py: it is an existing .py file (reports are .json, .md or .html); nothing was written; give the report a path of its own"
        ]
    )
    assert (project.path / "test_chat.py").read_bytes() == source
    result = project.runpytest("--models=emu-a", "--migration-json=r.json", "--migration-html=r.json")
    result.stderr.fnmatch_lines(
        [
            "ERROR: --migration-html: refusing to write */r.json: --migration-json writes the same file; nothing was written; give the report a path of its own"
        ]
    )


def test_check_report_targets_refuses_inputs_cassettes_and_shared_paths(tmp_path: Path) -> None:
    cassette_file = tmp_path / "renamed.txt"
    cassette_file.write_text("interactions:\n- request: {}\n")
    shard = tmp_path / "shard-1.json"
    shard.write_text("{}")
    run = {"outcomes": [], "merged": {"shards": [{"file": str(shard)}]}}
    cases = {
        cassette_file: f"--migration-json: refusing to write {cassette_file}: it holds a cassette",
        shard: f"--migration-json: refusing to write {shard}: it is a merged shard file this run reads",
    }
    for path, message in cases.items():
        with pytest.raises(ReportWriteError, match="^" + message.replace(".", r"\.")):
            write_reports(run, [("--migration-json", path, "json")])
    assert shard.read_text() == "{}"
    check_report_targets([("--migration-json", tmp_path / "fresh.json", "json")])  # a new path is fine


def test_migration_json_to_dev_stdout_prints_the_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(model): pass")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    args = ["--models=a", "--migration-json=/dev/stdout", "-s", "-p", "no:randomly", "-p", "no:cacheprovider"]
    out = subprocess.run(  # stdout a pipe, as in `pytest ... | jq`
        [sys.executable, "-m", "pytest", *args], cwd=pytester.path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert '"schema_version"' in out.stdout


# -- 2. --snapshot-update over some models keeps the others' snapshots --------------------------------

SNAP_TESTS = """
def test_answer(model, snap):
    assert {"model": model, "answer": "42"} == snap
"""
SNAP_CONFTEST = """
import pytest
import yaml
from pytest_modelmigrate.snapshots import model_snapshot

@pytest.fixture
def snap(request):
    return model_snapshot(request)
"""


def _snapshots(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.json") if "__snapshots__" in p.parts)


def test_a_snapshot_update_over_cli_only_models_keeps_the_other_models_snapshots(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT"):  # syrupy cleans up only outside workers
        monkeypatch.delenv(name, raising=False)
    pytester.makeconftest(SNAP_CONFTEST)
    pytester.makepyfile(test_snap=SNAP_TESTS)
    pytester.runpytest("--models=emu-a,emu-b", "--snapshot-update").assert_outcomes(passed=2)
    both = _snapshots(pytester.path)
    assert both == [
        "__snapshots__/emu-a/test_snap/test_answer[emu-a].json",
        "__snapshots__/emu-b/test_snap/test_answer[emu-b].json",
    ]
    kept = (pytester.path / both[0]).read_bytes()
    result = pytester.runpytest("--models=emu-b", "--snapshot-update")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*deleted*")
    assert _snapshots(pytester.path) == both and (pytester.path / both[0]).read_bytes() == kept
    # a test removed from a model that ran is still cleaned up
    pytester.makepyfile(test_snap=SNAP_TESTS + "\ndef test_gone(model, snap):\n    assert 1 == snap\n")
    pytester.runpytest("--models=emu-b", "--snapshot-update").assert_outcomes(passed=2)
    pytester.makepyfile(test_snap=SNAP_TESTS)
    result = pytester.runpytest("--models=emu-b", "--snapshot-update")
    result.stdout.fnmatch_lines(["*Deleted test_gone[[]emu-b[]]*"])
    assert _snapshots(pytester.path) == both


def test_snapshot_model_update_over_cli_only_models_keeps_the_other_models_snapshots(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(
        test_snap=SNAP_TESTS.replace("snap)", "snapshot_model)").replace("== snap", "== snapshot_model")
    )
    pytester.runpytest("--models=emu-a,emu-b", "--snapshot-update").assert_outcomes(passed=2)
    both = _snapshots(pytester.path)
    pytester.runpytest("--models=emu-b", "--snapshot-update").assert_outcomes(passed=1)
    assert _snapshots(pytester.path) == both


PLAIN_SNAPSHOT_TEST = """
def test_plain(snapshot):
    assert "not about any model" == snapshot
"""


@pytest.mark.parametrize(
    ("layout", "plugin_args"), [("same module", ()), ("own module", ("-n", "2"))], ids=["same-module", "n2"]
)
def test_a_plain_snapshot_beside_snapshot_model_neither_deletes_nor_fails_other_models_snapshots(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, plugin_args: tuple[str, ...], layout: str
) -> None:
    # syrupy's default (amber) extension scans all of __snapshots__/ and took another model's JSON
    # for an unknown file: `--snapshot-update` deleted it, and a plain replay failed on it as unused
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT"):
        monkeypatch.delenv(name, raising=False)
    model_test = SNAP_TESTS.replace("snap)", "snapshot_model)").replace("== snap", "== snapshot_model")
    if layout == "same module":
        pytester.makepyfile(test_snap=model_test + PLAIN_SNAPSHOT_TEST)
    else:
        pytester.makepyfile(test_snap=model_test, test_plain=PLAIN_SNAPSHOT_TEST)
    pytester.runpytest("--models=emu-a,emu-b", "--snapshot-update").assert_outcomes(passed=3)
    both = _snapshots(pytester.path)
    assert len(both) == 2
    for extra in ((), ("--snapshot-update",)):
        result = pytester.runpytest("--models=emu-b", *extra, *plugin_args)
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
        result.stdout.fnmatch_lines(
            [
                "snapshots: * for this run: a test uses syrupy's plain `snapshot` fixture, *(emu-a: the models *"
            ]
        )
        assert _snapshots(pytester.path) == both
    # with every model in the ini, syrupy's own rule applies and nothing is said
    pytester.makeini("[pytest]\nmodelmigrate_models = emu-a, emu-b\n")
    result = pytester.runpytest("--models=emu-b", "--snapshot-update")
    result.stdout.no_fnmatch_line("snapshots: *")
    assert _snapshots(pytester.path) == both


# -- 3. hostile YAML ---------------------------------------------------------------------------------

from pytest_modelmigrate import safeyaml  # noqa: E402
from pytest_modelmigrate.safeyaml import UnsafeYamlError, check_yaml_text  # noqa: E402


def alias_bomb(levels: int = 9, width: int = 9, key: str = "lol") -> str:
    """The "billion laughs": each level a list of ``width`` aliases of the one before."""
    lines = [f"{key}0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"{key}{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_in_milliseconds() -> None:
    bomb = alias_bomb()
    assert len(bomb) < 2500  # 9**9 = 387,420,489 strings once expanded
    started = time.monotonic()
    with pytest.raises(UnsafeYamlError) as caught:
        check_yaml_text(bomb, "cassettes/test_x/emu-a/test_it.yaml")
    assert time.monotonic() - started < 0.5
    assert str(caught.value) == (
        "cassettes/test_x/emu-a/test_it.yaml: cannot be parsed (its aliases expand to more than 100,000 "
        "nodes by line 6 (a YAML alias bomb; vcrpy never writes one)); nothing was parsed"
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("body: " + "[" * 100_000 + "]" * 100_000 + "\n", "nested more than 200 levels deep at line 1"),
        ("body: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n", "nested more than 200 levels deep at line 1"),
        ("".join(" " * i + "k:\n" for i in range(1_500)), "nested more than 200 levels deep at line 201"),
        ("x:\n" + "- " * 3_000 + "a\n", "nested more than 200 levels deep at line 2"),
    ],
    ids=["flow-sequences", "flow-mappings", "block-mappings", "compact-sequences"],
)
def test_deep_nesting_is_refused_never_a_recursion_error_or_a_crash(text: str, reason: str) -> None:
    # PyYAML's composer raises RecursionError on these; its C loader (CSafeLoader) crashes the
    # process with a segmentation fault on the first one. PyYAML 6.0.4 and later refuse deep flow
    # nesting in their scanner ("while increasing flow level"), a syntax error the check leaves
    # to the parser, which names it: either way a named error, never a crash.
    try:
        check_yaml_text(text, "c.yaml")
    except UnsafeYamlError as exc:
        assert str(exc) == f"c.yaml: cannot be parsed ({reason}); nothing was parsed"
        return
    with pytest.raises(yaml.YAMLError, match="flow level"):
        yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def test_a_huge_file_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(safeyaml, "MAX_YAML_CHARS", 1_000)  # the real limit is 128 MiB
    text = "interactions:\n- response: {body: {string: '" + "a" * 2_000 + "'}}\n"
    with pytest.raises(UnsafeYamlError) as caught:
        check_yaml_text(text, "big.yaml")
    assert str(caught.value) == (
        f"big.yaml: cannot be parsed ({len(text):,} characters, more than the 1,000 a cassette may hold "
        "(a huge scalar or a file that is not a cassette)); nothing was parsed"
    )


def test_error_class_and_fix_are_the_callers() -> None:
    class CassetteLike(RuntimeError):
        pass

    with pytest.raises(
        CassetteLike, match=r"^p\.yaml: cannot be parsed \(.*alias bomb.*\); it was left as it is$"
    ):
        check_yaml_text(alias_bomb(), "p.yaml", error=CassetteLike, fix="it was left as it is")


def test_real_cassettes_and_small_aliases_pass_quickly() -> None:
    import yaml

    files = sorted((Path(__file__).parent / "data").rglob("*.yaml"))
    assert len(files) > 50
    started = time.monotonic()
    for path in files:
        check_yaml_text(path.read_text(encoding="utf-8"), path)
    assert time.monotonic() - started < 10
    shared = {"content-type": ["application/json"]}
    text = yaml.dump({"interactions": [{"headers": shared}, {"headers": shared}]})
    assert "*id001" in text  # PyYAML writes an alias for a shared object
    check_yaml_text(text, "shared.yaml")
    check_yaml_text(alias_bomb(levels=4, width=9), "small.yaml")  # 9**4 nodes: below the limit
    check_yaml_text("interactions: [unclosed\n", "syntax.yaml")  # syntax errors are the parser's to name


BOMB_TEST = """
import app

def test_bomb(model):
    assert app.chat(model, "hello")

def test_deep(model):
    assert app.chat(model, "hello")
"""


def test_a_hostile_cassette_fails_its_test_naming_the_file(project: pytest.Pytester) -> None:
    project.makepyfile(test_hostile=BOMB_TEST)
    project.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=2)
    bomb = cassette(project, "test_hostile", "emu-a", "test_bomb")
    bomb.write_text(bomb.read_text() + alias_bomb(levels=6, width=7, key="x"))
    deep = cassette(project, "test_hostile", "emu-a", "test_deep")
    deep.write_text(deep.read_text() + "x: " + "[" * 100_000 + "]" * 100_000 + "\n")
    before = bomb.read_bytes(), deep.read_bytes()
    result = project.runpytest_subprocess("--models=emu-a", "-p", "no:randomly", timeout=120)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*test_bomb.yaml: cannot be parsed (its aliases expand to more than 100,000 nodes*",
            # "nested more than 200 levels deep at line 1", or PyYAML >= 6.0.4's own scanner limit
            "*test_deep.yaml: cannot be parsed (*",
        ],
        consecutive=False,
    )
    assert (bomb.read_bytes(), deep.read_bytes()) == before


# -- 4. model specs ----------------------------------------------------------------------------------

from pytest_modelmigrate.models import ModelSpecError, ModelSpecWarning, did_you_mean, parse_models  # noqa: E402


@pytest.mark.parametrize(
    ("value", "source", "message"),
    [
        (
            "a=x,x",
            "--models",
            "--models: 'a=x' and 'x' both name the model 'x', so it would run twice; list each model once, under one id",
        ),
        (
            "x,b=x",
            "ini modelmigrate_models",
            "ini modelmigrate_models: 'x' and 'b=x' both name the model 'x', so it would run twice; "
            "list each model once, under one id",
        ),
        (
            "gpt 4o",
            "--models",
            "--models: model name 'gpt 4o' contains a space; model names have none (did you mean 'gpt-4o'?). "
            "Write it as the provider spells it, e.g. gpt-4o",
        ),
        (
            "new=gpt  5",
            "--models",
            "--models: model name 'gpt  5' contains a space; model names have none (did you mean 'gpt-5'?). "
            "Write it as the provider spells it, e.g. gpt-5",
        ),
        (
            "gpt 4o",
            "modelmigrate adopt --model",
            "modelmigrate adopt --model: model name 'gpt 4o' contains a space; model names have none "
            "(did you mean 'gpt-4o'?). Write it as the provider spells it, e.g. gpt-4o",
        ),
    ],
)
def test_bad_model_specs_name_the_option_and_the_fix(value: str, source: str, message: str) -> None:
    with pytest.raises(ModelSpecError) as caught:
        parse_models(value, source=source)
    assert str(caught.value) == message


def test_a_cli_model_close_to_an_ini_model_gets_a_did_you_mean() -> None:
    ini = parse_models("old,new", source="ini modelmigrate_models")
    assert did_you_mean(ini, parse_models("olld,new", source="--models")) == [
        "--models: 'olld' is not one of modelmigrate_models (old, new); did you mean 'old'? "
        "It runs as a model of its own, with cassettes of its own"
    ]
    assert did_you_mean(ini, parse_models("old,new,claude-sonnet-4", source="--models")) == []
    assert did_you_mean(ini, parse_models("cand=olld", source="--models")) == []  # an alias: deliberate


def test_misspelt_cli_model_warns_when_the_settings_are_resolved() -> None:
    from pytest_modelmigrate.settings import _models

    expected = "--models: 'olld' is not one of modelmigrate_models (old, new); did you mean 'old'?"
    with pytest.warns(ModelSpecWarning, match=re.escape(expected)):
        registry, selected, _ = _models("olld,new", "old, new")
    assert [m.id for m in selected] == ["olld", "new"]  # a warning only: it may be a new candidate
    assert [m.id for m in registry] == ["old", "new", "olld"]


def test_the_did_you_mean_is_a_pytest_warning_in_the_summary(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmodelmigrate_models = old=emu-a, new=emu-b\n")
    pytester.makepyfile("def test_x(model):\n    pass\n")
    result = pytester.runpytest("--models=olld,new")
    result.stdout.fnmatch_lines(
        [
            "*PytestConfigWarning: --models: 'olld' is not one of modelmigrate_models (old, new); did you mean 'old'?*"
        ]
    )
    assert "merge_registry" not in result.stdout.str() + result.stderr.str()  # no line of settings.py
    result = pytester.runpytest("--models=olld,new", "-W", "error::pytest.PytestConfigWarning")
    assert result.ret != pytest.ExitCode.OK  # a project may make it an error


def test_models_with_a_space_or_twice_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(model): pass")
    result = pytester.runpytest("--models=gpt 4o")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --models: model name 'gpt 4o' contains a space;*did you mean 'gpt-4o'?*"]
    )
    result = pytester.runpytest("--models=a=x,x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --models: 'a=x' and 'x' both name the model 'x', so it would run twice*"]
    )


# -- 5. the emulator: malformed requests and scripted latency ------------------------------------------

import http.client  # noqa: E402
import math  # noqa: E402

from pytest_modelmigrate.emulator import Emulator  # noqa: E402
from pytest_modelmigrate.emulator.script import Script, ScriptError, parse_script_text  # noqa: E402

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
CLAUDE = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def _post(emu: Emulator, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    host, port = emu.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("POST", path)
        sent = {"Content-Type": "application/json", "Content-Length": str(len(body)), **headers}
        for key, value in sent.items():
            conn.putheader(key, value)
        conn.endheaders()
        conn.send(body)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _j(body: object) -> bytes:
    return json.dumps(body).encode()


MALFORMED = [
    (
        "not-json",
        "/v1/chat/completions",
        b"{not json",
        {},
        "We could not parse the JSON body of your request",
    ),
    ("not-an-object", "/v1/chat/completions", b"[1, 2]", {}, "The request body must be a JSON object"),
    (
        "no-model",
        "/v1/chat/completions",
        _j({"messages": CHAT["messages"]}),
        {},
        "you must provide a model parameter",
    ),
    (
        "messages-a-string",
        "/v1/chat/completions",
        _j({**CHAT, "messages": "hi"}),
        {},
        "Invalid type for 'messages': expected an array, but got a string instead.",
    ),
    (
        "tools-a-number",
        "/v1/chat/completions",
        _j({**CHAT, "tools": 3}),
        {},
        "Invalid type for 'tools': expected an array, but got an integer instead.",
    ),
    (
        "tool-a-number",
        "/v1/chat/completions",
        _j({**CHAT, "tools": [3]}),
        {},
        "Invalid type for 'tools[0]': expected an object, but got an integer instead.",
    ),
    (
        "parameters-a-string",
        "/v1/chat/completions",
        _j({**CHAT, "tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]}),
        {},
        "Invalid type for 'tools[0].function.parameters': expected an object, but got a string instead.",
    ),
    (
        "stream-a-string",
        "/v1/chat/completions",
        _j({**CHAT, "stream": "yes"}),
        {},
        "Invalid type for 'stream': expected a boolean, but got a string instead.",
    ),
    (
        "content-length-abc",
        "/v1/chat/completions",
        _j(CHAT),
        {"Content-Length": "abc"},
        "Invalid Content-Length header 'abc': expected a number of bytes",
    ),
    (
        "content-type-text",
        "/v1/chat/completions",
        _j(CHAT),
        {"Content-Type": "text/plain"},
        "Unsupported Content-Type 'text/plain': the API expects a JSON body sent as application/json",
    ),
    (
        "form-body",
        "/v1/chat/completions",
        b"model=m",
        {"Content-Type": "application/x-www-form-urlencoded"},
        "Unsupported Content-Type 'application/x-www-form-urlencoded'",
    ),
    (
        "anthropic-tools",
        "/v1/messages",
        _j({**CLAUDE, "tools": {"name": "f"}}),
        {"anthropic-version": "2023-06-01"},
        "Invalid type for 'tools': expected an array, but got an object instead.",
    ),
    (
        "anthropic-schema",
        "/v1/messages",
        _j({**CLAUDE, "tools": [{"name": "f", "input_schema": 3}]}),
        {"anthropic-version": "2023-06-01"},
        "Invalid type for 'tools[0].input_schema': expected an object, but got an integer instead.",
    ),
    (
        "responses-model",
        "/v1/responses",
        _j({"model": 3, "input": "hi"}),
        {},
        "Invalid type for 'model': expected a string, but got an integer instead.",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "headers", "message"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_a_malformed_request_gets_a_provider_shaped_400_never_a_dropped_connection(
    path: str, body: bytes, headers: dict[str, str], message: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with Emulator(time_scale=0) as emu:
        status, answer = _post(emu, path, body, headers)
        assert status == 400
        if path == "/v1/messages":
            assert answer["type"] == "error"
            error = answer["error"]
        else:
            error = answer["error"]
            assert set(error) == {"message", "type", "param", "code"}  # type: ignore[arg-type]
        assert error["type"] == "invalid_request_error"  # type: ignore[index]
        assert str(error["message"]).startswith(message)  # type: ignore[index]
        # the emulator still answers, and its thread printed no traceback
        assert _post(emu, "/v1/chat/completions", _j(CHAT), {})[0] == 200
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ({"latency_ms": math.inf}, "s.yaml: latency_ms: must be at most 3600000 ms (an hour), got inf"),
        (
            {"models": {"m": {"latency_ms": math.nan}}},
            "s.yaml: models.m.latency_ms: expected a number, got float nan",
        ),
        (
            {"models": {"m": {"rules": [{"match": "x", "reply": "y", "latency_ms": -5}]}}},
            "s.yaml: models.m.rules[0].latency_ms: must be >= 0, got -5",
        ),
    ],
    ids=["inf", "nan", "negative"],
)
def test_a_latency_that_would_stall_every_request_is_refused_at_load(
    script: dict[str, object], message: str
) -> None:
    with pytest.raises(ScriptError) as caught:
        Script.from_dict(script, "s.yaml")
    assert str(caught.value) == message


def test_yaml_inf_latency_is_refused_at_load() -> None:
    with pytest.raises(
        ScriptError, match=r"^s\.yaml: latency_ms: must be at most 3600000 ms \(an hour\), got inf$"
    ):
        parse_script_text("latency_ms: .inf\n", "s.yaml")
    assert parse_script_text("latency_ms: 3600000\n", "s.yaml").latency_ms == 3_600_000


# the disk-full conftest, and the transport as it was before any cassette opened
LEFT_PATCHED_CONFTEST = (
    DISK_FULL_CONFTEST
    + """
import httpx2

ORIGINAL = httpx2.HTTPTransport.handle_request
"""
)

LEFT_PATCHED_TESTS = """
import os
import httpx2
import openai
import conftest


def test_a_NAME(model):  # its save fails: no space left, or a key the scan refuses
    client = openai.OpenAI(base_url=os.environ["EMU_URL"] + "/v1", api_key="x", max_retries=0,
                           default_headers={"X-Llm-Creds": os.environ.get("LLM_CREDS", "none")})
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello"}])


def test_b_no_cassette():  # no model: no cassette; its call must reach the server, not test_a's file
    assert httpx2.HTTPTransport.handle_request is conftest.ORIGINAL
    client = openai.OpenAI(base_url=os.environ["EMU_URL"] + "/v1", api_key="x", max_retries=0)
    client.chat.completions.create(model="emu-a", messages=[{"role": "user", "content": "hello"}])
"""


@pytest.mark.parametrize("failure", ["disk-full", "key-refused"])
def test_a_save_that_fails_leaves_no_http_library_patched(
    project: pytest.Pytester, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    # vcrpy saves before it removes its patches: a failed save used to leave them in place, so a
    # later request outside any cassette was answered from the refused one (or recorded into it)
    project.makeconftest(LEFT_PATCHED_CONFTEST)
    project.makepyfile(
        test_left=LEFT_PATCHED_TESTS.replace("NAME", "full" if failure == "disk-full" else "key")
    )
    if failure == "key-refused":
        monkeypatch.setenv("LLM_CREDS", "sk-proj-" + "Qw7" * 15)
    result = project.runpytest("--models=emu-a", "--record-mode=once", "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    assert len(emulator.requests) == 2  # test_b's call was made, not replayed from test_a's recording
