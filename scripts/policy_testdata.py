"""Write the compiled blueprints the policy tests run against, from ``opsgate compile``.

Usage: python scripts/policy_testdata.py          # rewrite the test data
       python scripts/policy_testdata.py --check  # exit 1 if it is stale

The policy tests read the repo's blueprints as the compiler writes them:
``opsgate compile blueprints`` produces ``data.json``, and this script keeps
its ``data.opsgate`` document in policy-tests/opsgate/testdata/compiled/data.json,
which ``opa test policies policy-tests`` loads as data.opsgate.testdata.compiled
(the package ``opsgate.testdata`` hands it to the tests). Everything the
compiler writes is kept except the bundle revision: that hashes the policy
files too, so it would change with every edit of a rule; the tests use a
fixed revision instead. `make test` runs the check (tests/test_policy_tests.py),
so a change to the blueprints or to the compiler that the tests don't see
fails until this script is run again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.compile import ROOT as DATA_ROOT  # noqa: E402
from engine.compile import canonical_json  # noqa: E402

BLUEPRINTS = ROOT / "blueprints"
OUTPUT = ROOT / "policy-tests" / "opsgate" / "testdata" / "compiled" / "data.json"


def compiled() -> dict[str, Any]:
    """Run ``opsgate compile blueprints`` and return the ``data.opsgate`` document it wrote."""
    with tempfile.TemporaryDirectory(prefix="opsgate-testdata-") as out:
        # the engine of this checkout, whatever the virtualenv was installed from
        paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        command = [sys.executable, "-m", "engine", "--quiet", "compile", str(BLUEPRINTS)]
        completed = subprocess.run(
            [*command, "-o", out, "--no-bundle"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise SystemExit(f"opsgate compile failed:\n{completed.stderr}")
        document: dict[str, Any] = json.loads((Path(out) / "data.json").read_text(encoding="utf-8"))
    return document[DATA_ROOT]


def test_data() -> str:
    """The text of the test data: the compiled document without its bundle revision."""
    document = compiled()
    document["bundle"].pop("revision")
    return canonical_json(document)


def main(argv: list[str]) -> int:
    """Write or check the test data."""
    text = test_data()
    where = OUTPUT.relative_to(ROOT)
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text:
            print(
                f"{where} is stale: it is not what `opsgate compile blueprints` writes now; "
                "run python scripts/policy_testdata.py (then opa test policies policy-tests)",
                file=sys.stderr,
            )
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
