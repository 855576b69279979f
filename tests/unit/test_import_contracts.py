"""The floor plan's import contracts (pyproject.toml, `make lint`) fail when a layer is crossed:
the project's own contracts are run over a small tree shaped like the fleet's, once clean and
once with one forbidden import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("fleet", "workers", "tasks", "infra", "engine", "schedules", "handlers")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# Imports the real tree has and the contracts allow, so that every ignore rule matches.
ALLOWED = {
    "workers/bootstrap.py": "import redis\nimport sqlalchemy\nimport tasks.handle\n",
    "workers/celery_app.py": "import celery\n",
    "workers/wiring/__init__.py": "",
    "workers/wiring/stores.py": "import redis\nimport sqlalchemy\n",
    "tasks/handle.py": "import celery\nimport infra.store\n",
    "infra/store.py": "import sqlalchemy\nimport redis\nimport engine.dispatch\nimport schedules.jobs\n",
    "engine/dispatch.py": "import handlers.envelope\n",
    "schedules/jobs.py": "import handlers.envelope\n",
    "handlers/envelope.py": "",
    "fleet/__init__.py": "import infra.store\n",
}


def build_tree(where: Path, extra: dict[str, str]) -> Path:
    for package in PACKAGES:
        (where / package).mkdir()
        (where / package / "__init__.py").touch()
    for name, text in {**ALLOWED, **extra}.items():
        (where / name).parent.mkdir(exist_ok=True)
        (where / name).write_text(text)
    text = (ROOT / "pyproject.toml").read_text()
    (where / "contracts.toml").write_text(text[text.index("[tool.importlinter]") :])
    return where


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "contracts.toml"), "--no-cache"],
        check=False,
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_a_tree_that_keeps_the_floor_plan_passes(tree_dir: Path) -> None:
    result = lint(build_tree(tree_dir, {}))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "text", "broken"),
    [
        ("handlers/bad.py", "import redis\n", "The core, the engine and the schedule import no SDK"),
        ("engine/bad.py", "import sqlalchemy\n", "The core, the engine and the schedule import no SDK"),
        ("engine/up.py", "import infra.store\n", "Layers"),
        ("infra/up.py", "import workers.bootstrap\n", "Layers"),
        ("tasks/bad.py", "import redis\n", "Tasks are Celery adapters"),
        ("workers/console.py", "import azure.servicebus\n", "The processes reach brokers"),
        ("fleet/runtime.py", "import workers.bootstrap\n", "The producer API builds a producer"),
    ],
)
def test_a_forbidden_import_breaks_the_lint(tree_dir: Path, module: str, text: str, broken: str) -> None:
    result = lint(build_tree(tree_dir, {module: text}))
    assert result.returncode != 0
    broken_lines = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert any(line.startswith(broken) for line in broken_lines), result.stdout
