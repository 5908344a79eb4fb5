"""A local Kubernetes control plane on loopback: etcd, kube-apiserver, controller-manager,
scheduler, kwok (fake nodes) and metrics-server, for the real-cluster tests and for
trying opsgate.

    python scripts/kube_local.py up|down|status [--dir .kube]

The binaries are the pinned builds in .tools/bin (`make kube-tools`). `up`
generates a CA, serving and client certificates and a service-account key
pair (``cryptography``), starts the five processes with their state, logs and
PIDs under the directory (``.kube`` by default, gitignored), creates three
kwok nodes, ``docs/rbac.yaml`` exactly as shipped (in ``shop``; its Role and
RoleBinding repeated in each other namespace a blueprint targets, as its header
says), the Deployment each of the repo's blueprints governs (at its
min_replicas, with its requests, limits and strategy) and a ConfigMap
``<deployment>-config`` beside it, and writes two
kubeconfigs: ``admin.kubeconfig`` (system:masters) and ``runner.kubeconfig``
(a token of the ``opsgate-runner`` ServiceAccount, so the runner has what the
manifest grants and nothing more). It returns once those Deployments' pods are
Running and Ready, which needs every component, and the metrics API
(``v1beta1.metrics.k8s.io``) is Available.

metrics.k8s.io is served as on a real cluster: metrics-server, registered with
the API server's aggregation layer, scrapes each node's ``/metrics/resource``
from its "kubelet", which is kwok (one kwok on 127.0.0.1 serves every node, each
at the path its node annotation names). kwok gives a pod the CPU and memory of
its annotations ``kwok.x-k8s.io/usage-cpu`` / ``usage-memory``; a pod without
them has no PodMetrics (unknown usage). `down` stops the processes by
the PIDs `up` recorded (a PID whose command line is not ours is left alone) and
removes the keys, kubeconfigs and etcd data; the logs stay.

The pytest fixture (tests/kube/conftest.py) uses :class:`ControlPlane` with a
directory of its own and ``die_with_parent``: the processes also die if
pytest itself is killed.

kube-apiserver writes an audit log (``audit.log``, JSON lines) of every
request the runner's ServiceAccount makes, with the authorizer's decision:
that is how the tests show each call the runner makes is allowed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import datetime
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = Path(__file__).resolve().parent.parent
BIN_DIR = REPO / ".tools" / "bin"
STAGES = REPO / "tools" / "kwok" / "stages"
KWOK_METRICS = REPO / "tools" / "kwok" / "metrics"
METRICS_SERVER_MANIFESTS = REPO / "tools" / "metrics-server" / "manifests"
RBAC_MANIFEST = REPO / "docs" / "rbac.yaml"
BLUEPRINTS = REPO / "blueprints"

NAMESPACE = "shop"
RUNNER = "opsgate-runner"
RUNNER_USER = f"system:serviceaccount:{NAMESPACE}:{RUNNER}"
NODES = ("kwok-node-0", "kwok-node-1", "kwok-node-2")
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
SERVICE_RANGE = "10.0.0.0/24"
POD_RANGE = "10.244.0.1/16"
TOKEN_SECONDS = 24 * 3600
READY_TIMEOUT = 60.0
# the order they start in; they stop in the reverse order
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "metrics-server",
)
# metrics.k8s.io: metrics-server scrapes kwok as if kwok were each node's kubelet
METRICS_NAMESPACE = "kube-system"
METRICS_SERVER = "metrics-server"
METRICS_APISERVICE = "v1beta1.metrics.k8s.io"
# the smallest metrics-server accepts. CPU is a rate between two scrapes, and kwok's CPU
# counter for a pod starts at 0 on the first scrape that sees it (metrics-server drops a
# zero): a new pod's first PodMetrics come 20-30 s after its usage is set; a change of
# usage shows after one scrape
METRIC_RESOLUTION_SECONDS = 10
# metrics-server reads a node's scrape path from this annotation (its default is the
# kubelet's /metrics/resource): kwok serves every node's metrics on one address, each
# at a path of its own, so all three nodes are scraped through one kwok
RESOURCE_METRICS_PATH = "metrics.k8s.io/resource-metrics-path"

PR_SET_PDEATHSIG = 1


class KubeLocalError(Exception):
    """The local control plane can't be started, reached or stopped."""


