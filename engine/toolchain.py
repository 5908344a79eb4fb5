"""Find the external tools opsgate runs: ``opa`` and ``regal``.

One lookup order for the runner and the Makefile alike: the tool's
``$OPSGATE_<NAME>_BIN``, then ``PATH`` (when new enough), then the copy that
``make install`` builds from the pinned Go modules into ``.tools/bin``.
Run ``python -m engine.toolchain opa`` to print the path that would be used.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from engine.errors import ToolNotFound
from engine.packaged import repo_root

MINIMUM_VERSIONS = {"opa": (1, 0, 0), "regal": (0, 36, 0)}
_VERSION_LINE = re.compile(r"^Version:\s*v?(\d+)\.(\d+)\.(\d+)", re.MULTILINE)


def tool_version(binary: Path | str) -> tuple[int, int, int] | None:
    """Return the ``X.Y.Z`` a tool prints for ``version``, or None if it can't say."""
    try:
        completed = subprocess.run(
            [str(binary), "version"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION_LINE.search(completed.stdout)
    if completed.returncode != 0 or match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3])


def find_tool(name: str, *, local: bool = True) -> Path:
    """Return the path of ``opa`` or ``regal`` by the lookup order of this module.

    With ``local=False`` the copy in ``.tools/bin`` is not considered; the
    Makefile uses that to decide whether it must build one.
    """
    minimum = MINIMUM_VERSIONS[name]
    wanted = ".".join(map(str, minimum))
    override = os.environ.get(f"OPSGATE_{name.upper()}_BIN")
    if override:
        found = tool_version(override)
        if found is None:
            raise ToolNotFound(
                f"OPSGATE_{name.upper()}_BIN={override}: not a working {name} binary"
            )
        if found < minimum:
            raise ToolNotFound(
                f"OPSGATE_{name.upper()}_BIN={override}: {name} "
                f"{'.'.join(map(str, found))} is older than {wanted}"
            )
        return Path(override)
    on_path = shutil.which(name)
    if on_path:
        found = tool_version(on_path)
        if found is not None and found >= minimum:
            return Path(on_path)
    built = repo_root() / ".tools" / "bin" / name
    if local and built.is_file() and tool_version(built) is not None:
        return built
    raise ToolNotFound(
        f"no {name} >= {wanted} found: run 'make install' (builds it from the pinned Go "
        f"module in tools/{name}), put one on PATH, or set OPSGATE_{name.upper()}_BIN"
    )


def main(argv: list[str]) -> int:
    """Print the path of each tool named in ``argv``; exit 1 if one is missing.

    ``--no-local`` leaves out the copies that ``make install`` builds.
    """
    local = "--no-local" not in argv
    names = [a for a in argv if a != "--no-local"] or ["opa"]
    status = 0
    for name in names:
        try:
            print(find_tool(name, local=local))
        except (ToolNotFound, KeyError) as e:
            print(f"opsgate: {e}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
