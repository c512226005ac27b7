"""Every shell block of the README's "Try it" and guided tour runs, in order, as written.

A fresh `pulseops sandbox` is started on free ports in an empty directory (the repository's
files are linked into it, so paths such as `bot/examples/pulseops.yml` work). Each ```bash
block of those sections is then run with bash (`set -e -o pipefail`), one after the other,
variables and shell functions carrying over from block to block as in one terminal. What is
rewritten, and nothing else: `127.0.0.1:3000` and `127.0.0.1:3001` become the chosen ports, and
`.venv/bin/` the directory of the Python running the tests.

A block fails when:
- it exits non-zero (`curl` runs with `--fail-with-body`, so an HTTP error answer fails it);
- it prints a JSON object with a top-level `"error"` (the emulator's answer to a click or a
  command the bot did not handle, or a Slack error);
- it makes PulseOps refuse something in Slack (an ephemeral "… Nothing changed." or ":warning:"
  reply), which means the tour contradicts itself;
- a ```json block right after it shows keys its output does not have.

A block is skipped only when the line just before its fence says why:
`<!-- not-runnable: reason -->`. A block that shows an HTTP error answer on purpose is marked
`<!-- http-errors-expected -->`: its `curl` is not given `--fail-with-body` and an `"error"` in
its output is fine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox_process import ROOT, Sandbox, running_sandbox

pytestmark = pytest.mark.slow

README = ROOT / "README.md"
SECTIONS = (("## Try it", "## Run the tests"), ("## A guided tour", "## Configuration reference"))
NOT_RUNNABLE = re.compile(r"<!--\s*not-runnable:\s*(.+?)\s*-->")
ERRORS_EXPECTED = re.compile(r"<!--\s*http-errors-expected\s*-->")
SHELLS = {"bash", "sh", "shell", "console"}
BLOCK_TIMEOUT = 120.0
# repository entries that belong to a user's own sandbox, never linked into the test's directory
OWN_FILES = re.compile(r"^(\.git|\.venv|test-artifacts|.*\.db(-.*)?|.*\.slack\.json)$")
ASSIGNMENT = re.compile(r"(?:^|[;&|]\s*|\bexport\s+)([A-Za-z_][A-Za-z0-9_]*)=", re.MULTILINE)
FUNCTION = re.compile(r"^\s*(?:function\s+)?([A-Za-z_][\w-]*)\s*\(\)\s*\{", re.MULTILINE)


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    heading: str
    lang: str
    code: str
    skip: str | None  # why it is not run
    errors_expected: bool
    expected_json: str | None  # a ```json block right after it

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.heading})"


def blocks(text: str) -> list[Block]:
    """The fenced blocks of the Try it and tour sections, in order (shell blocks only)."""
    lines = text.splitlines()
    inside = False
    found: list[Block] = []
    heading = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("```") and line.startswith("#"):
            if any(line.startswith(start) for start, _ in SECTIONS):
                inside = True
            elif any(line.startswith(end) for _, end in SECTIONS):
                inside = False
            if line.startswith("##"):
                heading = line.lstrip("#").strip()
        if line.startswith("```"):
            lang = line[3:].strip()
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            code = "\n".join(lines[i + 1 : end])
            if inside and lang in SHELLS:
                before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
                skip = NOT_RUNNABLE.search(before)
                found.append(
                    Block(
                        line=i + 1,
                        heading=heading,
                        lang=lang,
                        code=code,
                        skip=skip[1] if skip else None,
                        errors_expected=bool(ERRORS_EXPECTED.search(before)),
                        expected_json=_json_after(lines, end + 1),
                    )
                )
            i = end + 1
            continue
        i += 1
    return found


def _json_after(lines: list[str], start: int) -> str | None:
    j = start
    while j < len(lines) and not lines[j].strip():
        j += 1
    if j < len(lines) and lines[j].strip() == "```json":
        end = next(k for k in range(j + 1, len(lines)) if lines[k].startswith("```"))
        return "\n".join(lines[j + 1 : end])
    return None


def keys_of(value: Any) -> set[str]:
    """Every object key anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value) | set().union(*(keys_of(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_of(v) for v in value)) if value else set()
    return set()


def json_documents(output: str) -> list[Any]:
    """The JSON values printed: the whole output, else each line that is JSON on its own."""
    try:
        return [json.loads(output)]
    except ValueError:
        pass
    found = []
    for line in output.splitlines():
        line = line.strip()
        if line[:1] in "{[":
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def prelude(block: Block, *, errors_expected: bool) -> str:
    options = "-s" if errors_expected else "-s --fail-with-body"
    return (
        "set -e -o pipefail\n"
        f'curl() {{ command curl {options} --max-time 60 "$@"; }}\n'
        'if [ -f "$README_VARS" ]; then . "$README_VARS"; fi\n'
    )


def rewrite(code: str, sandbox: Sandbox) -> str:
    bot_port = sandbox.bot_url.rsplit(":", 1)[1]
    emulator_port = sandbox.emulator_url.rsplit(":", 1)[1]
    code = code.replace("127.0.0.1:3000", f"127.0.0.1:{bot_port}")
    code = code.replace("127.0.0.1:3001", f"127.0.0.1:{emulator_port}")
    return code.replace(".venv/bin/", str(Path(sys.executable).parent) + "/")


def refusals(sandbox: Sandbox, seen: int) -> tuple[list[str], int]:
    """Ephemeral refusals PulseOps showed since `seen`, and the new count."""
    ephemerals = sandbox.state()["ephemerals"]
    found = [
        e["text"]
        for e in ephemerals[seen:]
        if "Nothing changed" in e["text"] or e["text"].startswith(":warning:")
    ]
    return found, len(ephemerals)


def run_block(block: Block, sandbox: Sandbox, workdir: Path, variables: Path) -> str:
    code = rewrite(block.code, sandbox)
    # what a block defines stays defined for the next ones, as in one terminal (appended, so
    # a later definition wins when the file is sourced)
    names = sorted(set(ASSIGNMENT.findall(block.code)))
    functions = sorted(set(FUNCTION.findall(block.code)))
    save = ""
    if names:
        save += f'\ndeclare -p {" ".join(names)} >> "$README_VARS" 2>/dev/null || true'
    if functions:
        save += f'\ndeclare -f {" ".join(functions)} >> "$README_VARS" 2>/dev/null || true'
    save += "\n"
    script = prelude(block, errors_expected=block.errors_expected) + code + save
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        env={
            **os.environ,
            "README_VARS": str(variables),
            "PAGER": "cat",
            # as in a terminal where the virtual environment is active
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        stdin=subprocess.DEVNULL,
    )
    took = time.monotonic() - started
    assert done.returncode == 0, (
        f"{block} exited {done.returncode} after {took:.1f} s\n--- block\n{code}\n"
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )
    return done.stdout


def check_output(block: Block, output: str) -> None:
    documents = json_documents(output)
    if not block.errors_expected:
        failed = [d for d in documents if isinstance(d, dict) and "error" in d]
        assert not failed, f"{block} printed an error: {failed}"
    if block.expected_json is not None:
        try:
            shown = keys_of(json.loads(block.expected_json))
        except ValueError:
            shown = set(re.findall(r'"([A-Za-z_][\w.-]*)"\s*:', block.expected_json))
        printed = set().union(*(keys_of(d) for d in documents)) if documents else set()
        assert shown <= printed, (
            f"{block}: the README shows keys {sorted(shown - printed)} its output lacks\n{output}"
        )


def link_repository(workdir: Path) -> None:
    """The repository's files, seen from a directory of the test's own."""
    for entry in ROOT.iterdir():
        if not OWN_FILES.match(entry.name):
            (workdir / entry.name).symlink_to(entry)


def test_readme_blocks_are_found_and_every_skip_says_why() -> None:
    found = blocks(README.read_text(encoding="utf-8"))
    assert len(found) >= 10
    assert all(b.skip is None or b.skip.strip() for b in found)
    # the marker works on the line before the fence only
    sample = "## A guided tour\n<!-- not-runnable: needs Slack -->\n```bash\nfalse\n```\n"
    sample += '\n```bash\necho \'{"a": 1}\'\n```\n\n```json\n{"a": 1}\n```\n'
    first, second = blocks(sample)
    assert first.skip == "needs Slack" and second.skip is None
    assert second.expected_json == '{"a": 1}'


def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    for tool in ("bash", "curl", "python3"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed; the README's commands use it")
    found = blocks(README.read_text(encoding="utf-8"))
    workdir = tmp_path / "clone"
    workdir.mkdir()
    link_repository(workdir)
    variables = tmp_path / "vars.sh"
    ran = 0
    failures: list[str] = []  # every failing block is reported, not only the first
    with running_sandbox(workdir, db="pulseops-sandbox.db") as sandbox:
        seen = 0
        for block in found:
            if block.skip is not None:
                continue
            ran += 1
            try:
                output = run_block(block, sandbox, workdir, variables)
                check_output(block, output)
                time.sleep(0.3)  # let the outbox deliver what the block caused before judging
                refused, seen = refusals(sandbox, seen)
                assert not refused, f"{block}: PulseOps refused it in Slack: {refused}"
            except (AssertionError, subprocess.TimeoutExpired) as exc:
                failures.append(str(exc))
    assert not failures, "\n\n".join(failures)
    assert ran >= 10
