"""One command's workspace: the blueprints parsed and compiled once, and what is opened on them.

Every command that acts wires the same things: parse the blueprints, compile
them, open the state directory (state database, audit log, cluster), start
the policy session, then build the runner or the executor. ``Workspace``
wires them, for every caller: the CLI (through click's ``ctx.obj``), the
simulator, the demonstrations and the benchmarks.

Each part opens on first use, at most once, so a command opens only what it
needs (a command on state and audit never starts OPA) and the blueprints are
parsed and compiled once per command. Used as a context manager, the
workspace closes what it opened in the reverse order, on every way out: the
runner's notifications, OPA, the audit log (with its closing checkpoint),
the state database; and the runner's simulated cluster is saved once a
runner or executor was given it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple

from engine.audit import KEY_FILE, AuditLog, retention_days, runner_key
from engine.blueprint import BlueprintSet, load_blueprints
from engine.cluster import Cluster, ClusterError
from engine.cluster.simulated import SimulatedCluster
from engine.compile import CompileResult, InvalidBlueprints, compile_blueprints
from engine.errors import OpsgateError, UsageError
from engine.execute import Executor
from engine.files import private_directory
from engine.inbox import Inbox
from engine.policy import OpaSettings, PolicySession
from engine.runner import Prompt, Runner
from engine.state import StateStore

log = logging.getLogger(__name__)

ClusterKind = Literal["sim", "kube"]
# How to ask the passphrase of an encrypted key (the CLI asks on the terminal).
Passphrase = Callable[[Path], Callable[[], str]]
# Where to say what went wrong while closing, when it must not hide an earlier error.
Warn = Callable[[str], None]

# What a fresh start removes from its directory: the traces of an earlier run.
_STALE = ("state.db", "state.db-wal", "state.db-shm", "audit.jsonl", "cluster.json")


class StatePaths(NamedTuple):
    """The files of a state directory."""

    state: Path
    audit: Path
    cluster: Path


def state_paths(state_dir: Path, *, create: bool = False) -> StatePaths:
    """(state database, audit log, simulated cluster file) inside ``state_dir``.

    The state dir must be private: made 0700 when ``create`` and missing;
    refused when another user owns it or group or others may write to it.
    """
    private_directory(state_dir, "state directory", create=create)
    return _files(state_dir)


def _files(state_dir: Path) -> StatePaths:
    return StatePaths(state_dir / "state.db", state_dir / "audit.jsonl", state_dir / "cluster.json")


class Workspace:
    """The blueprints, their compiled bundle, OPA, and one state directory, each opened once.

    ``blueprints`` is the blueprint directory (None for a command on state
    alone). ``state_dir`` is the runner's private state directory (checked,
    made when ``create``), or with ``fresh`` a directory of its own for a
    simulation or a demonstration: stale state and audit log removed, a new
    simulated cluster that is not saved, an audit log without signatures.
    ``record_retention`` remembers the blueprints' audit retention in the
    state: for the commands that act by these blueprints (run, execute),
    never for one whose blueprints only inform it.
    """

    def __init__(
        self,
        blueprints: Path | None = None,
        *,
        policies: Path | None = None,
        opa: OpaSettings | None = None,
        build_dir: Path | None = None,
        state_dir: Path | None = None,
        create: bool = False,
        fresh: bool = False,
        audit_key: Path | None = None,
        record_retention: bool = False,
        cluster: ClusterKind = "sim",
        prometheus_url: str | None = None,
        kubeconfig: Path | None = None,
        seed: int = 1,
        passphrase: Passphrase | None = None,
        warn: Warn | None = None,
    ) -> None:
        self.blueprint_dir = blueprints
        self.policies = policies
        self.opa = opa or OpaSettings()
        self.build_dir = build_dir
        self.state_dir = state_dir
        self.create = create
        self.fresh = fresh
        self.audit_key = audit_key
        self.record_retention = record_retention
        self.cluster_kind = cluster
        self.prometheus_url = prometheus_url
        self.kubeconfig = kubeconfig
        self.seed = seed
        self._passphrase = passphrase
        self._warn: Warn = warn or log.warning
        # the workspace whose blueprints, bundle and OPA this one uses (itself, or see fresh_at)
        self._source: Workspace = self
        self._stack = ExitStack()
        self._blueprint_set: BlueprintSet | None = None
        self._compiled: CompileResult | None = None
        self._session: PolicySession | None = None
        self._paths: StatePaths | None = None
        self._state: StateStore | None = None
        self._audit: AuditLog | None = None
        self._cluster: Cluster | None = None
        self._simulated: SimulatedCluster | None = None
        self._saving = False

    def fresh_at(self, state_dir: Path, *, seed: int = 1) -> Workspace:
        """A fresh state directory over these same blueprints, bundle and OPA.

        For several demonstrations in one command: each gets its own state,
        audit log and simulated cluster (or the same real cluster); the blueprints
        are not parsed or compiled again, and OPA stays this workspace's to stop.
        """
        other = Workspace(
            self.blueprint_dir,
            policies=self.policies,
            opa=self.opa,
            state_dir=state_dir,
            fresh=True,
            seed=seed,
            warn=self._warn,
            cluster=self.cluster_kind,
            kubeconfig=self.kubeconfig,
            prometheus_url=self.prometheus_url,
        )
        other._source = self._source
        return other

    def on_state(
        self,
        state_dir: Path,
        *,
        create: bool = False,
        audit_key: Path | None = None,
        record_retention: bool = False,
    ) -> Workspace:
        """A workspace on the runner's ``state_dir`` over these same blueprints, bundle and OPA.

        For a long-lived server (``opsgate mcp``) that opens the state, audit log and
        cluster for each call, as ``opsgate execute`` does once, and closes them after it:
        the runner's own process may change them between calls. OPA stays this
        workspace's to stop.
        """
        other = Workspace(
            self.blueprint_dir,
            policies=self.policies,
            opa=self.opa,
            state_dir=state_dir,
            create=create,
            audit_key=audit_key,
            record_retention=record_retention,
            warn=self._warn,
            passphrase=self._passphrase,
            cluster=self.cluster_kind,
            kubeconfig=self.kubeconfig,
            prometheus_url=self.prometheus_url,
        )
        other._source = self._source
        return other

    # --- parse → compile → serve ------------------------------------------------------

    @property
    def blueprint_set(self) -> BlueprintSet:
        """Every blueprint and problem found, parsed once (problems are not raised here)."""
        source = self._source
        if source._blueprint_set is None:
            if source.blueprint_dir is None:
                raise UsageError("this command was given no blueprint directory")
            source._blueprint_set = load_blueprints([source.blueprint_dir])
        return source._blueprint_set

    @property
    def blueprints(self) -> dict[str, dict[str, Any]]:
        """Each valid blueprint's effective content by name; InvalidBlueprints on any problem."""
        loaded = self.blueprint_set
        if loaded.errors:
            raise InvalidBlueprints(loaded)
        return {b.name: b.effective for b in loaded.blueprints}

    @property
    def compiled(self) -> CompileResult:
        """The data document and bundle, compiled once from the parsed blueprints."""
        source = self._source
        if source._compiled is None:
            loaded = self.blueprint_set
            out = source.build_dir
            if out is None:
                out = Path(
                    source._stack.enter_context(
                        tempfile.TemporaryDirectory(prefix="opsgate-build-")
                    )
                )
            assert source.blueprint_dir is not None  # blueprint_set said so
            source._compiled = compile_blueprints(
                source.blueprint_dir, out, source.policies, loaded=loaded
            )
        return source._compiled

    @property
    def session(self) -> PolicySession:
        """The policy session on the compiled bundle: OPA started (or reached) and checked."""
        source = self._source
        if source._session is None:
            compiled = self.compiled
            assert source.blueprint_dir is not None  # compiled said so
            source._session = source._stack.enter_context(
                PolicySession(
                    source.blueprint_dir,
                    policies=source.policies,
                    remote=source.opa.remote,
                    timeout=source.opa.timeout,
                    compiled=compiled,
                    image=source.opa.image,
                )
            )
        return source._session

    # --- the state directory ----------------------------------------------------------

    @property
    def paths(self) -> StatePaths:
        """The files of the state directory, checked private (or cleared, when fresh)."""
        if self._paths is None:
            if self.state_dir is None:
                raise UsageError("this command was given no state directory")
            if self.fresh:
                self.state_dir.mkdir(parents=True, exist_ok=True)
                for stale in _STALE:
                    (self.state_dir / stale).unlink(missing_ok=True)
                self._paths = _files(self.state_dir)
            else:
                self._paths = state_paths(self.state_dir, create=self.create)
        return self._paths

    @property
    def state(self) -> StateStore:
        """The state database (cooldowns, breakers, approvals, journal)."""
        if self._state is None:
            self._state = StateStore(self.paths.state)
            self._stack.callback(self._state.close)
        return self._state

    @property
    def audit(self) -> AuditLog:
        """The audit log to append to: the runner's, signed and checked (unsigned if fresh)."""
        if self._audit is None:
            if self.fresh:
                # unsigned, and counted in a state thrown away with it (not synced to disk):
                # the ledger is there to count repeats
                self._audit = AuditLog(
                    self.paths.audit, ledger=self.state.audit_ledger(durable=False)
                )
            else:
                self._audit = self._signed_audit()
            self._stack.callback(self._close_audit, self._audit)
        return self._audit

    def _signed_audit(self) -> AuditLog:
        """The runner's log, signed with its key and counted in its state, checked first."""
        assert self.state_dir is not None  # paths said so
        state = self.state
        asked = self._passphrase
        key = runner_key(
            self.audit_key,
            self.state_dir / KEY_FILE,
            known=state.audit_counts().public_key,
            passphrase=asked(self.audit_key) if asked and self.audit_key is not None else None,
        )
        ledger = state.audit_ledger()
        audit = AuditLog(self.paths.audit, signer=key, ledger=ledger)
        try:
            audit.check()
        except BaseException:
            ledger.close()
            raise
        if self.record_retention:
            # opsgate audit prune wants --confirm below the retention the runner acts by
            state.record_audit_retention(retention_days(self.blueprints.values()))
        return audit

    def _close_audit(self, audit: AuditLog) -> None:
        """Sign the closing checkpoint; a failure is said, not raised over others."""
        try:
            audit.close()
        except OpsgateError as e:
            self._warn(f"no closing checkpoint in the audit log: {e}")

    @property
    def cluster(self) -> Cluster:
        """The cluster: simulated (kept in the state directory), or Kubernetes."""
        if self._cluster is None:
            if self.cluster_kind == "kube":
                from engine.cluster.kubernetes import KubernetesCluster  # for real clusters only

                self._cluster = KubernetesCluster(
                    kubeconfig=self.kubeconfig, prometheus_url=self.prometheus_url
                )
            else:
                self._cluster = self.simulated
        return self._cluster

    @property
    def simulated(self) -> SimulatedCluster:
        """The simulated cluster: the state directory's, or new from the blueprints."""
        if self.cluster_kind != "sim":
            raise ClusterError(f"no simulated cluster: this command runs on {self.cluster_kind}")
        if self._simulated is None:
            path = self.paths.cluster
            if path.exists() and not self.fresh:
                self._simulated = SimulatedCluster.load(path)
            else:
                self._simulated = SimulatedCluster.from_blueprints(
                    list(self.blueprints.values()), seed=self.seed
                )
        return self._simulated

    def _save_cluster_on_close(self) -> None:
        """Save the runner's simulated cluster on close, once a runner or executor may change it."""
        if self._simulated is not None and not self.fresh and not self._saving:
            self._saving = True
            self._stack.callback(self._simulated.save, self.paths.cluster)

    # --- what runs on it --------------------------------------------------------------

    def runner(
        self,
        *,
        dry_run: bool = False,
        prompt: Prompt | None = None,
        inbox: Inbox | None = None,
        notify: bool = False,
        schedule_verification: bool | None = None,
    ) -> Runner:
        """The runner over this workspace; its notifications are waited for on close.

        ``schedule_verification`` as for ``Runner`` (default: on a cluster where real
        time passes)."""
        # opened in the order a failure is best reported in: cluster, state, audit, then OPA
        cluster, state = self.cluster, self.state
        self._save_cluster_on_close()
        audit = self.audit
        runner = Runner(
            blueprints=self.blueprints,
            session=self.session,
            cluster=cluster,
            state=state,
            audit=audit,
            dry_run=dry_run,
            prompt=prompt,
            inbox=inbox,
            notify=notify,
            schedule_verification=schedule_verification,
        )
        # bounded; what could not be sent is recorded, not dropped
        self._stack.callback(runner.close)
        return runner

    def executor(
        self, *, dry_run: bool = False, schedule_verification: bool | None = None
    ) -> Executor:
        """The execution engine over this workspace, re-checking with its policy session.

        ``schedule_verification``: journal a change as verifying for the runner's next
        tick instead of waiting here (default: on a cluster where real time passes)."""
        cluster, state = self.cluster, self.state
        self._save_cluster_on_close()
        return Executor(
            cluster,
            state,
            self.audit,
            self.session.enforce,
            breaker=self.session.breaker,
            dry_run=dry_run,
            schedule_verification=(
                cluster.waits_in_real_time
                if schedule_verification is None
                else schedule_verification
            ),
        )

    # --- closing ----------------------------------------------------------------------

    def close(self) -> None:
        """Close what was opened, in reverse order (safe to call twice)."""
        self._stack.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