def missing_binaries(bin_dir: Path = BIN_DIR) -> list[str]:
    """The components not built in ``bin_dir`` (empty when all are)."""
    return [c for c in COMPONENTS if not os.access(bin_dir / c, os.X_OK)]


# --- certificates ----------------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common: str, org: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if org:
        parts.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(parts)


@dataclass
class _Authority:
    """A CA that signs the control plane's serving and client certificates."""

    common_name: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=_key)
    cert: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        name = _name(self.common_name)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self,
        common: str,
        org: str | None = None,
        *,
        server_names: tuple[str, ...] = (),
        server_ips: tuple[str, ...] = (),
    ) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM): a server's when names are given, else a client's."""
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        server = bool(server_names or server_ips)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common, org))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(n) for n in server_names]
                    + [x509.IPAddress(IPv4Address(i)) for i in server_ips]
                ),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _write(path: Path, data: bytes | str) -> Path:
    """Write a private file (0600): keys, tokens and kubeconfigs alike."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return path


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(server: str, ca: bytes, user: dict[str, str], name: str) -> str:
    """A kubeconfig with one cluster, one user and one context."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "opsgate-local",
                    "cluster": {"server": server, "certificate-authority-data": _b64(ca)},
                }
            ],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": {"cluster": "opsgate-local", "user": name}}],
            "current-context": name,
        },
        sort_keys=False,
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    # SIGKILL: the parent is gone without stopping us, nothing waits for a graceful exit
    # (an apiserver told to stop gracefully waits for an etcd that got the same signal)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata", "users": [RUNNER_USER]}, {"level": "None"}],
}


# --- the control plane -----------------------------------------------------------------


@dataclass
class ControlPlane:
    """One local control plane, kept in ``root`` (certificates, etcd data, logs, PIDs)."""

    root: Path
    bin_dir: Path = BIN_DIR
    die_with_parent: bool = False
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def runner_kubeconfig(self) -> Path:
        return self.root / "runner.kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.root / "audit.log"

    @property
    def _state_file(self) -> Path:
        return self.root / "run" / "plane.json"

    def _log(self, component: str) -> Path:
        return self.root / "logs" / f"{component}.log"

    # --- start ------------------------------------------------------------------------

    def up(self) -> float:
        """Start every component, bootstrap the cluster and wait until it is ready.

        Returns the seconds it took. Anything left by an earlier run in the
        directory is stopped first; on any failure everything started is stopped.
        """
        missing = missing_binaries(self.bin_dir)
        if missing:
            raise KubeLocalError(
                f"not built: {', '.join(missing)} in {self.bin_dir} (run `make kube-tools`)"
            )
        self.down()
        started = time.monotonic()
        try:
            self._start()
        except KubeLocalError:
            self.down()
            raise
        except Exception as e:
            self.down()
            # an API answer (status and reason) or a transport error: one line, not the body
            reason = getattr(e, "reason", None) or str(e).splitlines()[0][:200]
            status = getattr(e, "status", None)
            raise KubeLocalError(
                f"bootstrap failed: {type(e).__name__} {status or ''} {reason}".replace("  ", " ")
            ) from e
        except BaseException:
            self.down()
            raise
        return time.monotonic() - started

    def _start(self) -> None:
        for stale in ("pki", "etcd", "run", "logs"):
            shutil.rmtree(self.root / stale, ignore_errors=True)
        for name in ("admin.kubeconfig", "runner.kubeconfig", "audit.log"):
            (self.root / name).unlink(missing_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        pki = self.root / "pki"
        ports = {"etcd": _free_port(), "etcd-peer": _free_port(), "apiserver": _free_port()}
        ports["kwok"] = _free_port()
        ports["metrics-server"] = _free_port()
        server = f"https://127.0.0.1:{ports['apiserver']}"
        files = self._certificates(pki, server)
        self._write_state(ports)

        etcd_url = f"http://127.0.0.1:{ports['etcd']}"
        peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
        self._spawn(
            "etcd",
            "--name=opsgate",
            f"--data-dir={self.root / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=opsgate={peer_url}",
            "--listen-metrics-urls=",
            "--log-level=warn",
            "--unsafe-no-fsync",  # a throwaway test store: durability buys nothing here
        )
        _write(self.root / "audit-policy.yaml", yaml.safe_dump(AUDIT_POLICY))
        self._spawn(
            "kube-apiserver",
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}",
            f"--tls-cert-file={files['apiserver.crt']}",
            f"--tls-private-key-file={files['apiserver.key']}",
            f"--client-ca-file={files['ca.crt']}",
            "--anonymous-auth=false",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={files['sa.pub']}",
            f"--service-account-signing-key-file={files['sa.key']}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            # aggregated APIs (metrics.k8s.io) reach their servers with this identity
            f"--requestheader-client-ca-file={files['ca.crt']}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={files['front-proxy-client.crt']}",
            f"--proxy-client-key-file={files['front-proxy-client.key']}",
            # metrics-server's Service is an ExternalName (127.0.0.1): there is no kube-proxy
            # to reach a ClusterIP, and Endpoints may not hold loopback addresses. Only the
            # service resolver (routing off) follows an ExternalName; the endpoint resolver
            # refuses any Service but ClusterIP, NodePort and LoadBalancer
            "--enable-aggregator-routing=false",
            f"--audit-policy-file={self.root / 'audit-policy.yaml'}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",  # an event is on disk when the response is sent
            "--profiling=false",
        )
        self._wait("the API server to be ready", lambda: self._readyz(server, files), 45)
        self._spawn(
            "kube-controller-manager",
            f"--kubeconfig={files['kube-controller-manager.kubeconfig']}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={files['sa.key']}",
            f"--root-ca-file={files['ca.crt']}",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--concurrent-deployment-syncs=10",
            "--concurrent-replicaset-syncs=10",
        )
        self._spawn(
            "kube-scheduler",
            f"--kubeconfig={files['kube-scheduler.kubeconfig']}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
        )
        # the Stages, and the Metric and ClusterResourceUsage that serve each node's
        # /metrics/resource with the usage its pods' annotations give
        config = self.root / "kwok-config.yaml"
        _write(
            config,
            "\n---\n".join(
                p.read_text()
                for p in sorted(STAGES.glob("*.yaml")) + sorted(KWOK_METRICS.glob("*.yaml"))
            ),
        )
        self._spawn(
            "kwok",
            f"--kubeconfig={files['kwok.kubeconfig']}",
            f"--config={config}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
            f"--server-address=127.0.0.1:{ports['kwok']}",
            # TLS, as a kubelet serves: metrics-server verifies it against the CA
            f"--tls-cert-file={files['kwok-serving.crt']}",
            f"--tls-private-key-file={files['kwok-serving.key']}",
            "--node-ip=127.0.0.1",
            # each node's status.daemonEndpoints: where metrics-server finds its "kubelet"
            f"--node-port={ports['kwok']}",
            f"--cidr={POD_RANGE}",
            "--node-lease-duration-seconds=40",
        )
        self._bootstrap(server, files, ports)

    def _certificates(self, pki: Path, server: str) -> dict[str, Path]:
        """Write the CA, certificates, keys and kubeconfigs; return their paths by name."""
        ca = _Authority("opsgate-local-ca")
        files: dict[str, Path] = {"ca.crt": _write(pki / "ca.crt", ca.pem)}
        cert, key = ca.issue(
            "kube-apiserver",
            server_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            server_ips=("127.0.0.1", "10.0.0.1"),
        )
        files["apiserver.crt"] = _write(pki / "apiserver.crt", cert)
        files["apiserver.key"] = _write(pki / "apiserver.key", key)
        cert, key = ca.issue("front-proxy-client")
        files["front-proxy-client.crt"] = _write(pki / "front-proxy-client.crt", cert)
        files["front-proxy-client.key"] = _write(pki / "front-proxy-client.key", key)
        # kwok serves the nodes' metrics as their kubelets would, at 127.0.0.1
        cert, key = ca.issue("kwok", server_ips=("127.0.0.1",))
        files["kwok-serving.crt"] = _write(pki / "kwok-serving.crt", cert)
        files["kwok-serving.key"] = _write(pki / "kwok-serving.key", key)
        # the aggregator checks metrics-server's certificate against <service>.<namespace>.svc
        cert, key = ca.issue(
            METRICS_SERVER, server_names=(f"{METRICS_SERVER}.{METRICS_NAMESPACE}.svc",)
        )
        files["metrics-server.crt"] = _write(pki / "metrics-server.crt", cert)
        files["metrics-server.key"] = _write(pki / "metrics-server.key", key)
        sa = _key()
        files["sa.key"] = _write(pki / "sa.key", _pem_key(sa))
        files["sa.pub"] = _write(
            pki / "sa.pub",
            sa.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )
        # kwok stands in for every kubelet (node and pod status, leases): masters, as in tests
        for user, common, org in (
            ("admin", "opsgate-admin", "system:masters"),
            ("kube-controller-manager", "system:kube-controller-manager", None),
            ("kube-scheduler", "system:kube-scheduler", None),
            ("kwok", "kwok-controller", "system:masters"),
        ):
            cert, key = ca.issue(common, org)
            files[f"{user}.crt"] = _write(pki / f"{user}.crt", cert)
            files[f"{user}.key"] = _write(pki / f"{user}.key", key)
            where = self.admin_kubeconfig if user == "admin" else pki / f"{user}.kubeconfig"
            files[f"{user}.kubeconfig"] = _write(
                where,
                kubeconfig(
                    server,
                    ca.pem,
                    {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)},
                    user,
                ),
            )
        return files

    def _spawn(self, component: str, *args: str) -> None:
        log = self._log(component)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            process = subprocess.Popen(
                [str(self.bin_dir / component), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                # its own session: a Ctrl-C meant for the caller reaches it only through down()
                start_new_session=True,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )
        self._processes[component] = process
        state = self._read_state()
        state["pids"][component] = process.pid
        self._write_state(state["ports"], state["pids"])

    def _write_state(self, ports: dict[str, int], pids: dict[str, int] | None = None) -> None:
        _write(
            self._state_file,
            json.dumps({"ports": ports, "pids": pids or {}, "root": str(self.root)}, indent=1),
        )

    def _read_state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return {"ports": {}, "pids": {}}
        return state

    def _readyz(self, server: str, files: dict[str, Path]) -> bool:
        context = ssl.create_default_context(cafile=str(files["ca.crt"]))
        context.load_cert_chain(str(files["admin.crt"]), str(files["admin.key"]))
        try:
            with urllib.request.urlopen(f"{server}/readyz", context=context, timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def _wait(self, what: str, ready: Any, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for component, process in self._processes.items():
                if process.poll() is not None:
                    raise KubeLocalError(
                        f"{component} exited ({process.returncode}) while waiting for {what}:"
                        f" {self._tail(component)}"
                    )
            if ready():
                return
            if time.monotonic() > deadline:
                raise KubeLocalError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.1)

    def _tail(self, component: str) -> str:
        try:
            lines = self._log(component).read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1][:400] if lines else "(empty log)"

    # --- bootstrap ----------------------------------------------------------------------

    def admin_client(self) -> Any:
        """An ApiClient with the admin identity (system:masters)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.admin_kubeconfig))

    def _bootstrap(self, server: str, files: dict[str, Path], ports: dict[str, int]) -> None:
        from kubernetes import client, utils

        with self.admin_client() as api:
            core = client.CoreV1Api(api)
            for node in NODES:
                core.create_node(_node(node))
            workloads = sample_deployments()
            namespaces = sorted({NAMESPACE} | {d["metadata"]["namespace"] for d in workloads})
            for namespace in namespaces:
                core.create_namespace({"metadata": {"name": namespace}})
            # docs/rbac.yaml exactly as shipped: what it grants is all the runner gets
            utils.create_from_yaml(api, yaml_objects=rbac_documents(namespaces))
            apps = client.AppsV1Api(api)
            for deployment in workloads:
                name, namespace = (
                    deployment["metadata"]["name"],
                    deployment["metadata"]["namespace"],
                )
                apps.create_namespaced_deployment(namespace, deployment)
                core.create_namespaced_config_map(
                    namespace,
                    {"metadata": {"name": f"{name}-config"}, "data": {"LOG_LEVEL": "INFO"}},
                )
            token = self._runner_token(core)
            _write(
                self.runner_kubeconfig,
                kubeconfig(server, files["ca.crt"].read_bytes(), {"token": token}, RUNNER),
            )
            self._start_metrics_server(api, server, files, ports)
            self._wait("kwok to make the nodes Ready", lambda: _nodes_ready(core))
            # kwok fills its pod cache for metrics on the first request: made now, the first
            # scrape already finds the pods (one scrape period sooner to the first metrics);
            # and the CA check is the one metrics-server makes
            self._wait(
                "kwok to serve the nodes' resource metrics over TLS",
                lambda: _serves_metrics(ports["kwok"], NODES[0], files["ca.crt"]),
            )
            self._wait(
                "the governed Deployments' pods to be Ready",
                lambda: all(_workloads_ready(apps, n) for n in namespaces),
            )
            # served, not yet filled: up does not wait for the first PodMetrics
            registration = client.ApiregistrationV1Api(api)
            self._wait(
                f"the metrics API ({METRICS_APISERVICE}) to be Available",
                lambda: _api_service_available(registration, METRICS_APISERVICE),
            )

    def _start_metrics_server(
        self, api: Any, server: str, files: dict[str, Path], ports: dict[str, int]
    ) -> None:
        """Register metrics-server with the aggregator and start it with an identity of its own.

        Its upstream RBAC binds its ServiceAccount (kube-system/metrics-server): reading
        nodes, nodes/metrics and pods, delegating authentication and authorization to the
        API server, reading the front-proxy CA. A token of that ServiceAccount is all it
        gets: no system:masters. TLS is verified both ways it is used: the aggregator checks
        metrics-server's certificate with the APIService's caBundle, metrics-server checks
        kwok's with the cluster CA.
        """
        from kubernetes import client, utils

        port = ports[METRICS_SERVER]
        utils.create_from_yaml(
            api, yaml_objects=metrics_server_documents(files["ca.crt"].read_bytes(), port)
        )
        token = client.CoreV1Api(api).create_namespaced_service_account_token(
            METRICS_SERVER,
            METRICS_NAMESPACE,
            {"spec": {"expirationSeconds": TOKEN_SECONDS, "audiences": []}},
        )
        identity = _write(
            self.root / "pki" / "metrics-server.kubeconfig",
            kubeconfig(
                server,
                files["ca.crt"].read_bytes(),
                {"token": str(token.status.token)},
                METRICS_SERVER,
            ),
        )
        self._spawn(
            METRICS_SERVER,
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={files['metrics-server.crt']}",
            f"--tls-private-key-file={files['metrics-server.key']}",
            f"--kubeconfig={identity}",
            f"--authentication-kubeconfig={identity}",
            f"--authorization-kubeconfig={identity}",
            # kwok's address and port, from the node status kwok itself wrote
            "--kubelet-use-node-status-port",
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-certificate-authority={files['ca.crt']}",
            f"--metric-resolution={METRIC_RESOLUTION_SECONDS}s",
            # it must stay under 90% of the resolution; kwok answers in milliseconds
            "--kubelet-request-timeout=5s",
            "--profiling=false",
        )

    def _runner_token(self, core: Any) -> str:
        body = {"spec": {"expirationSeconds": TOKEN_SECONDS, "audiences": []}}
        # the ServiceAccount admission needs it to exist: created just above, from the manifest
        answer = core.create_namespaced_service_account_token(RUNNER, NAMESPACE, body)
        return str(answer.status.token)

    # --- stop and status ------------------------------------------------------------------

    def down(self) -> list[str]:
        """Stop every component this directory recorded, by PID; return what was stopped."""
        state = self._read_state()
        pids: dict[str, int] = dict(state.get("pids") or {})
        stopped = []
        for component in reversed(COMPONENTS):
            process = self._processes.pop(component, None)
            pid = process.pid if process else pids.get(component)
            if pid is None or not self._ours(component, pid):
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not _gone(pid, process, 10.0):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _gone(pid, process, 5.0)
            stopped.append(component)
        for process in self._processes.values():  # started but not yet recorded
            process.kill()
            process.wait()
        self._processes.clear()
        if self._state_file.exists():
            self._write_state(state.get("ports") or {}, {})
        # keys, tokens and the store are no use without the processes; the logs stay
        for private in ("pki", "etcd"):
            shutil.rmtree(self.root / private, ignore_errors=True)
        for name in ("admin.kubeconfig", "runner.kubeconfig"):
            (self.root / name).unlink(missing_ok=True)
        return stopped

    def _ours(self, component: str, pid: int) -> bool:
        """Is ``pid`` still the process started for ``component`` (not a recycled PID)?"""
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            return False
        return argv0.decode(errors="replace") == str(self.bin_dir / component)

    def status(self) -> dict[str, Any]:
        """Each component's PID and whether it runs, the ports, the kubeconfigs."""
        state = self._read_state()
        pids = state.get("pids") or {}
        return {
            "components": {
                c: {"pid": pids.get(c), "running": bool(pids.get(c)) and self._ours(c, pids[c])}
                for c in COMPONENTS
            },
            "ports": state.get("ports") or {},
            "admin_kubeconfig": str(self.admin_kubeconfig),
            "runner_kubeconfig": str(self.runner_kubeconfig),
        }

    def running(self) -> bool:
        """Whether every component runs."""
        return all(c["running"] for c in self.status()["components"].values())


