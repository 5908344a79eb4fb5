"""An AI agent's kubectl through the gate, against the real control plane.

The agent runs `kubectl scale` through `opsgate gate`; opsgate carries it out
with the runner's own kubeconfig (docs/rbac.yaml), journals it as verifying,
and the runner's next tick (`opsgate run --once` on the same state) judges it.
A forbidden command sends nothing to the API server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.kube.conftest import Admin, now, runner_requests
from tests.kube.test_run import _blueprints, _events, _opsgate, _run_once


def _gate(control_plane: Any, blueprints: Path, state: Path, *kubectl: str) -> Any:
    return _opsgate(
        "gate",
        "--agent",
        "ops-assistant",
        "--cluster",
        "kube",
        "--kubeconfig",
        str(control_plane.runner_kubeconfig),
        "--blueprints",
        str(blueprints),
        "--state-dir",
        str(state),
        "--",
        "kubectl",
        *kubectl,
    )


def test_an_agents_scale_is_applied_by_opsgate_and_verified_by_the_runner(
    tmp_path: Path, cluster_admin: Admin, deployment_name: str, control_plane: Any
) -> None:
    cluster_admin.create(deployment_name, replicas=2)
    cluster_admin.wait_rolled_out(deployment_name)
    blueprints = _blueprints(tmp_path / "blueprints", deployment_name)
    state = tmp_path / "state"
    since = now()
    forbidden = _gate(
        control_plane, blueprints, state, "delete", "deployment", deployment_name, "-n", "shop"
    )
    assert forbidden.returncode == 4, forbidden.stderr
    assert not [e for e in runner_requests(control_plane, since) if e["verb"] == "delete"]
    scaled = _gate(
        control_plane,
        blueprints,
        state,
        "scale",
        f"deployment/{deployment_name}",
        "--replicas=3",
        "-n",
        "shop",
    )
    assert scaled.returncode == 0, scaled.stderr
    assert "verifying" in scaled.stdout
    assert cluster_admin.wait_rolled_out(deployment_name)["spec"]["replicas"] == 3
    [started] = _events(state, "execution_started")
    assert started["requester"] == {"kind": "agent", "name": "ops-assistant"}
    ran = _run_once(control_plane, blueprints, state)  # the runner judges what the agent did
    assert ran.returncode == 0, ran.stderr
    judged = [
        e
        for kind in ("verification_passed", "verification_partial", "verification_failed")
        for e in _events(state, kind)
    ]
    assert judged and judged[0]["operation"]["to"] == 3
    assert json.dumps(judged[0]).count("verification") >= 1
