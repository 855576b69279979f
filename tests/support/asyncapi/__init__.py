"""The AsyncAPI project's own parser (@asyncapi/parser, Node.js), run on a document.

The node modules are installed once per lock file by `npm ci` into a cache directory (outside
the repository), under a file lock so parallel test processes install them once. With CI=true a
missing node or npm fails the test; elsewhere it is skipped with what to install.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
FILES = ("package.json", "package-lock.json", "validate.mjs")


def _tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        message = "node and npm (Node.js 20) are needed to validate AsyncAPI documents"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return node, npm


def _installed(npm: str) -> Path:
    digest = hashlib.sha256(b"".join((HERE / name).read_bytes() for name in FILES)).hexdigest()[:16]
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fleet-asyncapi" / digest
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "node_modules" / "@asyncapi" / "parser").is_dir():
            for name in FILES:
                shutil.copy(HERE / name, root / name)
            subprocess.run(
                [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                cwd=root,
                check=True,
                capture_output=True,
                timeout=600,
            )
    return root


def parse(document: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Run the parser on `document`: exit 0 and "valid: ..." or exit 1 and one JSON line per error."""
    node, npm = _tools()
    root = _installed(npm)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(document, file)
        file.flush()
        return subprocess.run(
            [node, str(root / "validate.mjs"), file.name],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
