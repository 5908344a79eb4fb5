"""The six demonstrations: the runner on the simulated cluster, or a real one, with the
real OPA.

Each demonstration sets up a scene, runs the same runner, execution engine
and approval workflow as production, tells what happened step by step
(observed → decided → classified → approved → executed → verified), and then
checks the outcome on the audit log: a demonstration whose expected outcome
did not happen fails. Approvals go through the approval workflow, exactly as
``opsgate approvals approve`` does.

On a real cluster (``KubeAccess``) the scene is set with the admin identity
(engine.demo_scene) and the runner acts with its own, verification is a later
tick's step as in ``opsgate run``, and the blueprints are a copy with a short
stabilization. What a real cluster without Prometheus can't show is said, not
faked: there is no latency, so the bad rollout is one whose pod can't be placed,
and the approval's 30-minute timeout is left to the simulated demonstration.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import signing
from engine.approval import Approvals, claims
from engine.audit import AuditLog
from engine.blueprint import keyed_blueprints
from engine.cluster import Target
from engine.contracts import describe
from engine.demo_scene import KubernetesScene, Scene, SimulatedScene, quick_blueprints
from engine.execute import Result
from engine.runner import TickReport
from engine.state import StateStore
from engine.workspace import Workspace

log = logging.getLogger(__name__)

Say = Callable[[str], None]

# the approver the demonstrations sign as, with a key made for the demonstration
DEMO_APPROVER = "sre-lead"


def demo_signer(directory: Path) -> signing.Signer:
    """The demonstration approver's key, written to ``directory`` (0600) for the CLI to use.

    The key is derived from a fixed phrase so that request ids, and so the
    demonstration pages in docs/demos, come out the same on every run: it is
    public knowledge and trusted only by the keyed copy of the blueprints
    made for a demonstration, never by the blueprints themselves.
    """
    key = signing.demo_key(DEMO_APPROVER)
    path = directory / f"{DEMO_APPROVER}.key"
    directory.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        signing.write_private_key(path, key)
    return signing.Signer(DEMO_APPROVER, key)


@dataclass(frozen=True)
class KubeAccess:
    """A real cluster for the demonstrations: the runner's kubeconfig and the admin's."""

    runner: Path
    admin: Path


@dataclass
class Prepared:
    """The demonstrations' workspace (keyed blueprints, compiled once, OPA) and their signer;
    ``kube`` when they run on a real cluster."""

    workspace: Workspace
    signer: signing.Signer
    kube: KubeAccess | None = None


@contextmanager
def prepared(
    blueprints: Path,
    directory: Path,
    policies: Path | None = None,
    *,
    kube: KubeAccess | None = None,
) -> Iterator[Prepared]:
    """Keyed blueprints in ``directory``, an OPA serving them, and the approver who signs.

    On a real cluster the keyed copy also gets a short stabilization
    (``demo_scene.KUBE_STABILIZATION_SECONDS``): time there is real.
    """
    signer = demo_signer(directory / "keys")
    public = signing.public_key_line(signer.key.public_key(), "opsgate-demo-only")
    keyed = keyed_blueprints(blueprints, directory / "keyed-blueprints", {signer.name: public})
    if kube is not None:
        quick_blueprints(keyed)
    with Workspace(
        keyed,
        policies=policies,
        cluster="kube" if kube else "sim",
        kubeconfig=kube.runner if kube else None,
    ) as workspace:
        workspace.session  # noqa: B018 - OPA starts here, before the first demonstration tells
        yield Prepared(workspace, signer, kube)


@dataclass
class DemoOutcome:
    """What a demonstration showed, and whether it showed what it should."""

    number: int
    title: str
    audit_path: Path
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every expected outcome happened."""
        return not self.failures