def _gone(pid: int, process: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None:
            if process.poll() is not None:
                return True
        else:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            # a child of an earlier `up` is not ours to reap: it is gone once it is a zombie too
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
                    return True
        time.sleep(0.05)
    return False


def _node(name: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "annotations": {
                KWOK_ANNOTATION: "fake",
                "node.alpha.kubernetes.io/ttl": "0",
                # kwok's Metric (tools/kwok/metrics) serves each node at a path of its own
                RESOURCE_METRICS_PATH: f"/metrics/nodes/{name}/metrics/resource",
            },
            "labels": {"type": "kwok", "kubernetes.io/hostname": name},
        },
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
        },
    }


def metrics_server_documents(ca: bytes, port: int) -> list[dict[str, Any]]:
    """metrics-server's upstream manifests (RBAC, Service, APIService; not its Deployment),
    changed only where this cluster differs: the Service is an ExternalName for the
    process on 127.0.0.1, and the APIService names its port and trusts the cluster CA
    instead of skipping TLS verification."""
    documents = [
        d
        for name in ("rbac.yaml", "service.yaml", "apiservice.yaml")
        for d in yaml.safe_load_all((METRICS_SERVER_MANIFESTS / name).read_text())
        if d
    ]
    for document in documents:
        if document["kind"] == "Service":
            document["spec"] = {"type": "ExternalName", "externalName": "127.0.0.1"}
        elif document["kind"] == "APIService":
            spec = document["spec"]
            del spec["insecureSkipTLSVerify"]
            spec["caBundle"] = _b64(ca)
            spec["service"]["port"] = port
    return documents


