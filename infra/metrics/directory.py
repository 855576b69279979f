"""Where every fleet process writes its metric samples (prometheus_client multiprocess mode).

Kept apart from infra/metrics/fleet.py because it must run before `prometheus_client` is imported
anywhere: the library picks between in-memory and file-backed values at import time.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_multiprocess_dir(configured: str | None) -> Path:
    """Point prometheus_client at a directory shared with this process's children.

    A directory inherited from a parent fleet process (`fleet up` and its children, a worker and
    its pool) is used as it is; otherwise `configured` (or a new temporary directory) is emptied
    of a previous run's files and exported to the children.
    """
    if inherited := os.environ.get(ENV):
        return Path(inherited)
    path = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="fleet-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[ENV] = str(path)
    return path
