"""Summarise `opa test --coverage` JSON: total percentage and uncovered lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(path: str) -> int:
    """Print the coverage figure and every file with uncovered lines."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        print(f"coverage report unreadable: {e}")
        return 1
    print(f"policy coverage: {report.get('coverage', 0):.1f}%")
    for name, entry in sorted(report.get("files", {}).items()):
        missing = entry.get("not_covered") or []
        if missing:
            spans = ", ".join(
                f"{r['start']['row']}-{r['end']['row']}"
                if r["start"] != r["end"]
                else str(r["start"]["row"])
                for r in missing
            )
            print(f"  {name}: not covered: lines {spans}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