class Stage:
    """A fresh state and audit log for one demonstration, its runner, and its scene: a fresh
    simulated cluster, or the real one reset to what the blueprints describe."""

    def __init__(
        self,
        workspace: Workspace,
        say: Say,
        signer: signing.Signer,
        kube: KubeAccess | None = None,
    ) -> None:
        self.signer = signer
        self.workspace = workspace
        self.blueprints = workspace.blueprints
        self.runner = workspace.runner()
        self.cluster = self.runner.cluster  # what the runner sees, with its own identity
        self.scene: Scene = (
            KubernetesScene(kube.admin, self.blueprints)
            if kube is not None
            else SimulatedScene(workspace.simulated, self.runner.targets)
        )
        self.state = workspace.state
        self.audit = workspace.audit
        self.session = workspace.session
        self.say = say

    def target(self, service: str) -> Target:
        """Where a service runs."""
        return self.runner.targets[service]

    def observe(self, service: str) -> dict[str, Any]:
        """Observe a service and say what was seen."""
        observation = self.cluster.observe(self.target(service))
        metrics = observation["metrics"]
        replicas = observation["replicas"]
        self.say(
            f"observed  {service}: {replicas['ready']}/{replicas['desired']} replicas ready, "
            f"cpu {metrics.get('cpu_percent', '?')}%, p95 {metrics.get('latency_p95_ms', '?')} ms"
        )
        return observation

    def tick(self) -> TickReport:
        """Run one tick and tell it."""
        report = self.runner.tick()
        for decision in report.decisions:
            if decision["operation"]["type"] != "scale" and decision["tier"] != "forbid":
                continue  # the story is about replicas; resource steps are audited all the same
            self.say(
                f"decided   {decision['service']}: {describe(decision['operation'])} — "
                f"{decision['reasons'][0]}"
            )
            self.say(f"classified {decision['tier']}: {'; '.join(decision['reasons'][1:]) or '-'}")
        for approval in report.requested:
            if approval.operation["type"] == "scale":
                self.say(
                    f"approval  requested {approval.id} for {approval.service}: "
                    f"{describe(approval.operation)}; "
                    f"approvers {', '.join(approval.approvers)}; expires {approval.expires_at}"
                )
        for result in report.results:
            if result.operation["type"] == "scale":
                self.tell(result)
        for error in report.errors:
            self.say(f"error     {error}")
        self.verified(report)
        return report

    def verified(self, report: TickReport) -> None:
        """Wait for the verifications the runner scheduled (a real cluster's: time passes in
        the scene, the load follows the pods), run them as the next tick would, and tell
        them; their results join ``report``."""
        if not any(r.outcome == "verifying" for r in report.results):
            return
        for _ in range(5):  # one per change; an error leaves it scheduled, told, not looped
            due = self.runner.next_verification()
            if due is None:
                return
            self.say(f"waiting   {due[1]:.0f}s: verification due at {due[0]}")
            self.scene.wait(due[1] + 1)
            later = self.runner.verify_due()
            for result in later.results:
                self.tell(result)
            report.results.extend(later.results)
            report.errors.extend(later.errors)

    def tell(self, result: Result) -> None:
        """Say what became of one operation."""
        self.say(f"executed  {describe(result.operation)}: {result.outcome}")
        if result.verification is not None:
            checks = ", ".join(
                f"{c.name} {_check_word(c.passed)} ({c.observed})"
                for c in result.verification.checks
            )
            self.say(f"verified  {result.verification.outcome}: {checks}")

    def events(
        self, kind: str, service: str | None = None, kind_of: str | None = None
    ) -> list[dict[str, Any]]:
        """Audit events of one kind, optionally for one service and operation type (a run of
        repeats as the event it repeats)."""
        return [
            e
            for e in self.audit.expanded(self.audit.runs())
            if e["event"] == kind
            and (service is None or e.get("service") == service)
            and (kind_of is None or (e.get("operation") or {}).get("type") == kind_of)
        ]

    def verified_events(self, service: str, kind_of: str) -> list[dict[str, Any]]:
        """The verifications that passed; on a real cluster without Prometheus also those
        partial only for want of a latency (every other check passed)."""
        passed = self.events("verification_passed", service, kind_of)
        if not self.scene.real:
            return passed
        return passed + [
            e
            for e in self.events("verification_partial", service, kind_of)
            if all(
                c["passed"] is True or (c["name"] == "latency" and c["passed"] is None)
                for c in e["verification"]["checks"]
            )
        ]

    def close(self) -> None:
        """Close the state and audit log (OPA stays up for the next demonstration)."""
        if isinstance(self.scene, KubernetesScene):
            self.scene.close()
        self.workspace.close()


def _check_word(passed: bool | None) -> str:
    return "ok" if passed else "FAILED" if passed is False else "unknown"


def _expect(outcome: DemoOutcome, condition: bool, what: str, say: Say) -> None:
    if condition:
        say(f"expected  ✓ {what}")
    else:
        say(f"expected  ✗ {what}: DID NOT HAPPEN")
        outcome.failures.append(what)


