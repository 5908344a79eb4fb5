"""The import contracts cover every module: a new one can't slip past the layers."""

from __future__ import annotations

import tomllib

from tests.conftest import REPO


def test_every_engine_module_has_a_layer() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    [layers] = [c["layers"] for c in contracts if c["type"] == "layers"]
    placed = {name.strip() for layer in layers for name in layer.split("|")}
    modules = {
        f"engine.{path.stem}" if path.name != "__init__.py" else f"engine.{path.parent.name}"
        for path in (REPO / "engine").glob("*")
        if (path.suffix == ".py" and path.stem not in ("__init__", "__main__"))
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    assert modules - placed == set()
