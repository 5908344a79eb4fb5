"""Write docs/RULES.md from the METADATA of the policy library (opa inspect -a).

Usage: python scripts/rule_docs.py          # rewrite docs/RULES.md
       python scripts/rule_docs.py --check  # exit 1 if docs/RULES.md is stale

The rule ids listed here are what decisions report in `rules`; they are
stable, so this file changes only when the policy library does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.toolchain import find_tool  # noqa: E402

OUTPUT = ROOT / "docs" / "RULES.md"


def annotations() -> list[dict[str, Any]]:
    """Return every METADATA block of policies/ with its path and location."""
    completed = subprocess.run(
        [str(find_tool("opa")), "inspect", "-a", "--format", "json", "policies"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    found: list[dict[str, Any]] = json.loads(completed.stdout)["annotations"]
    return found


def dotted(path: list[dict[str, str]]) -> str:
    """Turn an annotation path into ``opsgate.pkg.rule`` (without ``data.``)."""
    return ".".join(part["value"] for part in path[1:])


def render(entries: list[dict[str, Any]]) -> str:
    """Render the rule reference as Markdown."""
    packages = [e for e in entries if e["annotations"]["scope"] == "package"]
    rules = [e for e in entries if e["annotations"]["scope"] != "package"]
    lines = [
        "# Policy rules",
        "",
        "Generated from the METADATA of `policies/` by `scripts/rule_docs.py`; `make test`",
        "checks it is current. Every verdict lists in `rules` the ids of the rules that",
        "fired, in this form; they are stable: a rule is renamed only with a new id.",
        "",
    ]
    for package in sorted(packages, key=lambda e: dotted(e["path"])):
        name = dotted(package["path"])
        notes = package["annotations"]
        lines += [f"## {notes['title']} — `{name}`", ""]
        lines += [notes.get("description", "").strip(), ""]
        lines += [f"Source: `{package['location']['file']}`", ""]
        members = sorted(
            (r for r in rules if dotted(r["path"]).rsplit(".", 1)[0] == name),
            key=lambda r: r["location"]["row"],
        )
        if members:
            lines += ["| rule id | title | what it does |", "|---|---|---|"]
            for rule in members:
                meta = rule["annotations"]
                text = " ".join(meta.get("description", "").split()).replace("|", "\\|")
                lines.append(f"| `{meta['custom']['id']}` | {meta['title']} | {text} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def problems(entries: list[dict[str, Any]]) -> list[str]:
    """Check that every id is unique and equals its package path (plus rule name)."""
    seen: dict[str, str] = {}
    found = []
    for entry in entries:
        meta = entry["annotations"]
        where = f"{entry['location']['file']}:{entry['location']['row']}"
        rule_id = meta.get("custom", {}).get("id")
        if not rule_id:
            found.append(f"{where}: METADATA without custom.id")
            continue
        if rule_id != dotted(entry["path"]):
            found.append(f"{where}: custom.id {rule_id} is not {dotted(entry['path'])}")
        if rule_id in seen and seen[rule_id] != where:
            found.append(f"{where}: custom.id {rule_id} also used at {seen[rule_id]}")
        seen.setdefault(rule_id, where)
        if not meta.get("title") or not meta.get("description"):
            found.append(f"{where}: METADATA needs a title and a description")
    return found


def main(argv: list[str]) -> int:
    """Write or check docs/RULES.md; report METADATA problems either way."""
    entries = annotations()
    issues = problems(entries)
    for issue in issues:
        print(issue, file=sys.stderr)
    text = render(entries)
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text:
            print(
                f"{OUTPUT.relative_to(ROOT)} is stale: run python scripts/rule_docs.py",
                file=sys.stderr,
            )
            return 1
        return 1 if issues else 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 1 if issues else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