def autonomous_scaling(stage: Stage, outcome: DemoOutcome) -> None:
    """Frontend at CPU 85% (threshold 80%, max 5): scaled 2 → 3 without a person; CPU falls."""
    scene = stage.scene
    scene.load_for_cpu("frontend", 85)
    scene.settle("frontend")
    stage.observe("frontend")
    stage.tick()
    scene.settle("frontend")
    after = stage.observe("frontend")
    scaled = stage.verified_events("frontend", "scale")
    decision = next(iter(stage.events("decision", "frontend", "scale")), {})
    say = stage.say
    _expect(outcome, decision.get("tier") == "allow", "the scale-up is allowed by policy", say)
    _expect(
        outcome,
        bool(scaled) and scene.ready_replicas("frontend") == 3,
        "frontend scaled 2 → 3 ready pods and verified"
        if scene.real
        else "frontend scaled 2 → 3 and verified",
        say,
    )
    cpu = after["metrics"].get("cpu_percent", 100)
    _expect(outcome, 50 <= cpu <= 65, f"CPU fell to about 60% (now {cpu}%)", say)
    refs = decision.get("blueprint_refs", [])
    _expect(
        outcome,
        "spec.scaling.scale_up_threshold_percent" in refs,
        "the decision names its blueprint fields",
        say,
    )


def approval_workflow(stage: Stage, outcome: DemoOutcome) -> None:
    """Backend (max 3) needs a 4th replica: requested, approved with a reason, run; a timeout."""
    say = stage.say
    scene = stage.scene
    scene.scale("backend", 3)
    if not scene.real:
        scene.wait(30)  # a real scene's scale waited for the rollout itself
    scene.load_for_cpu("backend", 85)  # 4 replicas bring it to 64%, under the 68.2% target
    scene.settle("backend")
    stage.observe("backend")
    report = stage.tick()
    requests = [
        a for a in report.requested if a.service == "backend" and a.operation["type"] == "scale"
    ]
    _expect(outcome, bool(requests), "an approval request for backend 3 → 4", say)
    _expect(
        outcome,
        scene.ready_replicas("backend") == 3,
        "nothing executed before the approval",
        say,
    )
    if requests:
        request = requests[0]
        say(f"reasons   {'; '.join(request.reasons)}")
        approvals = Approvals(StateStore(stage.state.path), stage.audit)  # another shell's view
        now = stage.cluster.now()
        reason = "launch traffic; DB pool raised"
        token = stage.signer.statement(claims(request, "approve", now, reason))
        approvals.answer_signed(token, now=now)
        approvals.state.close()
        say(f"approved  {request.id} by {stage.signer.name} (signed with their key): {reason}")
        if not scene.real:
            scene.wait(30)
        stage.tick()
    granted = stage.events("approval_granted", "backend", "scale")
    _expect(
        outcome,
        bool(granted) and granted[0].get("justification") == "launch traffic; DB pool raised",
        "the audit log holds the approval and its justification",
        say,
    )
    _expect(
        outcome,
        scene.ready_replicas("backend") == 4,
        "backend scaled 3 → 4 ready pods after the approval"
        if scene.real
        else "backend scaled 3 → 4 after the approval",
        say,
    )
    if scene.real:
        say(
            "--- the unanswered request's expiry (backend timeout_seconds 1800) is not waited "
            "for in real time: `opsgate demo 2` on the simulated cluster shows it"
        )
        return
    say("--- and when nobody answers:")
    scene.load_for_cpu("backend", 80)  # 5 replicas bring it to 64%
    scene.wait(700)  # past the backend's cooldown
    report = stage.tick()
    late = [
        a for a in report.requested if a.service == "backend" and a.operation["type"] == "scale"
    ]
    _expect(outcome, bool(late), "a second request, for backend 4 → 5", say)
    scene.wait(1801)  # backend's timeout_seconds is 1800
    stage.tick()
    expired = stage.events("approval_expired", "backend", "scale")
    _expect(outcome, bool(expired), "the unanswered request expired (auto-reject)", say)
    _expect(
        outcome,
        scene.ready_replicas("backend") == 4,
        "nothing executed after the timeout",
        say,
    )


def governance_blocking(stage: Stage, outcome: DemoOutcome) -> None:
    """An AI agent asks to delete the frontend deployment: forbidden at once, with a suggestion."""
    say = stage.say
    say("request   an agent proposes: delete_deployment frontend")
    context = stage.runner.context("frontend")
    operation = {"type": "delete_deployment", "name": "frontend"}
    verdict = stage.runner.executor.fresh_verdict(context, operation)
    say(f"classified {verdict['tier']}: {'; '.join(verdict['reasons'])}")
    if verdict.get("suggestion"):
        say(f"suggestion {verdict['suggestion']['text']}")
    result = stage.runner.executor.execute(context, {**verdict, "operation": operation})
    say(f"executed  {result.outcome}")
    _expect(outcome, verdict["tier"] == "forbid", "the operation is forbidden", say)
    _expect(outcome, bool(verdict.get("suggestion")), "a suggestion is given", say)
    _expect(
        outcome,
        bool(stage.events("blocked", "frontend", "delete_deployment")),
        "the block is in the audit log",
        say,
    )
    _expect(outcome, stage.state.journal() == [], "nothing was executed", say)


