"""List the error messages the CLI can print, as found in engine/ (for docs/TROUBLESHOOTING.md).

Every ``raise SomeError(...)`` and every validation ``Problem(...)`` in
engine/ whose message is a string (or f-string) yields its longest fixed
phrase; tests/test_docs.py checks each phrase appears in TROUBLESHOOTING.md.
Usage: python scripts/error_messages.py   # print the phrases, one per line
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _static_parts(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                parts.append(value.value)
            else:
                parts.append("\0")
        return "".join(parts).split("\0")
    if isinstance(node, ast.BinOp):
        return _static_parts(node.left) + _static_parts(node.right)
    return []


def phrase(node: ast.expr) -> str | None:
    """The longest fixed phrase of a message expression (at least 10 characters)."""
    parts = [p.strip(" :;,.()") for p in _static_parts(node)]
    parts = [p for p in parts if len(p) >= 10]
    return max(parts, key=len) if parts else None


def messages() -> dict[str, str]:
    """Phrase → where it is raised (file:line)."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "engine").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            call = None
            raised = node.exc if isinstance(node, ast.Raise) else None
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Call):
                function = node.value.func
                if isinstance(function, ast.Name) and function.id.endswith("Error"):
                    raised = node.value
            if isinstance(raised, ast.Call) and raised.args:
                call = raised
                named = call.func.id if isinstance(call.func, ast.Name) else ""
                argument = (
                    call.args[2] if named == "SourceError" and len(call.args) > 2 else call.args[0]
                )
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Problem"
                and len(node.args) >= 4
            ):
                call = node
                argument = (
                    node.args[3] if not isinstance(node.args[0], ast.Starred) else node.args[1]
                )
            if call is None:
                continue
            text = phrase(argument)
            if text:
                found.setdefault(text, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


if __name__ == "__main__":
    for text, where in sorted(messages().items(), key=lambda item: item[1]):
        print(f"{where}\t{text}")
    sys.exit(0)
