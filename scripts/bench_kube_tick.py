"""Benchmark runner ticks against a real API server: 50 services, one of them to scale.

Starts the local control plane (scripts/kube_local.py: etcd, kube-apiserver,
controller-manager, scheduler, kwok, metrics-server), creates N Deployments
(default 50) in namespace shop, one of them below its min_replicas, and
blueprints for them;
then times the first tick (observe every service through the runner's RBAC
identity + one decide_all + one scale through the scale subresource; its
verification is scheduled, not waited for) and steady ticks (observe +
decide). Prints figures; asserts nothing (speed targets are not tests).

    .venv/bin/python scripts/bench_kube_tick.py [N]

Needs the control-plane binaries (``make kube-tools``).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from kube_local import NAMESPACE, deployment_manifest, missing_binaries, running  # noqa: E402

from engine.workspace import Workspace  # noqa: E402


def _blueprints(target: Path, names: list[str]) -> None:
    target.mkdir()
    (target / "governance.yaml").write_text((ROOT / "blueprints" / "governance.yaml").read_text())
    template = (ROOT / "blueprints" / "frontend" / "blueprint.yaml").read_text()
    for name in names:
        text = template.replace("name: frontend ", f"name: {name} ")
        text = text.replace("deployment: frontend ", f"deployment: {name} ")
        (target / f"{name}.yaml").write_text(text)


def _wait_ready(apps: object, names: list[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending:
        for item in apps.list_namespaced_deployment(NAMESPACE).items:  # type: ignore[attr-defined]
            status = item.status
            if item.metadata.name in pending and status.ready_replicas == item.spec.replicas:
                pending.discard(item.metadata.name)
        if time.monotonic() > deadline:
            sys.exit(f"bench_kube_tick: {len(pending)} deployments not ready in {timeout:.0f}s")
        time.sleep(0.2)


def main(count: int, steady: int = 5) -> None:
    """Start the control plane, build N services, time the ticks."""
    missing = missing_binaries()
    if missing:
        sys.exit(f"bench_kube_tick: missing {', '.join(missing)}: run make kube-tools")
    from kubernetes import client

    with tempfile.TemporaryDirectory(prefix="opsgate-bench-kube-") as name:
        root = Path(name)
        with running(root / "plane") as plane, plane.admin_client() as api:
            apps = client.AppsV1Api(api)
            names = [f"bench-{n}" for n in range(count)]
            for index, service in enumerate(names):
                # the first one is below min_replicas 2: the first tick scales it
                manifest = deployment_manifest(service, replicas=1 if index == 0 else 2)
                apps.create_namespaced_deployment(NAMESPACE, manifest)
            _wait_ready(apps, names)
            _blueprints(root / "blueprints", names)
            with Workspace(
                root / "blueprints",
                build_dir=root / "build",
                state_dir=root / "state",
                create=True,
                cluster="kube",
                kubeconfig=plane.runner_kubeconfig,
            ) as workspace:
                runner = workspace.runner()
                started = time.perf_counter()
                first = runner.tick()
                first_seconds = time.perf_counter() - started
                applied = [r for r in first.results if r.outcome == "verifying"]
                times = []
                for _ in range(steady):
                    started = time.perf_counter()
                    report = runner.tick()
                    times.append(time.perf_counter() - started)
                    if report.errors:
                        sys.exit(f"bench_kube_tick: tick errors: {report.errors[:3]}")
    print(f"services: {count} on a real kube-apiserver (kwok nodes), runner's RBAC identity")
    print(
        f"first tick (observe {count} + decide_all + {len(applied)} scale applied, "
        f"verification scheduled): {first_seconds:.2f} s"
    )
    print(
        f"steady ticks (observe {count} + decide_all), {steady} runs: "
        f"median {statistics.median(times):.2f} s, min {min(times):.2f} s, "
        f"max {max(times):.2f} s ({1000 * statistics.median(times) / count:.1f} ms per service)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
