"""Write docs/BLUEPRINT_FORMAT.md from the JSON Schema and the policy rules that read each field.

Usage: python scripts/blueprint_docs.py          # regenerate
       python scripts/blueprint_docs.py --check  # exit 1 if the page is stale (make test)

"Read by" lists the rules (their custom.id) whose source names the field as
a blueprint reference — the same paths decisions report in blueprint_refs.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.packaged import load_schema  # noqa: E402

OUTPUT = ROOT / "docs" / "BLUEPRINT_FORMAT.md"

# Readers the source scan can't see: rules that reach a field through a key
# rather than by its path, and the runner's own roles (Python, not Rego).
OTHER_READERS = {
    "spec.performance.latency_p95_ms": [
        "opsgate.decide.scaling.scale_down",
        "runner: verification",
    ],
    "spec.performance.error_rate_percent": ["opsgate.decide.scaling.scale_down"],
    "spec.performance.throughput_rps": ["opsgate.decide.scaling.scale_down"],
    "spec.reliability.rollback_on_failure": ["runner: execution (rollback)"],
    "spec.reliability.stabilization_seconds": ["runner: execution (wait before verifying)"],
    "spec.scaling.scale_up_threshold_percent": ["runner: verification (utilization band)"],
    "spec.scaling.scale_down_threshold_percent": ["runner: verification (utilization band)"],
    "governance.approval_workflow.approvers": ["runner: approvals"],
    "governance.approval_workflow.timeout_seconds": ["runner: approvals (expiry)"],
    "governance.approval_workflow.notifications": ["runner: approvals (notifications)"],
    "governance.audit.retention_days": ["runner: audit prune"],
    "governance.safety.dry_run": [
        "opsgate.govern.safety.dry_run",
        "runner: execution (through the verdict's dry_run)",
    ],
    "target.namespace": ["runner: cluster"],
    "target.deployment": ["runner: cluster"],
    "metadata.name": ["runner: every decision and audit event"],
    "metadata.version": ["runner: approvals (void on change)"],
}
_ID = re.compile(r"^#\s+id:\s+(\S+)", re.MULTILINE)
_REF = re.compile(r'"((?:spec|governance|metadata|target)\.[a-z_.%]+)"')


def readers() -> dict[str, set[str]]:
    """Field path → ids of the rules whose source names it."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "policies").rglob("*.rego")):
        text = path.read_text(encoding="utf-8")
        marks = [(m.start(), m.group(1)) for m in _ID.finditer(text)]
        for index, (start, rule) in enumerate(marks):
            end = marks[index + 1][0] if index + 1 < len(marks) else len(text)
            for ref in _REF.findall(text[start:end]):
                # an agent's entry: governance.agents.%s.field is documented as NAME
                ref = ref.replace("governance.agents.%s", "governance.agents.NAME")
                for expanded in (
                    (ref.replace("%s", r) for r in ("cpu", "memory")) if "%s" in ref else [ref]
                ):
                    if "%s" in expanded:  # spec.resources.%s.%s: resource and field
                        for field in ("request", "limit"):
                            found.setdefault(expanded.replace("%s", field), set()).add(rule)
                    else:
                        found.setdefault(expanded, set()).add(rule)
    for field, names in OTHER_READERS.items():
        found.setdefault(field, set()).update(names)
    return found


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _type(schema: dict[str, Any]) -> str:
    if "const" in schema:
        return f"`{schema['const']}`"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if "oneOf" in schema:
        return "integer or percentage"
    kind = schema.get("type", "")
    if isinstance(kind, list):
        return " or ".join(kind) + (" (quantity)" if "string" in kind else "")
    if kind == "array":
        return "list of " + str(schema.get("items", {}).get("type", "values"))
    return str(kind)


def _default(schema: dict[str, Any], required: bool) -> str:
    if required:
        return "required"
    if "default" not in schema:
        return "—"
    value = schema["default"]
    if value is None:
        return "none (not checked)"
    if isinstance(value, dict):
        return "—"
    return f"`{json.dumps(value)}`"


def rows(
    schema: dict[str, Any],
    root: dict[str, Any],
    prefix: str,
    required: set[str],
    read: dict[str, set[str]],
) -> list[str]:
    """One table row per field, depth first."""
    out = []
    for name, sub in schema.get("properties", {}).items():
        resolved = _resolve(sub, root)
        path = f"{prefix}{name}"
        rules = sorted(read.get(path, set()))
        used = ", ".join(r if r.startswith("runner:") else f"`{r}`" for r in rules) or "—"
        description = " ".join(str(resolved.get("description", "")).split()).replace("|", "\\|")
        default = _default(resolved, name in required)
        out.append(f"| `{path}` | {_type(resolved)} | {default} | {description} | {used} |")
        if resolved.get("type") == "object" or "properties" in resolved:
            out += rows(resolved, root, f"{path}.", set(resolved.get("required", [])), read)
        entries = resolved.get("additionalProperties")
        if isinstance(entries, dict) and "properties" in _resolve(entries, root):
            # a mapping of named entries: one row per field of an entry, as path.NAME.field
            entry = _resolve(entries, root)
            out += rows(entry, root, f"{path}.NAME.", set(entry.get("required", [])), read)
        items = resolved.get("items")
        if isinstance(items, dict) and "properties" in _resolve(items, root):
            # a list of mappings: one row per field of an entry, as path[].field
            item = _resolve(items, root)
            out += rows(item, root, f"{path}[].", set(item.get("required", [])), read)
    return out


def render() -> str:
    """The whole page."""
    root = load_schema("blueprint.schema.json")
    read = readers()
    lines = [
        "# Blueprint format",
        "",
        "Generated from `blueprints/schema/blueprint.schema.json` and the policy sources by",
        "`scripts/blueprint_docs.py`; `make test` checks it is current. A blueprint is one YAML",
        "file per service; `opsgate validate` checks it against this schema and the semantic",
        "rules (thresholds in order, `minimum <= request <= limit`, unique names and targets,",
        "approvers when anything needs approval, notification webhooks on https or loopback).",
        "Governance fields left out come from `governance.yaml` beside the blueprints (same",
        'fields, `kind: Governance`), then from the defaults below. "Read by" lists the rules',
        "(as decisions report them in `rules`) whose verdicts name the field in",
        "`blueprint_refs`; see `docs/RULES.md`.",
        "",
        "| field | type | default | meaning | read by |",
        "|---|---|---|---|---|",
    ]
    lines += rows(root, root, "", set(root.get("required", [])), read)
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Write or check the page."""
    text = render()
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text:
            print(
                "docs/BLUEPRINT_FORMAT.md is stale: run python scripts/blueprint_docs.py",
                file=sys.stderr,
            )
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print("wrote docs/BLUEPRINT_FORMAT.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
