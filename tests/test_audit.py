"""The audit log: chained, fsync'd, masked; verify finds every kind of tampering."""

from __future__ import annotations

import datetime
import itertools
import json
from pathlib import Path

import pytest

from engine import signing
from engine.audit import GENESIS, AuditError, AuditLog, mask


class Clock:
    """A clock that ticks one minute per reading, from 2026-02-10 12:00."""

    def __init__(self) -> None:
        self.now = datetime.datetime(2026, 2, 10, 12, 0, tzinfo=datetime.UTC)

    def __call__(self) -> str:
        self.now += datetime.timedelta(minutes=1)
        return self.now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    log = AuditLog(tmp_path / "audit.jsonl", clock=Clock())
    for i in range(5):
        log.record("decision", service="frontend", decision_id=f"d{i}", tier="allow")
    return log


def lines(log: AuditLog) -> list[str]:
    return log.path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_events_chain_from_genesis(audit: AuditLog) -> None:
    events = list(audit.events())
    assert len(events) == 5
    assert events[0]["prev"] == GENESIS
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(events))
    assert audit.verify().ok


def test_edited_line_is_found(audit: AuditLog) -> None:
    text = lines(audit)
    text[2] = text[2].replace('"tier":"allow"', '"tier":"forbid"')
    audit.path.write_text("".join(text))
    report = audit.verify()
    assert (report.ok, report.first_break, report.reason) == (
        False,
        3,
        "content does not match its hash",
    )


@pytest.mark.parametrize(
    ("change", "line"),
    [
        ("delete", 3),
        ("insert", 3),
        ("reorder", 2),
        ("delete-first", 1),
    ],
)
def test_structural_tampering_is_found(audit: AuditLog, change: str, line: int) -> None:
    text = lines(audit)
    if change == "delete":
        del text[2]
    elif change == "insert":
        text.insert(2, text[1])
    elif change == "reorder":
        text[1], text[2] = text[2], text[1]
    elif change == "delete-first":
        del text[0]
    audit.path.write_text("".join(text))
    report = audit.verify()
    assert not report.ok
    assert report.first_break == line


def test_garbage_line_is_found(audit: AuditLog) -> None:
    with audit.path.open("a") as handle:
        handle.write("not json\n")
    assert audit.verify().first_break == 6


def test_sensitive_values_are_masked(audit: AuditLog) -> None:
    event = audit.record(
        "execution_started",
        operation={
            "type": "update_configmap",
            "changes": {"DB_PASSWORD": "hunter2", "LOG_LEVEL": "DEBUG"},
        },
        headers={"Authorization": "Bearer x"},
    )
    assert event["operation"]["changes"] == {"DB_PASSWORD": "***", "LOG_LEVEL": "DEBUG"}
    assert "hunter2" not in audit.path.read_text()
    assert "Bearer x" not in audit.path.read_text()
    assert mask([{"api_token": 1}, {"ok": 2}]) == [{"api_token": "***"}, {"ok": 2}]


def test_unknown_event_kind_is_refused(audit: AuditLog) -> None:
    with pytest.raises(AuditError, match="unknown audit event kind"):
        audit.record("oops")


def test_full_disk_raises() -> None:
    # /dev/full accepts the open and fails every write with ENOSPC, even for root
    with pytest.raises(AuditError, match="can't write audit log /dev/full"):
        AuditLog(Path("/dev/full")).record("decision")


def test_log_in_a_missing_place_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    log = AuditLog(blocker / "audit.jsonl")
    with pytest.raises(AuditError, match="can't write audit log"):
        log.record("decision")


def test_damaged_last_line_stops_appending(audit: AuditLog) -> None:
    with audit.path.open("a") as handle:
        handle.write('{"half": \n')
    with pytest.raises(AuditError, match="damaged line"):
        audit.record("decision")


def test_prune_keeps_the_chain_verifiable(audit: AuditLog) -> None:
    events = list(audit.events())
    keep_after = datetime.datetime.strptime(events[3]["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.UTC
    )
    kept_lines = lines(audit)[3:]
    key = signing.demo_key("audit")
    signed = AuditLog(audit.path, clock=Clock(), signer=key)
    assert signed.prune(keep_after) == 3
    after = list(audit.events())
    assert after[0]["event"] == "checkpoint"
    assert (after[0]["dropped"], after[0]["count"]) == (3, 3)
    assert lines(audit)[1:] == kept_lines  # kept events are unchanged, byte for byte
    assert audit.verify().ok
    assert audit.verify(public_key=key.public_key()).ok
    audit.record("decision", service="backend")
    assert audit.verify().ok
    assert signed.prune(keep_after) == 0


def test_prune_refuses_a_tampered_log(audit: AuditLog) -> None:
    text = lines(audit)
    del text[1]
    audit.path.write_text("".join(text))
    signed = AuditLog(audit.path, signer=signing.demo_key("audit"))
    with pytest.raises(AuditError, match="refusing to prune"):
        signed.prune(datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC))


def test_two_writers_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    first, second = AuditLog(path), AuditLog(path)
    for i in range(20):
        (first if i % 2 else second).record("decision", n=i)
    assert AuditLog(path).verify().ok
    assert [json.loads(x)["n"] for x in path.read_text().splitlines()] == list(range(20))


def test_multibyte_characters_across_the_tail_boundary(tmp_path: Path) -> None:
    # the last line is read back from a byte offset: it must not split a character
    log = AuditLog(tmp_path / "audit.jsonl", clock=Clock())
    for i in range(300):
        log.record("decision", reasons=[f"cpu request 100m → {i}m is a change — “quoted” ✓"])
    assert log.verify().ok
    assert len(list(log.events())) == 300


def test_a_log_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "audit.jsonl").mkdir()
    log = AuditLog(tmp_path / "audit.jsonl")
    report = log.verify()
    assert (report.ok, report.problem) == (False, "is a directory, not a file")
    with pytest.raises(AuditError, match="can't write audit log"):
        log.record("decision")


def test_an_old_prune_marker_still_verifies_without_a_key(audit: AuditLog) -> None:
    # a log pruned before checkpoints were signed starts with an unsigned marker
    events = list(audit.events())
    marker = {"time": "t", "event": "pruned", "dropped": 2, "before": "t"}
    marker.update(prev=events[0]["prev"], hash=events[1]["hash"])
    audit.path.write_text(
        json.dumps(marker, sort_keys=True, separators=(",", ":")) + "\n" + "".join(lines(audit)[2:])
    )
    assert audit.verify().ok
    assert audit.verify().events == 5
    report = audit.verify(public_key=signing.demo_key("audit").public_key())
    assert (report.first_break, report.reason.split(" (")[0]) == (
        1,
        "starts with an unsigned prune marker",
    )


def test_prune_replaces_an_old_marker_with_a_signed_checkpoint(audit: AuditLog) -> None:
    events = list(audit.events())
    marker = {"time": "t", "event": "pruned", "dropped": 2, "before": "t"}
    marker.update(prev=events[0]["prev"], hash=events[1]["hash"])
    kept = lines(audit)[2:]
    audit.path.write_text(
        json.dumps(marker, sort_keys=True, separators=(",", ":")) + "\n" + "".join(kept)
    )
    key = signing.demo_key("audit")
    assert (
        AuditLog(audit.path, signer=key).prune(datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC))
        == 0
    )
    first = next(audit.events())
    assert (first["event"], first["count"], first["head"]) == ("checkpoint", 2, events[1]["hash"])
    assert lines(audit)[1:] == kept
    assert audit.verify(public_key=key.public_key()).ok
