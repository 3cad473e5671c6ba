"""Every `rs` command the README and docs/ show is a command that works.

A documented command is a line of a fenced code block in README.md or docs/*.md that starts with `rs `
(after a leading `$ `); its trailing `# comment` is dropped (shell rules, `shlex`). An optional part
written in brackets (`[--samples 8]`) is taken as given.

1. `test_documented_command_parses`: each one is parsed by the real CLI's argument parser (typer's click
   command tree, `make_context` down to the subcommand: nothing runs), so a subcommand or option that does
   not exist, a missing argument or a value of the wrong type fails with the file and line. A few
   placeholders (`PLACEHOLDERS`: `N`, `YYYY-MM-DD`...) stand for values of the right type when parsed.
2. `test_every_documented_command_is_run_or_skipped`: each one is either in `RUN` (run below) or in `SKIP`
   with the reason it cannot run here, and neither table names a command the docs no longer show. A new
   documented command cannot go untested silently.
3. `test_documented_commands_run`: the commands of `RUN`, in that order, each as a user runs it (`rs` in
   its own process), in one lab whose models (`smollm2-135m`, `qwen3-8b`, `my-vllm` as the docs name them)
   point at a scripted OpenAI-compatible server on 127.0.0.1; each must exit 0 (and print what `EXPECT`
   names). The commands run as written except for the substitutions of `SUBSTITUTIONS`, listed there
   with their reason: only endpoint URLs that point at servers this machine does not have are replaced
   (by the scripted server's); no scope is reduced (`--precision medium`, `--points all` run as written:
   the scripted server answers at once). Between commands, `SETUP` steps edit the lab's models.yaml as a
   user would (a new model version to compare with, a tokenizer for the token-FFT).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from helpers import RS, lab_env, make_lab, scripted_model
from typer.main import get_command

from rs_dagster.cli import app
from rs_dagster.settings import PACKAGE_ROOT, Settings
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

DOC_FILES = [PACKAGE_ROOT / "README.md", *sorted((PACKAGE_ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^\s*(```|~~~)")

# Placeholders a documented command may use, and a value of the right type that parsing gets instead.
PLACEHOLDERS = {"N": "2", "K": "2", "PORT": "8000", "YYYY-MM-DD": "2026-12-01"}

# Documented commands that cannot run here, with the reason. Each is still parsed by the real CLI.
SKIP = {
    "rs explore": "a web server that runs until Ctrl-C (tests/test_explore.py and tests/test_explore_browser.py test it)",
    "rs serve-model --port 8765": "serves the bundled model with llama.cpp until Ctrl-C (tests/test_serve_model.py)",
    "rs serve-calibration --port 8766": "serves the calibration endpoint until Ctrl-C (tests/test_calibration.py evaluates its responder)",
    "rs demo": "serves the bundled SmolLM2 with llama.cpp and asks it 96 questions (and the calibration endpoint as many), "
               "about two minutes on 2 cores "
               "(tests/test_cli.py::test_demo_against_the_bundled_real_model runs it, scaled down)",
}

# Replaced in the documented commands before they run: (documented token, replacement, reason).
SUBSTITUTIONS = [
    ("http://127.0.0.1:8000/v1", "{server}", "the docs' vLLM server on port 8000 is not running here: the scripted server stands in"),
    ("https://host/v1", "{server}", "a hosted endpoint is not reachable from the test: the scripted server stands in (MY_API_KEY is set to a dummy key)"),
]

# The commands run, in this order (a SETUP step's name stands between them where the lab must change first).
RUN = [
    "rs tasks list",
    "rs tasks show arithmetic",
    """rs tasks generate boolean --params '{"length": 6, "depth": 2, "notation": "on_off"}' --count 3""",
    "rs eval --model smollm2-135m --tasks arithmetic --tier easy --samples 4",
    "rs eval --model smollm2-135m --tier easy --force",
    "rs eval --model smollm2-135m --tasks arithmetic,boolean --tier easy --parallel 1",
    "rs eval --model my-vllm --base-url http://127.0.0.1:8000/v1 --served-model Qwen/Qwen3-8B --tier easy",
    "rs eval --model hosted --base-url https://host/v1 --served-model name --api-key-env MY_API_KEY",
    "rs eval --model qwen3-8b,my-vllm --tier easy",
    "rs compare qwen3-8b my-vllm --tasks arithmetic",
    "setup: a new version of qwen3-8b",
    "rs eval --model qwen3-8b --fresh-seeds 2",  # evaluates the new version on its suite's items (and fresh ones)
    "rs compare qwen3-8b",
    "rs watch --model smollm2-135m",
    # the wider scopes last: every later command's report covers what they add
    "rs eval --model smollm2-135m --tasks dates --surface unit_by_offset --samples 4",
    "rs eval --model smollm2-135m --tasks arithmetic --tier easy,medium --samples 16",
    "rs eval --model smollm2-135m --tasks arithmetic,boolean --projection all --precision medium",
    "rs eval --model smollm2-135m --tasks arithmetic --points all --samples 2",
    "rs status",
    "rs status --json",
    "rs leaderboard",
    "rs cache stats",
    "rs cache prune --unreferenced --dry-run",
    "setup: a tokenizer for smollm2-135m",
    "rs fft --model smollm2-135m --task arithmetic --projection whitespace [--samples 8]",
]

# What some commands must print (stdout), beyond exiting 0.
EXPECT = {
    "rs tasks list": "arithmetic",
    "rs eval --model smollm2-135m --tasks arithmetic --tier easy --samples 4": "Report:",
    "rs watch --model smollm2-135m": "Nights of smollm2-135m",
    "rs status --json": "\"pairs\"",
    "rs leaderboard": "Leaderboard",
    "rs compare qwen3-8b my-vllm --tasks arithmetic": "Paired comparison",
    "rs compare qwen3-8b": "previous version",
    "rs cache prune --unreferenced --dry-run": "would remove",
}


@dataclass(frozen=True)
class Documented:
    file: str
    line: int
    text: str  # as written, without its comment

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def tokens(command: str) -> tuple[str, ...]:
    return tuple(shlex.split(command, comments=True))


def unbracket(args: tuple[str, ...]) -> list[str]:
    """`[--samples 8]` (an optional part, as docs write it) taken as given: `--samples 8`."""
    result, optional = [], False
    for arg in args:
        if arg.startswith("[-"):
            arg, optional = arg[1:], True
        if optional and arg.endswith("]"):
            arg, optional = arg[:-1], False
        result.append(arg)
    return result


def documented_commands() -> list[Documented]:
    found = []
    for path in DOC_FILES:
        fenced = False
        for number, raw in enumerate(path.read_text().splitlines(), 1):
            if FENCE.match(raw):
                fenced = not fenced
                continue
            line = raw.strip()
            line = line[2:].lstrip() if line.startswith("$ ") else line
            if fenced and line.startswith("rs "):
                found.append(Documented(str(path.relative_to(PACKAGE_ROOT)), number, shlex.join(tokens(line))))
    return found


DOCUMENTED = documented_commands()


def parse(args: list[str]) -> None:
    """Parse `rs ARGS` with the real CLI down to its subcommand, executing nothing (raises a usage error)."""
    command = get_command(app)
    context = command.make_context("rs", list(args))
    while hasattr(command, "resolve_command"):  # a group: its subcommand takes the rest
        rest = [*getattr(context, "_protected_args", getattr(context, "protected_args", [])), *context.args]
        name, command, rest = command.resolve_command(context, rest)
        context = command.make_context(name, rest, parent=context)


def test_the_docs_show_commands():
    assert len(DOCUMENTED) >= 20, [d.where for d in DOCUMENTED]
    assert any(d.file == "README.md" for d in DOCUMENTED)


@pytest.mark.parametrize("documented", DOCUMENTED, ids=[d.where for d in DOCUMENTED])
def test_documented_command_parses(documented: Documented):
    args = [PLACEHOLDERS.get(arg, arg) for arg in unbracket(tokens(documented.text)[1:])]
    try:
        parse(args)
    except typer.TyperException as exc:
        pytest.fail(f"{documented.where}: `{documented.text}` does not parse: {exc.format_message()}")


def test_every_documented_command_is_run_or_skipped():
    run = {tokens(c) for c in RUN if not c.startswith("setup:")}
    skipped = {tokens(c) for c in SKIP}
    assert not run & skipped, f"both run and skipped: {sorted(' '.join(c) for c in run & skipped)}"
    untested = [f"{d.where}: {d.text}" for d in DOCUMENTED if tokens(d.text) not in run | skipped]
    assert not untested, "documented commands neither run nor skipped (add each to RUN, or to SKIP with a reason):\n" + "\n".join(untested)
    shown = {tokens(d.text) for d in DOCUMENTED}
    stale = sorted(" ".join(c) for c in (run | skipped) - shown)
    assert not stale, f"RUN or SKIP names commands the docs no longer show: {stale}"
    assert all(reason for reason in SKIP.values())
    assert all(step in SETUP for step in RUN if step.startswith("setup:")), "a setup step without its function"


def _edit_model(lab: Settings, name: str, **changes: Any) -> None:
    models = yaml.safe_load(lab.models_file.read_text())
    models["models"][name].update(changes)
    lab.models_file.write_text(yaml.safe_dump(models))


SETUP: dict[str, Callable[[Settings], None]] = {
    # `rs compare MODEL` compares a model's previous version with its current one: a new template is a new
    # version, which the next `rs eval` of the model evaluates on the same items as before.
    "setup: a new version of qwen3-8b": lambda lab: _edit_model(lab, "qwen3-8b", template="cot"),
    # `rs fft` needs the model's tokenizer (the bundled GGUF's, as assets/models.yaml gives it).
    "setup: a tokenizer for smollm2-135m": lambda lab: _edit_model(lab, "smollm2-135m", tokenizer={"source": "gguf", "path": "bundled:smollm2"}),
}

def _answer(body: dict[str, Any]) -> Reply:
    """A model that answers every question 7 in the requested form: right now and then, mostly wrong, always parsed."""
    return Reply(content="Let me think. 3 + 4 = 7.\n\nANSWER: 7", system_fingerprint="fp_docs")


def _lab(root: Path, base_url: str) -> Settings:
    small_suite = {"tasks": ["arithmetic"], "tiers": ["easy"], "precision": 2}
    models = {
        "smollm2-135m": scripted_model(base_url, served_model="smollm2-135m", suite={"tasks": ["arithmetic", "boolean"], "tiers": ["easy"], "precision": 2},
                                       watch={"tasks": ["arithmetic"], "tiers": ["easy"], "n": 4, "max_requests": 200}),
        "qwen3-8b": scripted_model(base_url, served_model="Qwen/Qwen3-8B", suite=small_suite),
        "my-vllm": scripted_model(base_url, served_model="Qwen/Qwen3-8B", suite=small_suite),
        "hosted": scripted_model(base_url, served_model="name", suite=small_suite),  # re-registered by its documented `rs eval --base-url`
    }
    return make_lab(root, models, tasks=("arithmetic", "boolean", "dates"))


def _args(command: str, server: str) -> list[str]:
    replace = {documented: replacement.format(server=server) for documented, replacement, _ in SUBSTITUTIONS}
    return [replace.get(arg, arg) for arg in unbracket(tokens(command)[1:])]


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*RS, *args], env=env, cwd=PACKAGE_ROOT, capture_output=True, text=True, timeout=600)


def test_documented_commands_run(tmp_path):
    where = {tokens(d.text): d.where for d in reversed(DOCUMENTED)}  # the first place each is shown
    timings = []
    with ScriptedServer(_answer, model_ids=("smollm2-135m", "Qwen/Qwen3-8B", "name")) as server:
        lab = _lab(tmp_path / "lab", server.base_url)
        env = {**os.environ, **lab_env(lab), "MY_API_KEY": "sk-docs-test-dummy"}
        for step in RUN:
            started = time.monotonic()
            if step.startswith("setup:"):
                SETUP[step](lab)
            else:
                args = _args(step, server.base_url)
                result = _run(args, env)
                shown = where.get(tokens(step), "?")
                assert result.returncode == 0, (
                    f"{shown}: `{step}` (run as `rs {shlex.join(args)}`) exited {result.returncode}\n"
                    f"stdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-3000:]}"
                )
                if step in EXPECT:
                    assert EXPECT[step] in result.stdout, f"{shown}: `{step}` did not print {EXPECT[step]!r}:\n{result.stdout[-2000:]}"
            timings.append((time.monotonic() - started, step))
        requests = server.completion_requests
    print(f"\n{len(timings)} steps, {sum(t for t, _ in timings):.0f} s, {requests} requests to the scripted server")
    for seconds, step in timings:
        print(f"{seconds:6.1f} s  {step}")
    assert requests > 0


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = (line.lstrip("#").strip() for line in markdown.splitlines() if line.startswith("#"))
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_relative_links_and_images_resolve():
    """Every relative link and image of the README and docs/ names a file that exists (and a heading that
    exists, for `page.md#heading`), so the pages and screenshots still resolve after a move."""
    broken = []
    for path in DOC_FILES:
        text = path.read_text()
        for number, line in enumerate(text.splitlines(), 1):
            for target in LINK.findall(line):
                if re.match(r"[a-z]+:", target):
                    continue  # https:, mailto:
                file, _, anchor = target.partition("#")
                resolved = (path.parent / file).resolve() if file else path
                if not resolved.exists():
                    broken.append(f"{path.relative_to(PACKAGE_ROOT)}:{number}: {target} (no such file)")
                elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved.read_text()):
                    broken.append(f"{path.relative_to(PACKAGE_ROOT)}:{number}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
