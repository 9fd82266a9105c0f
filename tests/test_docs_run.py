"""Docs that run: every command and Python snippet of the README and the docs site runs, at a tiny size,
through the real CLI in a temporary folder (one per page, so `results/<sweep>` is the page's last sweep).

What the test changes is written here, not guessed: TINY replaces text of a command or snippet (a
smaller grid, fewer steps), LAUNCH adds the debug executor and a small task to every launch, and
NOT_RUN names each snippet that cannot run here with the reason (Slurm, a GPU, an excerpt of a file
that runs elsewhere). A snippet that is neither run nor listed fails the test, so a new example has to
run or say why not. YAML blocks are checked too: a file the docs quote must equal the shipped one, and
a schedule or study of the user's own must compose.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from helpers import TESTS, pythonpath

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELL = ("", "bash", "console", "sh")

# Every launch: the debug executor (in one process), few steps, and the small size of its task.
LAUNCH = "executor=debug executor.threads_per_run=1"
FULL_STEPS = "full_steps=40"
TASK_SIZE = {
    "charlm": "task.context=8 task.d_model=8 task.batch_size=8 task.eval_batches=1",
    "classifier": "task.n_train=256 task.n_eval=64 task.hidden=16",
    "digits": "task.channels=2 task.batch_size=8",
    "quadratic": "",
    "script": "",
}

# Text of a command or snippet -> what runs instead: a smaller grid or run, the same command otherwise.
TINY = {
    # A token budget ignores full_steps: at the tiny charlm's 64 tokens a step, 1e6 tokens are 15,625 steps.
    "budget_unit=tokens budget=1e6,3e6": "budget_unit=tokens budget=640,1280",
    "schedule.warmup=50 budget=": "schedule.warmup=2 budget=",  # a 50-step warm-up does not fit a tiny 10-step budget
    "schedule=linear,cosine,rex,wsd budget=0.1,0.25,1.0 optimizer=sgd,adamw 'seed=range(3)'":
        "schedule=linear,cosine,rex,wsd budget=0.5,1.0 optimizer=sgd seed=0",
    "optimizer.lr=0.01,0.03 --extend-lr": "optimizer.lr=0.01,0.03 budget=1.0 --extend-lr",
    "budget=0.1,0.25,0.5,1.0 optimizer.lr=0.01,0.03,0.1,0.3,1 prune_lr=3": "budget=0.5,1.0 optimizer.lr=0.01,0.1,1 prune_lr=3",
    "budget=0.1,0.25,1.0 optimizer=sgd,adamw optimizer.lr=0.03,0.1 seed=0,1": "budget=0.5,1.0 optimizer=sgd optimizer.lr=0.03 seed=0",
    "full_steps=2000 schedule=wsd schedule.warmup=50 budget=0.1,0.25,0.5,1.0 optimizer.lr=1e-3,3e-3 seed=0,1":
        "full_steps=100 schedule=wsd schedule.warmup=2 budget=0.1,0.25,0.5,1.0 optimizer.lr=1e-3 seed=0",
    "schedule=linear,cosine,wsd budget=0.1,0.5,1.0": "schedule=linear,cosine budget=0.5,1.0",
    "schedule=linear,cosine,rex budget=0.5,1.0 full_steps=200": "schedule=linear,cosine budget=1.0 full_steps=20",
    " [--norm l2|l1|auto] [--window 0.1]": " --norm l2",  # the optional arguments, as the usage line writes them
    "sweep.init(steps=1000,": "sweep.init(steps=50,",
    "    ...                                                          # your model, optimizer, batch":
        "    loss = 1.0 / (step + 1)",
    '"budget=0.5,1.0", "executor=debug"]': '"budget=0.5,1.0", "executor=debug", "full_steps=20", "task.n_train=256"]',
    "[Curve(lr=lr_per_step, steps=observed_steps, loss=observed_loss), ...]":
        "[Curve(lr=lr_per_step, steps=observed_steps, loss=observed_loss), "
        "Curve(lr=lr_cosine, steps=observed_steps, loss=cosine_loss)]",
}
# Set-up a snippet needs before it runs (its own words say what it reads), by the snippet's first line.
SETUP = {
    "import pandas as pd, pyarrow.dataset as ds": [
        f"schedsweep launch task=classifier schedule=linear,cosine budget=1.0 --name demo {LAUNCH} full_steps=20 "
        + TASK_SIZE["classifier"], "schedsweep collect results/demo"],
    "schedsweep refine results/<sweep>/runs/<run id> --name mine [--norm l2|l1|auto] [--window 0.1]": [
        f"schedsweep launch task=classifier schedule=linear budget=1.0 {LAUNCH} {FULL_STEPS} " + TASK_SIZE["classifier"]],
    "schedsweep data corpus.txt corpus.bin": ["python -c \"open('corpus.txt', 'w').write('hello schedsweep. ' * 400)\""],
}
PYTHON_PRELUDE = {  # the names a snippet leaves to the reader: two LR sequences and their losses
    "from schedsweep.predict import Curve, fit": (
        "import numpy as np\nn = 200\nlr_per_step = np.full(n, 0.01)\n"
        "lr_cosine = 0.01 * (1 + np.cos(np.pi * np.arange(n) / n)) / 2\nobserved_steps = np.arange(9, n, 5)\n"
        "def loss_of(lr):\n    return (2.0 + 3.0 * (1.0 + 100 * np.cumsum(lr)) ** -0.5)[observed_steps]\n"
        "observed_loss, cosine_loss = loss_of(lr_per_step), loss_of(lr_cosine)\n"),
}

# Snippets that do not run here, by a command's text or a block's first line, and why.
NOT_RUN = {
    "make demo": "installs .venv and trains the 48-run demo (CI runs `make demo`)",
    "make test": "the whole test suite, of which this test is part",
    "schedsweep launch executor=slurm": "needs a Slurm cluster (tests/test_slurm.py runs launches on the test cluster)",
    "schedsweep status results/<sweep> --watch": "waits for a Slurm sweep until Ctrl-C",
    "schedsweep cancel results/<sweep>": "cancels Slurm job arrays (tests/test_slurm.py)",
    "sbatch --array": "output of a dry run on Slurm, not a command to type",
    'torch.save({"model": model.state_dict(),': "an excerpt: the user's model and optimizer are elided "
                                                "(tests/test_init_from.py writes such a checkpoint from a plain script)",
    "schedsweep launch task=classifier init_from=": "needs the user's checkpoint file (tests/test_init_from.py writes one "
                                                    "with a plain torch script and launches from it)",
    "schedsweep launch init_from=": "needs the user's checkpoint file (tests/test_init_from.py runs init_from)",
    "schedsweep prune-checkpoints results/<sweep>": "the user's sweep with kept trunks (tests/test_kept_trunks.py runs it)",
    "schedsweep launch ... ": "a template: `...` stands for the user's grid (tests/test_gpu_slots.py runs the keys)",
    "error: 2 run(s) of sweep": "the message a stale relaunch prints (tests/test_pinned_code.py checks it)",
    "9c1e... (trained with": "the same message, continued",
    "Nothing was trained. Relaunch with": "the same message, continued",
    "to keep their results": "the same message, continued",
    "schedsweep predict results/<sweep>": "fits a law on a sweep long enough to fit (minutes); tests/test_predict_cli.py runs "
                                          "these three commands on a tiny trained sweep",
    "schedsweep launch task=gpt": "a GPU and Slurm: bf16, compile and Muon on a GPT (tests/test_tasks_suite.py runs task=gpt_tiny)",
    "schedsweep launch +study=refinement": "a two-stage study of 300 runs plus 150 refined (tests/test_refine.py runs it small)",
    "class MyTask:": "the interface of a task, with `...` bodies (tests/test_tasks.py checks the protocol)",
    "class MyResNetTask:": "an excerpt: methods of a task whose model and data are elided (`...`)",
    "optimizer = torch.optim.AdamW(model.parameters(), lr=run.peak_lr)": "an excerpt of examples/train.py, which the "
                                                                         "next block runs as written",
    "import schedsweep.client.hf as sweep_hf": "needs transformers and a model (tests/test_client_integrations.py)",
    "import schedsweep.client.lightning as sweep_pl": "needs lightning and a model (tests/test_client_integrations.py)",
    "conf/                 tasks, optimizers, schedules, executors, studies (Hydra config groups)": "a folder layout",
    "results/<sweep>/": "a folder layout",
}


@dataclass(frozen=True)
class Snippet:
    page: str
    lang: str
    text: str

    @property
    def first(self) -> str:
        return next(line.strip().removeprefix("$ ") for line in self.text.splitlines() if line.strip())

    def listed(self) -> bool:
        """A block that does not run as a whole: its first line listed, or (not a shell block) any of its lines."""
        lines = [self.first] if self.lang in SHELL else [line.strip() for line in self.text.splitlines()]
        return any(not_run(line) is not None for line in lines)


def snippets() -> list[Snippet]:
    out = []
    for page in PAGES:
        if "reference" in page.parts:
            continue
        for m in re.finditer(r"^ *```(\w*)\n(.*?)^ *```", page.read_text(encoding="utf-8"), re.S | re.M):
            out.append(Snippet(str(page.relative_to(ROOT)), m.group(1), m.group(2)))
    return out


def commands(snippet: Snippet) -> list[str]:
    """The shell block's commands: continuation lines joined, prompts and comment lines dropped."""
    text = re.sub(r"\\\n\s*", " ", snippet.text)
    lines = [line.strip().removeprefix("$ ") for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def not_run(text: str) -> str | None:
    return next((why for start, why in NOT_RUN.items() if text.startswith(start)), None)


def tiny(text: str) -> str:
    for old in sorted(TINY, key=len, reverse=True):  # the longest first: a short key must not spoil a long one
        text = text.replace(old, TINY[old])
    return text


def launch_args(command: str) -> str:
    if not command.startswith("schedsweep launch"):
        return command
    task = re.search(r"\btask=(\w+)", command)
    extra = [LAUNCH, TASK_SIZE[task.group(1) if task else "charlm"]]
    if "full_steps=" not in command and "+study=" not in command:
        extra.append(FULL_STEPS)
    code, sep, comment = command.partition(" #")
    return " ".join([code.rstrip(), *filter(None, extra)])


def latest_sweep(folder: Path) -> Path:
    sweeps = sorted((folder / "results").glob("*/plan.jsonl"), key=lambda p: p.stat().st_mtime)
    assert sweeps, f"no sweep in {folder}/results for a command naming results/<sweep>"
    return sweeps[-1].parent


def placeholders(command: str, folder: Path) -> str:
    if "<sweep>" in command:
        command = command.replace("results/<sweep>", f"results/{latest_sweep(folder).name}")
    if "<run id>" in command:
        import json

        sweep = latest_sweep(folder)
        done = [json.loads(line)["id"] for line in (sweep / "plan.jsonl").read_text().splitlines()
                if json.loads((sweep / "runs" / json.loads(line)["id"] / "status.json").read_text())["status"] == "done"]
        command = command.replace("<run id>", done[0])
    return command


def environment(folder: Path) -> dict[str, str]:
    """`schedsweep` and `python` are this checkout's, first on PATH, as after `source .venv/bin/activate`."""
    bin_dir = folder / ".bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "schedsweep").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m schedsweep "$@"\n')
    (bin_dir / "schedsweep").chmod(0o755)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    return os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": pythonpath(TESTS),
                         "COLUMNS": "120", "OMP_NUM_THREADS": "1"}