def _serves_metrics(port: int, node: str, ca: Path) -> bool:
    url = f"https://127.0.0.1:{port}/metrics/nodes/{node}/metrics/resource"
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _api_service_available(registration: Any, name: str) -> bool:
    conditions = registration.read_api_service(name).status.conditions or []
    return any(c.type == "Available" and c.status == "True" for c in conditions)


def _nodes_ready(core: Any) -> bool:
    nodes = core.list_node().items
    return len(nodes) == len(NODES) and all(
        any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
        for n in nodes
    )


def _workloads_ready(apps: Any, namespace: str) -> bool:
    return all(
        (d.status.ready_replicas or 0) == d.spec.replicas
        for d in apps.list_namespaced_deployment(namespace).items
    )


def deployment_manifest(name: str, namespace: str = NAMESPACE, **options: Any) -> dict[str, Any]:
    """A Deployment of one container with requests, limits and a readiness probe
    (engine.demo_scene's, which the demonstrations create on a real cluster)."""
    sys.path.insert(0, str(REPO))
    from engine.demo_scene import deployment_manifest as manifest

    return manifest(name, namespace, **options)


def sample_deployments(blueprints: Path = BLUEPRINTS) -> list[dict[str, Any]]:
    """The Deployments the repo's blueprints govern, as the blueprints describe them."""
    sys.path.insert(0, str(REPO))
    from engine.blueprint import load_blueprints
    from engine.demo_scene import blueprint_deployment

    return [blueprint_deployment(b.effective) for b in load_blueprints([blueprints]).blueprints]


