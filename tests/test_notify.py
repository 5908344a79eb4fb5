"""Approval notifications: webhooks and commands, bounded, retried, audited, never in the way.

Every network target is a receiver on 127.0.0.1 started by the test. Timings
are small and the bounds generous: the machine is shared.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.approval import Approvals
from engine.audit import AuditLog, utc_now
from engine.cluster import Target
from engine.cluster.simulated import SimulatedCluster
from engine.notify import (
    TARGETS_FILE,
    Notifier,
    failures_by_request,
    load_targets,
    notification_targets,
    save_targets,
)
from engine.policy import PolicySession
from engine.runner import Runner
from engine.state import Approval, StateStore
from tests.conftest import RunCli
from tests.loopback import serve

SECRET = "s3cr3t-value-that-must-never-be-stored-7f1c"
SECRET_ENV = "OPSGATE_TEST_HOOK_SECRET"


class Receiver:
    """An HTTP endpoint that keeps what it was sent and answers ``status`` (or never)."""

    def __init__(self) -> None:
        self.status = 200
        self.hang = False
        self.release = threading.Event()
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.url = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append((headers, body))
                if receiver.hang:
                    receiver.release.wait(30)  # accepted, never answered
                    return
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    built = Receiver()
    with serve(built.handler()) as base:
        built.url = f"{base}/hooks/opsgate"
        try:
            yield built
        finally:
            built.release.set()


def _signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


BLUEPRINT: dict[str, Any] = {
    "metadata": {"name": "backend", "version": "1.2.0"},
    "governance": {
        "approval_workflow": {"approvers": ["orders-oncall", "sre-lead"], "timeout_seconds": 1800}
    },
}
DECISION: dict[str, Any] = {
    "id": "d-1",
    "operation": {"type": "scale", "from": 3, "to": 4},
    "reasons": ["needs 4 replicas, above max_replicas 3"],
    "rules": ["opsgate.govern.scaling.above_max"],
    "blueprint_refs": ["spec.scaling.max_replicas"],
}
NOW = "2026-02-10T12:00:00Z"


class Desk:
    """A state store and audit log in a temporary directory, with an approval workflow."""

    def __init__(self, directory: Path, notifier: Notifier | None = None) -> None:
        self.directory = directory
        self.state = StateStore(directory / "state.db")
        self.audit = AuditLog(directory / "audit.jsonl")
        self.approvals = Approvals(self.state, self.audit, notifier=notifier)

    def request(self, now: str = NOW) -> Approval:
        approval, new = self.approvals.request(DECISION, "backend", BLUEPRINT, "rev-1", now)
        assert new
        return approval

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.audit.events() if e["event"] == kind]


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    built = Desk(tmp_path)
    yield built
    built.state.close()


def _webhook(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "webhook", "url": url, **extra}


def _notifier(desk: Desk, *targets: dict[str, Any], **options: Any) -> Notifier:
    notifier = Notifier({"backend": list(targets)}, record=desk.audit.record, **options)
    desk.approvals.notifier = notifier
    return notifier


# --- webhooks ------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["secret_env", "secret_file"])
def test_webhook_gets_text_fields_and_a_signature(
    receiver: Receiver,
    desk: Desk,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    if source == "secret_env":
        monkeypatch.setenv(SECRET_ENV, SECRET)
        secret = {"secret_env": SECRET_ENV}
    else:
        key = tmp_path / "hook.key"
        key.write_text(SECRET + "\n", encoding="utf-8")
        secret = {"secret_file": str(key)}
    notifier = _notifier(desk, _webhook(receiver.url, **secret))
    approval = desk.request()
    assert notifier.close() == []

    [(headers, body)] = receiver.requests
    assert headers["content-type"] == "application/json"
    assert headers["x-opsgate-signature"] == _signature(body)
    assert headers["x-opsgate-event"] == "requested"
    sent = json.loads(body)
    assert {k: sent[k] for k in ("id", "service", "operation", "reasons", "rules")} == {
        "id": approval.id,
        "service": "backend",
        "operation": {"type": "scale", "from": 3, "to": 4},
        "reasons": ["needs 4 replicas, above max_replicas 3"],
        "rules": ["opsgate.govern.scaling.above_max"],
    }
    assert sent["approvers"] == ["orders-oncall", "sre-lead"]
    assert sent["expires_at"] == "2026-02-10T12:30:00Z"
    assert (sent["event"], sent["answered_by"], sent["justification"]) == ("requested", None, None)
    text = sent["text"]
    assert "\n" not in text
    for part in ("backend", "scale 3 → 4", "needs 4 replicas", "orders-oncall, sre-lead"):
        assert part in text
    assert f"opsgate approvals approve {approval.id}" in text
    assert f"opsgate approvals reject {approval.id}" in text


def test_an_answer_says_who_and_why(receiver: Receiver, desk: Desk) -> None:
    notifier = _notifier(desk, _webhook(receiver.url))
    approval = desk.request()
    desk.approvals.answer(approval.id, grant=True, by="sre-lead", reason="launch traffic", now=NOW)
    notifier.close()
    requested, granted = receiver.bodies()
    assert requested["event"] == "requested"
    assert (granted["event"], granted["answered_by"], granted["justification"]) == (
        "granted",
        "sre-lead",
        "launch traffic",
    )
    assert "approved by sre-lead" in granted["text"]
    assert "launch traffic" in granted["text"]
    assert "x-opsgate-signature" not in receiver.requests[0][0]  # no secret, no signature


def test_rejected_and_expired_are_sent(receiver: Receiver, desk: Desk) -> None:
    notifier = _notifier(desk, _webhook(receiver.url))
    first = desk.request()
    desk.approvals.answer(first.id, grant=False, by="orders-oncall", reason="not now", now=NOW)
    decision = {**DECISION, "id": "d-2", "operation": {"type": "rollback"}}
    second, _ = desk.approvals.request(decision, "backend", BLUEPRINT, "rev-1", NOW)
    desk.approvals.expire("2026-02-10T13:00:00Z")
    notifier.close()
    events = [(b["event"], b["id"]) for b in receiver.bodies()]
    assert events == [
        ("requested", first.id),
        ("rejected", first.id),
        ("requested", second.id),
        ("expired", second.id),
    ]
    assert "rejected by orders-oncall" in receiver.bodies()[1]["text"]


def test_text_is_one_slack_safe_line(receiver: Receiver, desk: Desk) -> None:
    notifier = _notifier(desk, _webhook(receiver.url))
    decision = {**DECISION, "reasons": ["cpu 85% > 80% & <rising>\nsecond line"]}
    desk.approvals.request(decision, "backend", BLUEPRINT, "rev-1", NOW)
    notifier.close()
    [sent] = receiver.bodies()
    assert "cpu 85% &gt; 80% &amp; &lt;rising&gt; second line" in sent["text"]
    assert sent["reasons"] == ["cpu 85% > 80% & <rising>\nsecond line"]  # the field stays raw


def test_failing_receiver_is_retried_then_recorded_and_audited(
    receiver: Receiver, desk: Desk, run_cli: RunCli
) -> None:
    receiver.status = 500
    notifier = _notifier(desk, _webhook(receiver.url), tries=3, backoff=(0.05, 0.1))
    approval = desk.request()
    [failure] = notifier.close()
    assert len(receiver.requests) == 3
    assert (failure.event, failure.tries, failure.error) == ("requested", 3, "HTTP 500")
    assert failure.target == f"webhook {receiver.url.rsplit('/hooks', 1)[0]}"
    [audited] = desk.events("notification_failed")
    assert (audited["service"], audited["approval_id"]) == ("backend", approval.id)
    assert audited["notification"] == {
        "event": "requested",
        "target": failure.target,
        "tries": 3,
        "error": "HTTP 500",
    }
    assert desk.audit.verify().ok
    # the request itself is untouched: still pending, still answerable
    assert desk.state.approval(approval.id).status == "pending"  # type: ignore[union-attr]

    listed = run_cli("approvals", "list", "--state-dir", str(desk.directory))
    assert listed.exit_code == 0
    assert f"notify failed: requested → {failure.target}: HTTP 500 after 3 tries" in listed.stdout
    as_json = json.loads(
        run_cli("approvals", "list", "--state-dir", str(desk.directory), "--json").stdout
    )
    assert as_json[0]["notification_failures"] == [
        f"requested → {failure.target}: HTTP 500 after 3 tries"
    ]


def test_a_client_error_is_not_retried(receiver: Receiver, desk: Desk) -> None:
    receiver.status = 404
    notifier = _notifier(desk, _webhook(receiver.url), tries=3, backoff=(0.05, 0.1))
    desk.request()
    [failure] = notifier.close()
    assert len(receiver.requests) == 1
    assert (failure.tries, failure.error) == (1, "HTTP 404")


def test_hanging_receiver_is_bounded_and_the_request_unaffected(
    receiver: Receiver, desk: Desk
) -> None:
    receiver.hang = True
    notifier = _notifier(desk, _webhook(receiver.url, timeout_seconds=0.3), tries=2, backoff=(0.1,))
    started = time.monotonic()
    approval = desk.request()
    assert time.monotonic() - started < 0.25  # the request does not wait for the webhook
    assert desk.state.approval(approval.id).status == "pending"  # type: ignore[union-attr]
    [failure] = notifier.close()
    assert time.monotonic() - started < 5  # 2 tries of 0.3 s and 0.1 s between them
    assert len(receiver.requests) == 2
    assert (failure.tries, failure.error) == (2, "no answer within 0.3 s")
    assert [e["notification"]["error"] for e in desk.events("notification_failed")] == [
        "no answer within 0.3 s"
    ]


def test_close_records_what_it_could_not_deliver(receiver: Receiver, desk: Desk) -> None:
    receiver.hang = True
    notifier = _notifier(desk, _webhook(receiver.url, timeout_seconds=20), tries=3)
    desk.request()
    started = time.monotonic()
    [failure] = notifier.close(timeout=0.3)
    assert time.monotonic() - started < 2
    assert failure.error.startswith("not delivered: opsgate stopped")
    [audited] = desk.events("notification_failed")
    assert audited["notification"]["error"] == failure.error


def test_a_missing_secret_is_a_failure_not_an_unsigned_post(
    receiver: Receiver, desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    notifier = _notifier(desk, _webhook(receiver.url, secret_env=SECRET_ENV))
    desk.request()
    [failure] = notifier.close()
    assert receiver.requests == []
    assert failure.error == f"secret_env {SECRET_ENV} is not set"


def test_unreachable_webhook_is_a_failure(desk: Desk, receiver: Receiver) -> None:
    with serve(receiver.handler()) as base:
        url = f"{base}/gone"
    notifier = _notifier(desk, _webhook(url), tries=2, backoff=(0.05,))
    desk.request()
    [failure] = notifier.close()
    assert (failure.tries, failure.error) == (2, "can't connect")


def test_notifier_never_raises_into_the_caller(receiver: Receiver, desk: Desk) -> None:
    def broken_record(kind: str, **fields: Any) -> None:
        raise OSError("disk full")

    receiver.status = 500
    notifier = Notifier(
        {"backend": [_webhook(receiver.url)]}, record=broken_record, tries=1, backoff=()
    )
    notifier.notify("approval_requested", {"service": "backend"})  # a request with no fields
    notifier.notify("approval_requested", {"service": "backend", "operation": object()})
    notifier.notify("approval_void", {"service": "backend", "id": "x"})  # not an event we send
    notifier.notify("approval_requested", {"service": "nobody", "id": "x"})  # no targets
    failures = notifier.close()
    assert len(receiver.requests) == 1
    assert sorted(f.error for f in failures) == ["HTTP 500", "not sent: can't encode the request"]


# --- commands ------------------------------------------------------------------------


def test_command_gets_the_json_on_stdin(desk: Desk, tmp_path: Path) -> None:
    out = tmp_path / "received.json"
    script = f"import sys, pathlib; pathlib.Path({str(out)!r}).write_bytes(sys.stdin.buffer.read())"
    notifier = _notifier(desk, {"type": "command", "argv": [sys.executable, "-c", script]})
    approval = desk.request()
    assert notifier.close() == []
    sent = json.loads(out.read_bytes())
    assert (sent["event"], sent["id"], sent["service"]) == ("requested", approval.id, "backend")
    assert f"opsgate approvals approve {approval.id}" in sent["text"]


def test_failing_command_is_retried(desk: Desk, tmp_path: Path) -> None:
    count = tmp_path / "count"
    script = f"import sys; open({str(count)!r}, 'a').write('x'); sys.exit(3)"
    notifier = _notifier(
        desk, {"type": "command", "argv": [sys.executable, "-c", script]}, backoff=(0.05, 0.05)
    )
    desk.request()
    [failure] = notifier.close()
    assert count.read_text() == "xxx"
    assert (failure.tries, failure.error) == (3, "exit status 3")
    assert failure.target == f"command {Path(sys.executable).name}"


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_hanging_command_and_its_children_are_killed_at_the_timeout(
    desk: Desk, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    script = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(60)\n"
    )
    notifier = _notifier(
        desk,
        {"type": "command", "argv": [sys.executable, "-c", script], "timeout_seconds": 1},
        tries=1,
    )
    started = time.monotonic()
    desk.request()
    [failure] = notifier.close()
    assert time.monotonic() - started < 6
    assert failure.error == "killed after 1 s"
    for pid in map(int, pids.read_text().split()):
        deadline = time.monotonic() + 3
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(pid), pid


def test_command_that_does_not_exist(desk: Desk, tmp_path: Path) -> None:
    notifier = _notifier(desk, {"type": "command", "argv": [str(tmp_path / "no-such-tool")]})
    desk.request()
    [failure] = notifier.close()
    assert (failure.tries, failure.error) == (1, "can't run: No such file or directory")


# --- where targets come from ----------------------------------------------------------


def test_targets_snapshot_round_trip(tmp_path: Path) -> None:
    targets = {"backend": [_webhook("https://hooks.example.com/x", secret_env=SECRET_ENV)]}
    save_targets(tmp_path / TARGETS_FILE, targets)
    assert load_targets(tmp_path / TARGETS_FILE) == targets
    assert (tmp_path / TARGETS_FILE).stat().st_mode & 0o077 == 0
    assert load_targets(tmp_path / "missing.json") == {}
    (tmp_path / "damaged.json").write_text("{not json", encoding="utf-8")
    assert load_targets(tmp_path / "damaged.json") == {}


def test_failures_by_request_reads_the_audit_log() -> None:
    events = [
        {"event": "approval_requested", "approval_id": "a1"},
        {
            "event": "notification_failed",
            "approval_id": "a1",
            "notification": {
                "event": "granted",
                "target": "command x\x1b[2J",
                "tries": 1,
                "error": "exit status 1",
            },
        },
    ]
    assert failures_by_request(events) == {
        "a1": ["granted → command x?[2J: exit status 1 after 1 try"]
    }


def test_approving_from_another_shell_notifies(
    receiver: Receiver, desk: Desk, run_cli: RunCli
) -> None:
    # made by a runner without notifications (nothing sent), on the clock the CLI reads
    approval = desk.request(now=utc_now()[:19] + "Z")
    save_targets(desk.directory / TARGETS_FILE, {"backend": [_webhook(receiver.url)]})
    result = run_cli(
        "approvals", "approve", approval.id, "--by", "sre-lead", "--reason", "launch",
        "--state-dir", str(desk.directory),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    [granted] = receiver.bodies()
    assert (granted["event"], granted["answered_by"], granted["id"]) == (
        "granted",
        "sre-lead",
        approval.id,
    )


# --- validation ------------------------------------------------------------------------

MINIMAL_LINES = 22  # tests/fixtures/good/minimal.yaml


def _with_notifications(minimal: str, block: str) -> str:
    indented = "".join(f"      {line}\n" for line in block.strip("\n").splitlines())
    return minimal + "governance:\n  approval_workflow:\n    notifications:\n" + indented


# Each case: the targets (indented under notifications:), then the exact line.
# The first target starts at line 26 of the file.
INVALID = [
    (
        "- type: webhook\n  url: http://hooks.example.com/opsgate",
        "27: governance.approval_workflow.notifications[0].url: plain http is allowed only to "
        "a loopback host (127.0.0.1, ::1, localhost): use https so approval details can't be "
        'read or changed on the way (got "http://hooks.example.com/opsgate")',
    ),
    (
        "- type: webhook\n  url: ftp://hooks.example.com/opsgate",
        "27: governance.approval_workflow.notifications[0].url: must be an http:// or https:// "
        'URL (got "ftp://hooks.example.com/opsgate")',
    ),
    (
        "- type: webhook\n  url: https://bot:hunter2@hooks.example.com/",
        "27: governance.approval_workflow.notifications[0].url: must not carry a user name or "
        "password (the URL is kept in the compiled data): sign requests with secret_env or "
        'secret_file instead (got "https://bot:hunter2@hooks.example.com/")',
    ),
    (
        "- type: webhook",
        "26: governance.approval_workflow.notifications[0].url: required field is missing",
    ),
    (
        "- type: webhook\n  url: https://h.example.com/\n  secret_env: HOOK\n"
        "  secret_file: /etc/opsgate/hook.key",
        "29: governance.approval_workflow.notifications[0].secret_file: give secret_env or "
        'secret_file, not both (got "/etc/opsgate/hook.key")',
    ),
    (
        "- type: webhook\n  url: https://h.example.com/\n  secret_file: hook.key",
        "28: governance.approval_workflow.notifications[0].secret_file: must be an absolute "
        "path: the runner and opsgate approvals may start in other directories "
        '(got "hook.key")',
    ),
    (
        "- type: webhook\n  url: https://h.example.com/\n  secret_env: 1HOOK",
        "28: governance.approval_workflow.notifications[0].secret_env: must be the name of an "
        "environment variable: letters, digits and '_', not starting with a digit "
        '(got "1HOOK")',
    ),
    (
        "- type: webhook\n  url: https://h.example.com/\n  argv: [notify]",
        "28: governance.approval_workflow.notifications[0].argv: is for command targets only",
    ),
    (
        "- type: command\n  argv: notify-send opsgate",
        '27: governance.approval_workflow.notifications[0].argv: must be a list (got "notify-send '
        'opsgate")',
    ),
    (
        "- type: command\n  argv: []",
        "27: governance.approval_workflow.notifications[0].argv: must not be empty (got a list)",
    ),
    (
        "- type: command\n  argv: [notify]\n  url: https://h.example.com/",
        "28: governance.approval_workflow.notifications[0].url: is for webhook targets only",
    ),
    (
        "- type: command\n  argv: [notify]\n  timeout_seconds: 600",
        "28: governance.approval_workflow.notifications[0].timeout_seconds: must be <= 60 "
        "(got 600)",
    ),
    (
        "- type: email",
        "26: governance.approval_workflow.notifications[0].type: must be one of: webhook, "
        'command (got "email")',
    ),
]


@pytest.mark.parametrize(
    ("block", "expected"),
    INVALID,
    ids=[f"{n}-{e.split(':')[1].rsplit('.', 1)[1]}" for n, (_, e) in enumerate(INVALID)],
)
def test_invalid_targets_are_one_exact_line(
    block: str,
    expected: str,
    tmp_path: Path,
    minimal_blueprint_text: str,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert minimal_blueprint_text.count("\n") == MINIMAL_LINES
    (tmp_path / "shop.yaml").write_text(
        _with_notifications(minimal_blueprint_text, block), encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    result = run_cli("validate", "shop.yaml")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"shop.yaml:{expected}"]


def test_valid_targets_get_their_defaults(tmp_path: Path, minimal_blueprint_text: str) -> None:
    from engine.blueprint import load_blueprints

    block = (
        "- type: webhook\n  url: http://127.0.0.1:9/hook\n  secret_env: HOOK\n"
        "- type: webhook\n  url: https://hooks.example.com/opsgate\n"
        "  secret_file: /etc/opsgate/hook.key\n  timeout_seconds: 2.5\n"
        "- type: command\n  argv: [/usr/local/bin/page-oncall, --team, orders]\n"
    )
    (tmp_path / "shop.yaml").write_text(
        _with_notifications(minimal_blueprint_text, block), encoding="utf-8"
    )
    loaded = load_blueprints([tmp_path])
    assert loaded.problems == []
    targets = notification_targets({b.name: b.effective for b in loaded.blueprints})
    assert [t.get("timeout_seconds") for t in targets["shop"]] == [5, 2.5, 5]


def test_shared_defaults_are_checked_once(
    tmp_path: Path, minimal_blueprint_text: str, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "governance.yaml").write_text(
        "apiVersion: opsgate/v1\nkind: Governance\ngovernance:\n  approval_workflow:\n"
        "    notifications:\n      - type: webhook\n        url: http://hooks.example.com/\n",
        encoding="utf-8",
    )
    for name in ("shop", "cart"):
        text = minimal_blueprint_text.replace("shop", name)
        (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = run_cli("validate", ".")
    assert result.exit_code == 1
    problems = [line for line in result.stdout.splitlines() if "notifications" in line]
    assert problems == [
        "governance.yaml:7: governance.approval_workflow.notifications[0].url: plain http is "
        "allowed only to a loopback host (127.0.0.1, ::1, localhost): use https so approval "
        'details can\'t be read or changed on the way (got "http://hooks.example.com/")'
    ]


# --- end to end: the runner -------------------------------------------------------------


def test_a_runner_tick_that_requests_an_approval_notifies_and_stores_no_secret(
    receiver: Receiver,
    blueprint_copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from engine.blueprint import load_blueprints

    monkeypatch.setenv(SECRET_ENV, SECRET)
    governance_path = blueprint_copy / "governance.yaml"
    governance = yaml.safe_load(governance_path.read_text(encoding="utf-8"))
    governance["governance"]["approval_workflow"]["notifications"] = [
        {"type": "webhook", "url": receiver.url, "secret_env": SECRET_ENV}
    ]
    governance_path.write_text(yaml.safe_dump(governance), encoding="utf-8")
    loaded = load_blueprints([blueprint_copy])
    assert loaded.errors == []
    blueprints = {b.name: b.effective for b in loaded.blueprints}
    build = tmp_path / "build"
    state = StateStore(tmp_path / "state" / "state.db")
    audit = AuditLog(tmp_path / "state" / "audit.jsonl")
    cluster = SimulatedCluster.from_blueprints(list(blueprints.values()), seed=3)
    try:
        with PolicySession(blueprint_copy, build_dir=build) as session:
            runner = Runner(
                blueprints=blueprints,
                session=session,
                cluster=cluster,
                state=state,
                audit=audit,
                notify=True,
            )
            backend = Target("backend", "shop", "backend")
            cluster.apply(backend, {"type": "scale", "to": 3})
            cluster.wait(30)
            cluster.set_load("backend", rps=1500)
            report = runner.tick()
            runner.close()
    finally:
        state.close()
    [request] = [r for r in report.requested if r.operation["type"] == "scale"]
    sent = [b for b in receiver.bodies() if b["id"] == request.id]
    assert [(b["event"], b["service"]) for b in sent] == [("requested", "backend")]
    for headers, body in receiver.requests:
        assert headers["x-opsgate-signature"] == _signature(body)
    assert audit.verify().ok

    data = (build / "data.json").read_text(encoding="utf-8")
    assert SECRET_ENV in data  # the name is compiled: where the secret is, not what it is
    stored = {str(p): p.read_bytes() for p in [build / "data.json", audit.path]}
    stored |= {str(p): p.read_bytes() for p in (tmp_path / "state").glob("state.db*")}
    with tarfile.open(build / "bundle.tar.gz") as bundle:  # compressed: look inside
        for member in bundle.getmembers():
            extracted = bundle.extractfile(member)
            if extracted is not None:
                stored[f"bundle:{member.name}"] = extracted.read()
    assert {"bundle:/data.json", str(audit.path)} <= set(stored)
    for where, content in stored.items():
        assert SECRET.encode() not in content, where
    assert os.environ[SECRET_ENV] == SECRET


def test_run_leaves_targets_for_other_shells_and_no_secret(
    blueprint_copy: Path, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    governance_path = blueprint_copy / "governance.yaml"
    governance = yaml.safe_load(governance_path.read_text(encoding="utf-8"))
    target = {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret_env": SECRET_ENV}
    governance["governance"]["approval_workflow"]["notifications"] = [target]
    governance_path.write_text(yaml.safe_dump(governance), encoding="utf-8")
    state = tmp_path / "state"
    result = run_cli(
        "run", "--blueprints", str(blueprint_copy), "--state-dir", str(state), "--once",
        "--pause", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    targets = load_targets(state / TARGETS_FILE)
    assert set(targets) == {"frontend", "backend", "report-worker", "ledger", "hello"}
    assert targets["backend"] == [{**target, "timeout_seconds": 5}]
    files = [p for p in state.iterdir() if p.is_file()]
    assert {p.name for p in files} >= {TARGETS_FILE, "state.db"}
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