def rollback_on_failure(stage: Stage, outcome: DemoOutcome) -> None:
    """A scale-down pushes frontend p95 over its 200 ms target: verification fails, rollback.

    On a real cluster (no latency without Prometheus) the bad change is a rollout whose
    new pod can't be placed: see ``bad_rollout``."""
    if isinstance(stage.scene, KubernetesScene):
        bad_rollout(stage, stage.scene, outcome)
        return
    say = stage.say
    scene = stage.scene
    scene.scale("frontend", 3)
    scene.load_for_cpu("frontend", 57)  # comfortable at 3 replicas, 85% at 2
    scene.wait(60)
    stage.observe("frontend")
    say("request   an agent proposes: scale frontend 3 → 2 (inside min 2 .. max 5)")
    context = stage.runner.context("frontend")
    operation = {"type": "scale", "from": 3, "to": 2}
    verdict = stage.runner.executor.fresh_verdict(context, operation)
    say(f"classified {verdict['tier']}: {'; '.join(verdict['reasons'])}")
    result = stage.runner.executor.execute(context, {**verdict, "operation": operation})
    stage.tell(result)
    after = stage.observe("frontend")
    failed = stage.events("verification_failed", "frontend", "scale")
    latency = next(
        (
            c["observed"]
            for c in (failed[0]["verification"]["checks"] if failed else [])
            if c["name"] == "latency"
        ),
        None,
    )
    _expect(
        outcome,
        bool(failed) and isinstance(latency, int | float) and 250 <= latency <= 400,
        f"p95 rose to about 300 ms at 2 replicas ({latency} ms)",
        say,
    )
    rolled = stage.events("rollback_succeeded", "frontend", "scale")
    _expect(
        outcome,
        bool(rolled) and "latency" in rolled[0].get("reason", ""),
        "a rollback, logged with its reason",
        say,
    )
    _expect(outcome, scene.ready_replicas("frontend") == 3, "replicas restored to 3", say)
    p95 = after["metrics"].get("latency_p95_ms", 1e9)
    _expect(outcome, p95 < 200, f"latency back in range ({p95} ms)", say)


def bad_rollout(stage: Stage, scene: KubernetesScene, outcome: DemoOutcome) -> None:
    """On a real cluster: a rollout whose new pod can't be placed (every node cordoned by the
    admin) fails its verification and is rolled back to the previous ReplicaSet."""
    say = stage.say
    before = scene.deployment("frontend")["spec"]["template"]
    stage.observe("frontend")
    say("scene     the cluster has no room for a new pod: every node cordoned (as admin)")
    with scene.no_room():
        say("request   an agent proposes: adjust_resources frontend cpu request 100m → 110m")
        context = stage.runner.context("frontend")
        operation = {
            "type": "adjust_resources",
            "resource": "cpu",
            "field": "request",
            "from": "100m",
            "to": "110m",
        }
        verdict = stage.runner.executor.fresh_verdict(context, operation)
        say(f"classified {verdict['tier']}: {'; '.join(verdict['reasons'])}")
        result = stage.runner.executor.execute(context, {**verdict, "operation": operation})
        stage.tell(result)
        pending = [
            p["metadata"]["name"]
            for p in scene.pods("frontend")
            if (p.get("status") or {}).get("phase") == "Pending"
        ]
        say(f"scene     the new ReplicaSet's pod stays Pending: {', '.join(pending) or 'none'}")
        report = TickReport(time=stage.cluster.now(), results=[result])
        stage.verified(report)
    failed = stage.events("verification_failed", "frontend", "adjust_resources")
    checks = {
        c["name"]: c["passed"] for c in (failed[0]["verification"]["checks"] if failed else [])
    }
    _expect(
        outcome,
        bool(failed) and checks.get("pods_ready") is False,
        "verification failed: the new pod never became ready",
        say,
    )
    rolled = stage.events("rollback_succeeded", "frontend", "adjust_resources")
    _expect(outcome, bool(rolled), "a rollback, logged with its reason", say)
    after = scene.deployment("frontend")["spec"]["template"]
    _expect(
        outcome,
        after == before,
        "the Deployment's template is the previous ReplicaSet's again (read as admin)",
        say,
    )
    _expect(outcome, scene.ready_replicas("frontend") == 2, "2 ready pods, as before", say)


