"""opsgate: blueprint-driven, Rego-governed infrastructure operations."""

__version__ = "0.1.0"
