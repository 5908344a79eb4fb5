"""The policy tests mirror the policies and run on what the compiler writes now.

Every package under policies/ has a test package at the mirrored path,
policy-tests/<package path>/<last part>_test.rego, declaring ``<package>_test``
and importing the package it tests (as gatekeeper-library's require-suites.sh
asks every template for a suite); and no test package is left behind for a
package that is gone.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

POLICIES = REPO / "policies"
POLICY_TESTS = REPO / "policy-tests"
_PACKAGE = re.compile(r"^package\s+([\w.]+)", re.MULTILINE)
_IMPORT = re.compile(r"^import\s+data\.([\w.]+)", re.MULTILINE)


def _package_of(path: Path) -> str:
    """The package a Rego file declares."""
    found = _PACKAGE.search(path.read_text(encoding="utf-8"))
    assert found, f"{path.relative_to(REPO)}: no package line"
    return found.group(1)


def policy_packages() -> set[str]:
    """Every package of the policy library (tests are not part of it)."""
    return {_package_of(p) for p in POLICIES.rglob("*.rego") if not p.name.endswith("_test.rego")}


def suite_problems(packages: set[str]) -> list[str]:
    """One line for each policy package without a test package that imports it."""
    problems = []
    for package in sorted(packages):
        parts = package.split(".")
        suite = POLICY_TESTS.joinpath(*parts) / f"{parts[-1]}_test.rego"
        where = suite.relative_to(REPO)
        if not suite.exists():
            problems.append(
                f"policy package {package} has no tests: add {where} (package {package}_test)"
            )
            continue
        text = suite.read_text(encoding="utf-8")
        if _package_of(suite) != f"{package}_test":
            problems.append(f"{where} declares package {_package_of(suite)}, not {package}_test")
        if package not in _IMPORT.findall(text):
            problems.append(f"{where} does not import data.{package}, the package it tests")
    return problems


def test_every_policy_package_has_a_test_package_that_imports_it() -> None:
    packages = policy_packages()
    assert "opsgate.lib.observation" in packages  # the scan finds packages at all
    assert suite_problems(packages) == []


def test_every_test_package_tests_a_policy_package() -> None:
    packages = policy_packages()
    orphans = [
        f"{path.relative_to(REPO)}: package {_package_of(path)} tests no package of policies/"
        for path in sorted(POLICY_TESTS.rglob("*_test.rego"))
        if _package_of(path).removesuffix("_test") not in packages
    ]
    assert orphans == []


def test_policy_test_data_is_what_opsgate_compile_writes() -> None:
    completed = subprocess.run(
        [sys.executable, "scripts/policy_testdata.py", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
