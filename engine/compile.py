"""Compile blueprints into one OPA data document and an OPA bundle.

The data document sits under ``data.opsgate``: every blueprint keyed by its
name with defaults filled in and quantities normalised, plus the bundle's
revision. The bundle (``opa build``) holds the policy library and that
document. The same inputs always give a byte-identical ``data.json`` and the
same revision, so a revision names exactly one set of rules and blueprints.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.blueprint import BlueprintSet, Problem, load_blueprints, normalise_resources
from engine.errors import CompileError
from engine.files import write_atomically
from engine.opa import build_bundle
from engine.packaged import policies_dir
from engine.signing import approver_jwks

log = logging.getLogger(__name__)

DATA_FILE = "data.json"
BUNDLE_FILE = "bundle.tar.gz"
MANIFEST_FILE = ".manifest"
ROOT = "opsgate"


@dataclass
class CompileResult:
    """What ``compile_blueprints`` wrote, and the revision it stands for."""

    out_dir: Path
    data_path: Path
    bundle_path: Path | None
    revision: str
    blueprints: dict[str, str]
    warnings: list[Problem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the summary printed by ``opsgate compile --json``."""
        return {
            "out_dir": str(self.out_dir),
            "data": str(self.data_path),
            "bundle": str(self.bundle_path) if self.bundle_path else None,
            "revision": self.revision,
            "blueprints": self.blueprints,
            "warnings": [w.to_json() for w in self.warnings],
        }


class InvalidBlueprints(CompileError):
    """Compilation refused because the blueprints have problems."""

    def __init__(self, blueprint_set: BlueprintSet) -> None:
        count = len(blueprint_set.errors)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the blueprints")
        self.blueprint_set = blueprint_set


def policy_files(policies: Path) -> list[Path]:
    """Return the files of a policy library that go into a bundle, sorted."""
    if not policies.is_dir():
        raise CompileError(f"{policies}: policy directory not found")
    files = sorted(
        p
        for p in policies.rglob("*")
        if p.is_file()
        and (
            (p.suffix == ".rego" and not p.name.endswith("_test.rego"))
            or p.name in ("data.json", "data.yaml")
        )
    )
    if not any(p.suffix == ".rego" for p in files):
        raise CompileError(f"{policies}: no .rego files in the policy directory")
    return files


def canonical_json(document: Any) -> str:
    """Serialise deterministically: sorted keys, fixed indent, final newline."""
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def data_document(blueprint_set: BlueprintSet, source_root: Path) -> dict[str, Any]:
    """Build the ``data.opsgate`` document (without its revision) from valid blueprints."""
    blueprints: dict[str, Any] = {}
    for blueprint in sorted(blueprint_set.blueprints, key=lambda b: b.name):
        compiled = normalise_resources(blueprint.effective)
        try:
            source = blueprint.path.resolve().relative_to(source_root.resolve()).as_posix()
        except ValueError:
            source = blueprint.path.name
        compiled["source"] = source
        # the approvers' public keys, as Rego's io.jwt.decode_verify reads them
        compiled["approval_keys"] = approver_jwks(
            compiled["governance"]["approval_workflow"]["approvers"]
        )
        blueprints[blueprint.name] = compiled
    return {
        ROOT: {
            "blueprints": blueprints,
            "bundle": {
                "blueprint_versions": {b.name: b.version for b in blueprint_set.blueprints},
            },
        }
    }


def revision_of(document: dict[str, Any], policies: Path, files: list[Path]) -> str:
    """Derive the bundle revision from the data, the blueprint versions and the policies."""
    digest = hashlib.sha256()
    versions = document[ROOT]["bundle"]["blueprint_versions"]
    for name in sorted(versions):
        digest.update(f"blueprint {name}@{versions[name]}\n".encode())
    digest.update(canonical_json(document).encode())
    for path in files:
        digest.update(f"policy {path.relative_to(policies).as_posix()}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def compile_blueprints(
    blueprint_dir: Path,
    out_dir: Path,
    policies: Path | None = None,
    *,
    bundle: bool = True,
    opa_binary: Path | None = None,
    loaded: BlueprintSet | None = None,
) -> CompileResult:
    """Validate ``blueprint_dir`` and write ``data.json`` and ``bundle.tar.gz`` to ``out_dir``.

    Nothing is written unless every blueprint is valid; each file appears
    whole or not at all. ``loaded`` is ``blueprint_dir`` already parsed (a
    workspace parses once per command); it is parsed here when not given.
    """
    policies = policies or policies_dir()
    if not blueprint_dir.is_dir():
        raise CompileError(f"{blueprint_dir}: not a directory of blueprints")
    blueprint_set = loaded if loaded is not None else load_blueprints([blueprint_dir])
    if blueprint_set.errors:
        raise InvalidBlueprints(blueprint_set)
    if not blueprint_set.blueprints:
        raise CompileError(f"{blueprint_dir}: no blueprints found (only governance defaults)")
    files = policy_files(policies)
    document = data_document(blueprint_set, blueprint_dir)
    revision = revision_of(document, policies, files)
    document[ROOT]["bundle"]["revision"] = revision
    data_text = canonical_json(document)

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CompileError(f"{out_dir}: can't create output directory: {e.strerror}") from e
    bundle_path: Path | None = None
    try:
        if bundle:
            bundle_path = out_dir / BUNDLE_FILE
            _build(policies, files, data_text, revision, bundle_path, opa_binary)
        data_path = out_dir / DATA_FILE
        write_atomically(data_path, data_text)
    except OSError as e:
        raise CompileError(f"{out_dir}: can't write output: {e.strerror or e}") from e
    log.info("compiled %d blueprints, revision %s", len(blueprint_set.blueprints), revision)
    return CompileResult(
        out_dir=out_dir,
        data_path=data_path,
        bundle_path=bundle_path,
        revision=revision,
        blueprints={b.name: b.version for b in blueprint_set.blueprints},
        warnings=blueprint_set.warnings,
    )


def _build(
    policies: Path,
    files: list[Path],
    data_text: str,
    revision: str,
    bundle_path: Path,
    opa_binary: Path | None,
) -> None:
    with tempfile.TemporaryDirectory(prefix="opsgate-bundle-") as staging_name:
        staging = Path(staging_name)
        for path in files:
            target = staging / path.relative_to(policies)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        (staging / DATA_FILE).write_text(data_text, encoding="utf-8")
        manifest = {"revision": revision, "roots": [ROOT]}
        (staging / MANIFEST_FILE).write_text(canonical_json(manifest), encoding="utf-8")
        partial = bundle_path.with_name(f".{bundle_path.name}.partial")
        try:
            build_bundle(staging, partial, opa_binary)
            os.replace(partial, bundle_path)
        finally:
            partial.unlink(missing_ok=True)