def rbac_documents(namespaces: list[str]) -> list[dict[str, Any]]:
    """docs/rbac.yaml as shipped, then its Role and RoleBinding again for each other namespace
    (as its header says to), binding the same ServiceAccount."""
    shipped = [d for d in yaml.safe_load_all(RBAC_MANIFEST.read_text()) if d]
    repeated = [
        {**d, "metadata": {**d["metadata"], "namespace": namespace}}
        for namespace in namespaces
        if namespace != NAMESPACE
        for d in shipped
        if d["kind"] in ("Role", "RoleBinding")
    ]
    return shipped + repeated


@contextlib.contextmanager
def running(root: Path, **options: Any) -> Iterator[ControlPlane]:
    """A control plane for the length of a with-block, stopped on every way out."""
    plane = ControlPlane(root, **options)
    try:
        plane.up()
        yield plane
    finally:
        plane.down()


def main(argv: list[str]) -> int:
    """up, down or status; one line on failure."""
    parser = argparse.ArgumentParser(prog="kube_local.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--dir", type=Path, default=REPO / ".kube", help="state directory")
    args = parser.parse_args(argv)
    plane = ControlPlane(args.dir.resolve())
    try:
        if args.command == "up":
            seconds = plane.up()
            print(f"local control plane ready in {seconds:.1f}s")
            print(f"  admin:  KUBECONFIG={plane.admin_kubeconfig}")
            print(f"  runner: opsgate run --cluster kube --kubeconfig {plane.runner_kubeconfig}")
            print(f"  stop:   make kube-down (logs in {plane.root / 'logs'})")
        elif args.command == "down":
            stopped = plane.down()
            print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
        else:
            status = plane.status()
            for component, entry in status["components"].items():
                state = "running" if entry["running"] else "stopped"
                print(f"{component:24} {state:8} pid {entry['pid'] or '-'}")
            if plane.running():
                print(f"admin kubeconfig:  {status['admin_kubeconfig']}")
                print(f"runner kubeconfig: {status['runner_kubeconfig']}")
            return 0 if plane.running() else 3
    except KubeLocalError as e:
        print(f"kube_local: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kube_local: interrupted; everything started was stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