def run(command: str, folder: Path, env: dict[str, str]) -> None:
    start = time.perf_counter()
    proc = subprocess.run(["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    print(f"{time.perf_counter() - start:5.1f} s  {command}")  # pytest -s: what each snippet costs
    assert proc.returncode == 0, f"`{command}` exited {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


def check_yaml(snippet: Snippet, folder: Path, env: dict[str, str]) -> None:
    """A file the docs quote equals the shipped one; a user's own schedule or study composes."""
    header = re.search(r"^#\s*(conf/\S+\.yaml)", snippet.text, re.M)
    spec = yaml.safe_load(snippet.text)
    if header and (ROOT / header.group(1)).is_file():
        assert spec == yaml.safe_load((ROOT / header.group(1)).read_text()), f"{snippet.page} quotes {header.group(1)} wrongly"
        return
    if header:  # the user's own file: write it where the docs say and use it
        target = folder / header.group(1)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(snippet.text)
        group, name = target.parent.name, target.stem
        command = {"schedule": f"schedsweep schedules show {name} --config-dir conf --steps 100 --csv",
                   "study": f"schedsweep launch --config-dir conf +study={name} --dry-run"}[group]
        run(command, folder, env)
        return
    from schedsweep import schedules

    schedules.check({k: v for k, v in spec.items() if k not in schedules.LABEL_KEYS}, 100, f"{snippet.page} example")


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted({s.page for s in snippets()}))
def test_every_snippet_of_the_page_runs_or_says_why_not(page: str, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = environment(tmp_path)
    for snippet in [s for s in snippets() if s.page == page]:
        if snippet.listed():
            continue
        for command in SETUP.get(snippet.first, []):
            run(command, tmp_path, env)
        if snippet.lang == "yaml":
            check_yaml(snippet, tmp_path, env)
        elif snippet.lang == "python":
            script = tmp_path / "snippet.py"
            script.write_text(PYTHON_PRELUDE.get(snippet.first, "") + tiny(snippet.text))
            if "schedsweep.client" in snippet.text:
                (tmp_path / "train.py").write_text(script.read_text())  # the README's `python train.py`
            run(f"python {script.name}", tmp_path, env)
        else:
            assert snippet.lang in SHELL, f"{page}: a ```{snippet.lang} block: run it here or list it in NOT_RUN"
            for command in commands(snippet):
                if not_run(command) is None:
                    run(placeholders(launch_args(tiny(command)), tmp_path), tmp_path, env)


def test_every_snippet_is_run_or_listed_with_its_reason() -> None:
    unknown = []
    for snippet in snippets():
        if snippet.lang in SHELL:
            runnable = [c for c in commands(snippet) if not_run(c) is None and not snippet.listed()]
            unknown += [f"{snippet.page}: {c}" for c in runnable if not re.match(r"(schedsweep|python) ", c)]
        elif snippet.lang not in ("python", "yaml"):
            unknown.append(f"{snippet.page}: a ```{snippet.lang} block")
    assert unknown == [], "snippets neither run nor listed in NOT_RUN (with the reason): " + "; ".join(unknown)
    assert all(any(line.strip().removeprefix("$ ").startswith(k) for s in snippets() for line in s.text.splitlines())
               for k in NOT_RUN), \
        "NOT_RUN lists a snippet the docs no longer have"
    assert all(any(k in s.text for s in snippets()) for k in TINY), "TINY replaces text the docs no longer have"
