"""Masking by key and by value: every kind of secret hidden, ordinary values and audit ids kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine import audit as audit_module
from engine.audit import AuditLog
from engine.blueprint import load_blueprints
from engine.cluster import Target
from engine.cluster.simulated import SimulatedCluster
from engine.execute import Context, Executor
from engine.redact import MASK, holds_mask, looks_random, mask, mask_operation, mask_text
from engine.state import StateStore
from tests.conftest import REPO

PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEpAIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
    "aFDrBz9vFqU4yH1hunter2vXbS5JJcds3xfn\n"
    "-----END RSA PRIVATE KEY-----"
)
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Imh1bnRlcjIifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GITHUB_TOKEN = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
DSN = "postgres://admin:hunter2@db/x"
FRONTEND = Target("frontend", "shop", "frontend")


@pytest.mark.parametrize(
    ("text", "masked", "gone"),
    [
        ("postgres://admin:hunter2@db/x", "postgres://admin:***@db/x", "hunter2"),
        ("see redis://:hunter2@cache:6379/0 now", "see redis://:***@cache:6379/0 now", "hunter2"),
        ("https://u:p@ss:w0rd@host/path", "https://u:***@host/path", "w0rd"),
        ("Bearer abc.def-hunter2", "Bearer ***", "hunter2"),
        ("authorization: Basic dXNlcjpodW50ZXIy", "authorization: Basic ***", "dXNlcjpodW50ZXIy"),
        ("host=db user=admin password=hunter2", "host=db user=admin password=***", "hunter2"),
        ('{"api_key": "hunter2"}', '{"api_key": "***"}', "hunter2"),
        (f"token {JWT} used", "token *** used", "SflKxwRJ"),
        (PEM, "-----BEGIN RSA PRIVATE KEY-----***-----END RSA PRIVATE KEY-----", "hunter2"),
        (f"key: {AWS_SECRET}", "key: ***", "bPxRfiCY"),
        (f"cloned with {GITHUB_TOKEN}", "cloned with ***", "16C7e42F"),
        ("AKIAIOSFODNN7EXAMPLE", "***", "AKIA"),
    ],
)
def test_each_kind_of_secret_is_masked_in_text(text: str, masked: str, gone: str) -> None:
    assert mask_text(text) == masked
    assert gone not in mask_text(text)
    assert mask_text(masked) == masked  # masking twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "128Mi",
        "100m",
        "INFO",
        "frontend-7d9f-1",
        "frontend-7d9f-1.shop.svc.cluster.local",
        "postgres://db.internal:5432/orders",  # a URL without credentials
        "https://user@example.com/repo",  # a user name is not a password
        "3f9c2a1b4d5e6f70",  # a decision id
        "9f86d081884c7d659a2feaea0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0",  # a sha-256
        "2026-02-10T12:00:00.000000Z",
        "opsgate.decide.scaling.scale_up",
        "spec.scaling.scale_up_threshold_percent",
        "governance.agent_authority.requires_approval",
        "cpu 85% > scale_up_threshold_percent 80%",
        "modify_secret: secrets are rotated by a person",
        "keys that look like credentials (password, token) forbid",
        "configmap frontend-config: keys dsn are not sensitive",
        "registry.example.com/team/frontend:v1.2.3",
        "basic checks passed",
        "the bearer of bad news",  # "bearer" alone, no credential after it
        "***",
    ],
)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert mask_text(text) == text


@pytest.mark.parametrize(
    ("token", "random"),
    [
        (AWS_SECRET, True),
        ("AbCdEfGhIjKlMnOpQrStUvWxYz0123", True),
        ("kQ7vN2xL9pR4tW8yB3mC6fH1", True),
        ("FrontendDeploymentV2Config", False),
        ("HelloWorldThisIsATestOfEntropy", False),  # no digit
        ("9f86d081884c7d659a2feaea0c55ad015a3bf4f1", False),  # hex: digests and ids
        ("kQ7vN2xL9pR4tW8yB3m", False),  # 19 characters: under the length floor
    ],
)
def test_the_high_entropy_rule(token: str, random: bool) -> None:
    assert looks_random(token) is random


def test_keys_mask_whole_values_at_any_depth() -> None:
    value = {
        "headers": {"Authorization": "Bearer x"},
        "list": [{"db_password": {"nested": 1}}, {"ok": 2}],
        "LOG_LEVEL": "DEBUG",
    }
    assert mask(value) == {
        "headers": {"Authorization": MASK},
        "list": [{"db_password": MASK}, {"ok": 2}],
        "LOG_LEVEL": "DEBUG",
    }


def test_values_are_masked_under_innocent_keys() -> None:
    operation = {
        "type": "update_configmap",
        "name": "frontend-config",
        "changes": {"dsn": "postgres://admin:hunter2@db/x", "LOG_LEVEL": "DEBUG", "PORT": 8080},
    }
    assert mask_operation(operation) == {
        "type": "update_configmap",
        "name": "frontend-config",
        "changes": {"dsn": "postgres://admin:***@db/x", "LOG_LEVEL": "DEBUG", "PORT": 8080},
    }


@pytest.mark.parametrize(
    "operation",
    [
        {"type": "modify_secret", "name": "db", "value": "hunter2"},
        {"type": "rotate_Secret", "name": "db", "value": "hunter2"},  # the type says secret
        {"type": "update_configmap", "name": "db-credentials", "changes": {"v": "hunter2"}},
    ],
)
def test_secret_like_operations_keep_only_their_shape(operation: dict[str, Any]) -> None:
    masked = mask_operation(operation)
    assert masked["type"] == operation["type"]
    assert set(masked) == set(operation)
    assert "hunter2" not in json.dumps(masked)
    assert mask_operation(masked) == masked
    assert holds_mask(masked)


def test_the_shape_of_a_secret_operation() -> None:
    operation = {
        "type": "modify_secret",
        "name": "db",
        "value": "hunter2",
        "data": {"user": "admin", "port": 5432, "tls": True, "ca": None},
    }
    assert mask_operation(operation) == {
        "type": "modify_secret",
        "name": "***(str, 2 chars)",
        "value": "***(str, 7 chars)",
        "data": {"user": "***(str, 5 chars)", "port": "***(int)", "tls": "***(bool)", "ca": None},
    }


def test_mask_finds_operations_inside_documents() -> None:
    document = {
        "decisions": [{"id": "d1", "operation": {"type": "modify_secret", "value": "hunter2"}}],
        "suggestion": {"text": "no", "operation": {"type": "modify_secret", "name": "s"}},
    }
    assert "hunter2" not in json.dumps(mask(document))
    assert mask(document)["decisions"][0]["id"] == "d1"


def test_ordinary_operations_are_unchanged() -> None:
    for operation in (
        {"type": "scale", "from": 2, "to": 3},
        {"type": "adjust_resources", "resource": "memory", "field": "request", "to": "128Mi"},
        {"type": "restart_pod", "pod": "frontend-7d9f-1"},
        {"type": "update_configmap", "name": "frontend-config", "changes": {"LOG_LEVEL": "INFO"}},
    ):
        assert mask_operation(operation) == operation
        assert not holds_mask(operation)


def test_audit_mask_delegates_and_keeps_its_own_fields(tmp_path: Path) -> None:
    assert audit_module.MASK == MASK
    assert audit_module.mask({"dsn": "postgres://admin:hunter2@db/x"}) == {
        "dsn": "postgres://admin:***@db/x"
    }
    log = AuditLog(tmp_path / "audit.jsonl")
    first = log.record(
        "blocked",
        service="frontend",
        decision_id="3f9c2a1b4d5e6f70",
        approval_id="a1b2c3d4e5f60718",
        bundle_revision="9f86d081884c7d659a2f",
        rules=["opsgate.govern.catalog.forbidden_type"],
        blueprint_refs=["governance.agent_authority.forbidden"],
        operation={"type": "modify_secret", "name": "db", "value": "hunter2"},
        reasons=["refused postgres://admin:hunter2@db/x"],
        actor="opsgate",
    )
    second = log.record("decision", service="frontend", decision_id="3f9c2a1b4d5e6f71")
    text = log.path.read_text()
    assert "hunter2" not in text
    assert first["decision_id"] == "3f9c2a1b4d5e6f70"
    assert first["approval_id"] == "a1b2c3d4e5f60718"
    assert first["bundle_revision"] == "9f86d081884c7d659a2f"
    assert first["rules"] == ["opsgate.govern.catalog.forbidden_type"]
    assert first["blueprint_refs"] == ["governance.agent_authority.forbidden"]
    assert first["operation"]["value"] == "***(str, 7 chars)"
    assert second["prev"] == first["hash"]
    assert len(first["hash"]) == 64
    assert log.verify().ok


def test_the_journal_keeps_no_secret(tmp_path: Path) -> None:
    state = StateStore(tmp_path / "state.db")
    operation = {
        "type": "update_configmap",
        "name": "frontend-config",
        "changes": {"dsn": "postgres://admin:hunter2@db/x"},
    }
    inverse = {"type": "update_configmap", "name": "frontend-config", "changes": {"dsn": None}}
    entry = state.journal_begin("d1", "frontend", operation, inverse, "t0")
    state.journal_mark(
        entry,
        "applied",
        "t1",
        {"inverse": {**inverse, "changes": {"dsn": "mysql://root:hunter2@old/x"}}},
    )
    [recorded] = state.journal()
    state.close()
    assert recorded.operation["changes"]["dsn"] == "postgres://admin:***@db/x"
    assert recorded.detail is not None
    assert recorded.detail["inverse"]["changes"]["dsn"] == "mysql://root:***@old/x"
    for path in tmp_path.iterdir():
        assert b"hunter2" not in path.read_bytes(), path.name


def _recovering_executor(tmp_path: Path) -> tuple[Executor, Context, SimulatedCluster, StateStore]:
    blueprints = {b.name: b.effective for b in load_blueprints([REPO / "blueprints"]).blueprints}
    cluster = SimulatedCluster.from_blueprints(list(blueprints.values()), seed=3)
    state = StateStore(tmp_path / "state.db")
    executor = Executor(cluster, state, AuditLog(tmp_path / "audit.jsonl"), lambda _: {})
    return executor, Context(FRONTEND, blueprints["frontend"], "rev"), cluster, state


def test_recovery_never_writes_a_mask_into_the_cluster(tmp_path: Path) -> None:
    """A crash mid-rollback of a secret: the journal lacks the old value; a person restores it."""
    executor, context, cluster, state = _recovering_executor(tmp_path)
    operation = {"type": "update_configmap", "name": "frontend-config", "changes": {"dsn": DSN}}
    applied = cluster.apply(FRONTEND, operation)  # replaces an old dsn that held a password
    assert applied.inverse is not None
    inverse = {**applied.inverse, "changes": {"dsn": "postgres://admin:old-hunter2@db/x"}}
    entry = state.journal_begin("d1", "frontend", operation, None, cluster.now())
    state.journal_mark(entry, "applied", cluster.now(), {"inverse": inverse})
    state.journal_mark(
        entry, "rolling_back", cluster.now(), {"reason": "verification failed", "inverse": inverse}
    )
    [open_entry] = state.journal(unfinished=True)
    assert open_entry.detail is not None
    assert open_entry.detail["inverse"]["changes"]["dsn"] == "postgres://admin:***@db/x"
    assert executor.recover(open_entry, context) == "rollback_failed"
    assert cluster.service("frontend")["configmaps"]["frontend-config"]["dsn"] == DSN
    assert state.service_state("frontend")["breaker_open"] is True
    assert state.journal(unfinished=True) == []
    [failed] = [e for e in executor.audit.events() if e["event"] == "rollback_failed"]
    assert "the journal masks the values to put back" in failed["reason"]
    state.close()


def test_recovery_of_an_ordinary_change_still_verifies(tmp_path: Path) -> None:
    executor, context, cluster, state = _recovering_executor(tmp_path)
    operation = {"type": "update_configmap", "name": "frontend-config", "changes": {"dsn": DSN}}
    applied = cluster.apply(FRONTEND, operation)
    entry = state.journal_begin("d1", "frontend", operation, None, cluster.now())
    state.journal_mark(entry, "applied", cluster.now(), {"inverse": applied.inverse})
    [open_entry] = state.journal(unfinished=True)
    assert executor.recover(open_entry, context) == "completed"
    assert state.journal(unfinished=True) == []
    state.close()


def test_short_credential_words_are_masked_as_whole_parts_only() -> None:
    from engine.redact import mask as redact_mask

    masked = redact_mask(
        {
            "MYSQL_PWD": "hunter2",
            "DB_PASS": "hunter2",
            "X_AUTH": "hunter2",
            "bypass": "x",
            "passage": "y",
            "author": "me",
        }
    )
    assert masked == {
        "MYSQL_PWD": "***",
        "DB_PASS": "***",
        "X_AUTH": "***",
        "bypass": "x",
        "passage": "y",
        "author": "me",
    }