def multi_service(stage: Stage, outcome: DemoOutcome) -> None:
    """Frontend needs scaling while backend is stable: only frontend changes; separate records."""
    say = stage.say
    scene = stage.scene
    scene.load_for_cpu("frontend", 85)
    scene.settle("frontend")
    scene.settle("backend")
    stage.observe("frontend")
    stage.observe("backend")
    stage.tick()
    if not scene.real:
        scene.wait(60)
    front, back = stage.observe("frontend"), stage.observe("backend")
    _expect(outcome, scene.ready_replicas("frontend") == 3, "frontend scaled 2 → 3", say)
    _expect(outcome, scene.ready_replicas("backend") == 2, "backend unchanged", say)
    _expect(
        outcome,
        stage.events("decision", "backend") == [],
        "no decision for the stable backend",
        say,
    )
    _expect(
        outcome,
        bool(stage.events("decision", "frontend", "scale")),
        "a decision record for frontend",
        say,
    )
    if scene.real:
        say("p95       not measured on this cluster (no Prometheus): the simulated demo shows it")
        return
    for name, observation in (("frontend", front), ("backend", back)):
        p95 = observation["metrics"].get("latency_p95_ms", 1e9)
        target = stage.blueprints[name]["spec"]["performance"]["latency_p95_ms"]
        _expect(outcome, p95 < target, f"{name} meets its p95 target ({p95} < {target} ms)", say)


# the agent of the sixth demonstration: governance.yaml gives it scale and restart_pod in shop
DEMO_AGENT = "ops-assistant"


