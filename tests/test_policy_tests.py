"""The policy tests run on what the compiler writes now."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_policy_test_data_is_what_opsgate_compile_writes() -> None:
    completed = subprocess.run(
        [sys.executable, "scripts/policy_testdata.py", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
