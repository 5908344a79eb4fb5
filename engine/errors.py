"""The one error family of opsgate: a base class and one subclass per stage.

Library code raises these; only the CLI turns them into messages and exit
codes. Foreign exceptions are translated at module boundaries with
``raise ... from e`` so a user never sees a traceback for bad input.
"""

from __future__ import annotations


class OpsgateError(Exception):
    """Base of every error opsgate raises on purpose."""

    exit_code = 1


class UsageError(OpsgateError):
    """The command line itself is wrong (exit code 2)."""

    exit_code = 2


class BlueprintError(OpsgateError):
    """A blueprint or governance file can't be read or isn't valid."""


class CompileError(OpsgateError):
    """Blueprints could not be compiled into OPA data and a bundle."""


class ToolNotFound(OpsgateError):
    """A required external tool (opa, regal) is missing."""


class PolicyError(OpsgateError):
    """OPA failed, answered undefined, or answered outside the contract."""