def _opsgate(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine", *args]


def ai_agent(stage: Stage, outcome: DemoOutcome) -> None:
    """An AI agent over MCP: its allowed change runs and is verified, one beyond max waits for
    a person's signed approval (answered out of band), a PVC deletion is forbidden with a
    suggestion, and reading a secret through the kubectl gate is forbidden.

    The agent is the SDK's own MCP client driving ``opsgate mcp`` over stdio (no model):
    what a model would send, sent as it would send it. The runner's state is a private
    directory of its own, its audit log signed, as on a bastion host.
    """
    say = stage.say
    if stage.scene.real:
        say("scene     the agent demonstration runs on the simulated cluster")
    blueprints = stage.workspace.blueprint_dir
    assert blueprints is not None
    demo_signer(outcome.audit_path.parent / "keys")  # the approver's key file, for the CLI
    key = outcome.audit_path.parent / "keys" / f"{DEMO_APPROVER}.key"
    # the runner's state as on a bastion host: a private directory, a signed audit log
    state = outcome.audit_path.parent / "agent-state"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(mode=0o700, parents=True)
    outcome.audit_path = state / "audit.jsonl"
    common = ["--blueprints", str(blueprints), "--state-dir", str(state)]
    backend_max = stage.blueprints["backend"]["spec"]["scaling"]["max_replicas"]
    beyond = {"service": "backend", "operation": {"type": "scale", "to": backend_max + 2}}
    answers = asyncio.run(_agent_session(common, beyond, key, say))
    gated = subprocess.run(
        [
            *_opsgate("gate", "--agent", DEMO_AGENT, *common, "--"),
            *("kubectl", "get", "secret", "orders-db", "-n", "shop", "-o", "yaml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    say(f"agent     $ kubectl get secret orders-db -n shop -o yaml  → exit {gated.returncode}")
    say(f"gate      {gated.stderr.strip().splitlines()[-1] if gated.stderr.strip() else '-'}")
    _expect(outcome, answers["scaled"].get("outcome") == "succeeded", "frontend scaled 2 → 3", say)
    verification = answers["scaled"].get("verification") or {}
    _expect(outcome, verification.get("outcome") == "pass", "the agent's change verified", say)
    _expect(
        outcome,
        answers["filed"].get("outcome") == "awaiting_approval",
        f"backend beyond max ({backend_max + 2} > {backend_max}): an approval request, "
        "not an execution",
        say,
    )
    _expect(
        outcome,
        answers["status"].get("status") == "granted"
        and answers["status"].get("answered_by") == DEMO_APPROVER,
        f"the agent sees the approval granted by {DEMO_APPROVER} in approval_status",
        say,
    )
    _expect(outcome, answers["ran"].get("outcome") == "succeeded", "then it runs, once", say)
    _expect(
        outcome,
        answers["pvc"].get("tier") == "forbid" and bool(answers["pvc"].get("suggestion")),
        "delete_pvc forbidden, with a suggestion",
        say,
    )
    _expect(outcome, gated.returncode == 4, "kubectl get secret forbidden by the gate", say)
    events = [json.loads(line) for line in outcome.audit_path.read_text().splitlines()]
    by_agent = {"kind": "agent", "name": DEMO_AGENT}
    started = [
        e for e in events if e["event"] == "execution_started" and e.get("requester") == by_agent
    ]
    _expect(
        outcome,
        sorted(e["service"] for e in started) == ["backend", "frontend"],
        "the audit log names the agent as the requester of both executions",
        say,
    )
    refused = [e for e in events if e["event"] == "agent_request" and e.get("refused")]
    _expect(outcome, bool(refused), "the refused kubectl command is in the audit log", say)
    checked = AuditLog(outcome.audit_path).verify()
    _expect(outcome, checked.ok, "the agent's audit log verifies", say)


async def _agent_session(
    common: list[str], beyond: dict[str, Any], key: Path, say: Say
) -> dict[str, dict[str, Any]]:
    """The agent's side: one MCP session over stdio, each call told as it is made."""
    from mcp import Client, StdioServerParameters

    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "engine", "mcp", "--agent", DEMO_AGENT, *common],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    answers: dict[str, dict[str, Any]] = {}
    async with Client(server) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        say(f"agent     connected over MCP as {DEMO_AGENT}; tools: {', '.join(tools)}")

        async def call(label: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
            result = await client.call_tool(tool, arguments)
            text = " ".join(getattr(block, "text", "") for block in result.content)
            answer = result.structured_content if not result.is_error else {"error": text}
            answers[label] = answer or {}
            return answers[label]

        scale = {"service": "frontend", "operation": {"type": "scale", "to": 3}}
        scaled = await call("scaled", "request_operation", {**scale, "reason": "p95 rising"})
        say(f"agent     request_operation scale frontend to 3 → {scaled.get('outcome')}")
        filed = await call("filed", "request_operation", beyond)
        say(
            f"agent     request_operation scale backend to {beyond['operation']['to']} → "
            f"{filed.get('outcome')} ({filed.get('approval_id')})"
        )
        approval_id = str(filed.get("approval_id"))
        answered = subprocess.run(
            [
                *_opsgate("approvals", "approve", approval_id, "--key", str(key)),
                *("--reason", "checkout campaign", "--state-dir", common[-1]),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        say(
            f"person    {DEMO_APPROVER}: opsgate approvals approve {approval_id} → exit "
            f"{answered.returncode}"
        )
        status = await call("status", "approval_status", {"approval_id": approval_id})
        say(f"agent     approval_status {approval_id} → {status.get('status')}")
        ran = await call("ran", "request_operation", beyond)
        say(f"agent     request_operation again → {ran.get('outcome')}")
        pvc = {"service": "backend", "operation": {"type": "delete_pvc", "name": "orders-data"}}
        forbidden = await call("pvc", "request_operation", pvc)
        suggestion = (forbidden.get("suggestion") or {}).get("text", "-")
        say(f"agent     request_operation delete_pvc → {forbidden.get('tier')}: {suggestion}")
    return answers


DEMOS: dict[int, tuple[str, Callable[[Stage, DemoOutcome], None]]] = {
    1: ("Autonomous scaling", autonomous_scaling),
    2: ("Approval workflow", approval_workflow),
    3: ("Governance blocking", governance_blocking),
    4: ("Rollback on verification failure", rollback_on_failure),
    5: ("Multi-service", multi_service),
    6: ("An AI agent through the gate", ai_agent),
}


def run_demo(number: int, scene_set: Prepared, directory: Path, say: Say) -> DemoOutcome:
    """Run one demonstration in ``directory`` (its state and audit log) and check it."""
    title, scene = DEMOS[number]
    outcome = DemoOutcome(number, title, directory / "audit.jsonl")
    stage = Stage(
        scene_set.workspace.fresh_at(directory, seed=7), say, scene_set.signer, scene_set.kube
    )
    try:
        stage.scene.reset()
        scene(stage, outcome)
    finally:
        stage.close()
    _expect(outcome, stage.audit.verify().ok, "the audit log verifies", say)
    return outcome
