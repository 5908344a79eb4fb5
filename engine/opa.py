"""Everything that talks to OPA: the ``opa`` binary now, its server later.

Only this module runs ``opa`` or imports ``opa_client``; the rest of the
engine asks it for bundles and decisions.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from engine.errors import CompileError
from engine.toolchain import find_tool

log = logging.getLogger(__name__)

BUILD_TIMEOUT_SECONDS = 120


def build_bundle(source_dir: Path, output: Path, opa_binary: Path | None = None) -> None:
    """Run ``opa build -b`` on ``source_dir`` (policies, data, .manifest) into ``output``."""
    binary = opa_binary or find_tool("opa")
    # Run inside the source so the bundle records relative file names.
    command = [str(binary), "build", "-b", ".", "-o", str(output.resolve())]
    log.debug("running %s in %s", command, source_dir)
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_SECONDS,
            check=False,
            cwd=source_dir,
        )
    except subprocess.TimeoutExpired as e:
        raise CompileError(f"opa build did not finish in {BUILD_TIMEOUT_SECONDS}s") from e
    except OSError as e:
        raise CompileError(f"can't run {binary}: {e.strerror or e}") from e
    if completed.returncode != 0:
        detail = " ".join((completed.stderr or completed.stdout).split())
        raise CompileError(f"opa build failed: {detail[:500]}")
