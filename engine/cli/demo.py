"""``opsgate demo``: the five demonstrations, each checked on its own audit log."""

from __future__ import annotations

from pathlib import Path

import click

from engine.cli.options import blueprints_option, policies_option
from engine.cli.terminal import escape, note
from engine.demos import DEMOS, KubeAccess, prepared, run_demo
from engine.errors import UsageError


@click.command(
    epilog="""\b
Examples:
  opsgate demo all
  opsgate demo 2 --state-dir /tmp/opsgate-demo
  opsgate demo 1 --blueprints my-copy-of-blueprints   # break a rule, watch the demo fail
  make kube-up && opsgate demo all --cluster kube      # on the local control plane

Demonstrations: 1 autonomous scaling, 2 approval workflow (and timeout),
3 governance blocking, 4 rollback on verification failure, 5 multi-service.
With --cluster kube the scene is set with the admin kubeconfig and the runner
acts with its own (docs/rbac.yaml); the blueprints' copy gets a 15 s
stabilization, real time; without Prometheus there is no latency, so demo 4's
bad change is a rollout whose pod can't be placed, and demo 2's timeout is
left to the simulated run.
Exit 0 when every expected outcome happened, 1 otherwise.""",
)
@click.argument("which", type=click.Choice([*(str(n) for n in DEMOS), "all"]))
@blueprints_option
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=".opsgate/demo",
    show_default=True,
    help="Where each demonstration keeps its state and audit log (demo-N/ inside).",
)
@policies_option
@click.option(
    "--cluster",
    "cluster_kind",
    type=click.Choice(["sim", "kube"]),
    default="sim",
    show_default=True,
    help="The simulated cluster, or a real one (the local control plane of `make kube-up`).",
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".kube/runner.kubeconfig"),
    show_default=True,
    help="Kubernetes only: the runner's kubeconfig (what it acts with).",
)
@click.option(
    "--admin-kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".kube/admin.kubeconfig"),
    show_default=True,
    help="Kubernetes only: the admin's kubeconfig (what each scene is set and read with).",
)
@click.pass_context
def demo(
    ctx: click.Context,
    which: str,
    blueprints: Path,
    state_dir: Path,
    policies: Path | None,
    cluster_kind: str,
    kubeconfig: Path,
    admin_kubeconfig: Path,
) -> None:
    """Run a demonstration on the simulated cluster (or a real one) with the real OPA.

    Each one tells what it observed, decided, classified, approved, executed
    and verified, then checks the expected outcome on its audit log. The
    approver signs with a key made for the demonstration: the blueprints are
    copied to STATE_DIR/keyed-blueprints with its public key added.
    """
    numbers = sorted(DEMOS) if which == "all" else [int(which)]
    kube = None
    if cluster_kind == "kube":
        for role, path in (("runner", kubeconfig), ("admin", admin_kubeconfig)):
            if not path.is_file():
                raise UsageError(
                    f"the {role} kubeconfig {path} does not exist: start the local control "
                    f"plane with `make kube-up`, or give --{'admin-' if role == 'admin' else ''}"
                    "kubeconfig"
                )
        kube = KubeAccess(runner=kubeconfig, admin=admin_kubeconfig)
    failed = []
    with prepared(blueprints, state_dir, policies, kube=kube) as scene_set:
        for number in numbers:
            title = DEMOS[number][0]
            note(f"\n[bold]Demo {number}: {title}[/]")
            outcome = run_demo(
                number,
                scene_set,
                state_dir / f"demo-{number}",
                lambda text: note(f"  {escape(text)}"),
            )
            verdict = "[green]as expected[/]" if outcome.ok else "[red]NOT as expected[/]"
            note(f"  → {verdict}; audit log: {outcome.audit_path}")
            if not outcome.ok:
                failed.append(number)
    if failed:
        note(f"[red]demonstrations not as expected: {', '.join(map(str, failed))}[/]")
        ctx.exit(1)
