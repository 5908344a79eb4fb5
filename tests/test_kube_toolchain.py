"""The pinned control plane's tool modules (tools/kube, kwok, metrics-server), the files
copied from them, and the tool module generator."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

sys.path.append(str(REPO / "scripts"))  # the repo scripts are not a package
import kube_local
import kube_tool_module

KUBERNETES_GO_MOD = """\
module k8s.io/kubernetes

go 1.25.0

godebug default=go1.25

require (
\tgo.etcd.io/etcd/client/v3 v3.6.5
\tk8s.io/api v0.0.0
)

require (
\tgo.etcd.io/etcd/server/v3 v3.6.5 // indirect
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/kms => ./staging/src/k8s.io/kms
)
"""


def test_the_generated_go_mod_replaces_each_staging_module_by_its_release() -> None:
    text = kube_tool_module.tool_go_mod("v1.35.4", KUBERNETES_GO_MOD)
    replaces = re.findall(r"^\t(\S+) => (\S+) (\S+)$", text, re.M)
    assert replaces == [
        ("k8s.io/api", "k8s.io/api", "v0.35.4"),
        ("k8s.io/client-go", "k8s.io/client-go", "v0.35.4"),
        ("k8s.io/kms", "k8s.io/kms", "v0.35.4"),
    ]
    assert "\tk8s.io/kubernetes v1.35.4\n" in text
    assert "\tgo.etcd.io/etcd/server/v3 v3.6.5\n" in text  # the etcd Kubernetes pins
    assert "\ngo 1.25.0\n" in text and "\ngodebug default=go1.25\n" in text
    for command in kube_tool_module.COMMANDS:
        assert f"\tk8s.io/kubernetes/cmd/{command}\n" in text


@pytest.mark.parametrize("version", ["1.35.4", "v1.35", "v2.0.0", "latest"])
def test_a_version_that_is_not_a_release_is_refused(version: str) -> None:
    with pytest.raises(SystemExit, match="not a Kubernetes release version"):
        kube_tool_module.tool_go_mod(version, KUBERNETES_GO_MOD)


def test_the_committed_tool_module_is_consistent() -> None:
    text = (REPO / "tools" / "kube" / "go.mod").read_text()
    [kubernetes] = re.findall(r"^\tk8s\.io/kubernetes (v1\.\d+\.\d+)", text, re.M)
    staging = "v0." + kubernetes.removeprefix("v1.")
    replaces = re.findall(r"^\t(k8s\.io/\S+) => (k8s\.io/\S+) (\S+)$", text, re.M)
    assert len(replaces) == 31
    assert all(old == new and version == staging for old, new, version in replaces)
    assert re.search(r"^require go\.etcd\.io/etcd/server/v3 v3\.6\.5$", text, re.M)
    assert (REPO / "tools" / "kube" / "etcd" / "main.go").read_text().count("etcdmain.Main") == 1
    kwok = (REPO / "tools" / "kwok" / "go.mod").read_text()
    assert re.search(r"^tool sigs\.k8s\.io/kwok/cmd/kwok$", kwok, re.M)
    assert re.search(r"^\tsigs\.k8s\.io/kwok v0\.8\.0 ", kwok, re.M)
    metrics_server = (REPO / "tools" / "metrics-server" / "go.mod").read_text()
    assert re.search(
        r"^tool sigs\.k8s\.io/metrics-server/cmd/metrics-server$", metrics_server, re.M
    )
    assert re.search(r"^\tsigs\.k8s\.io/metrics-server v0\.8\.0 ", metrics_server, re.M)


def _module_dir(module: str) -> Path:
    """Where the Go module cache holds ``module`` (skip when no go or no copy of it)."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("no go on PATH: the module cache can't be found")
    cache = subprocess.run([go, "env", "GOMODCACHE"], capture_output=True, text=True, check=True)
    where = Path(cache.stdout.strip()) / module
    if not where.is_dir():
        pytest.skip(f"{module} is not in the Go module cache (make kube-tools fetches it)")
    return where


def test_the_copied_kwok_metrics_are_kwoks_own_but_for_the_fallback() -> None:
    kwok = _module_dir("sigs.k8s.io/kwok@v0.8.0") / "kustomize" / "metrics"
    ours = REPO / "tools" / "kwok" / "metrics"
    resource = "metrics-resource.yaml"
    assert (ours / resource).read_text() == (kwok / "resource" / resource).read_text()
    usage = "usage-from-annotation.yaml"
    upstream = (kwok / "usage" / usage).read_text()
    changed = upstream.replace('Quantity("1m")', 'Quantity("0")').replace(
        'Quantity("1Mi")', 'Quantity("0")'
    )
    assert changed != upstream
    text = (ours / usage).read_text()
    assert "\n".join(line for line in text.splitlines() if not line.startswith("#")) + "\n" == (
        changed
    )


def test_the_copied_metrics_server_manifests_are_unchanged() -> None:
    base = _module_dir("sigs.k8s.io/metrics-server@v0.8.0") / "manifests" / "base"
    for name in ("rbac.yaml", "service.yaml", "apiservice.yaml"):
        ours = REPO / "tools" / "metrics-server" / "manifests" / name
        assert ours.read_text() == (base / name).read_text(), name


def test_metrics_server_is_registered_over_verified_tls_with_upstream_rbac() -> None:
    documents = kube_local.metrics_server_documents(b"CA PEM", 4443)
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in documents}
    service = by_kind[("Service", "metrics-server")]
    assert service["spec"] == {"type": "ExternalName", "externalName": "127.0.0.1"}
    api_service = by_kind[("APIService", "v1beta1.metrics.k8s.io")]["spec"]
    assert "insecureSkipTLSVerify" not in api_service
    assert api_service["caBundle"] == base64.b64encode(b"CA PEM").decode()
    assert api_service["service"] == {
        "name": "metrics-server",
        "namespace": "kube-system",
        "port": 4443,
    }
    # least privilege: its own ServiceAccount, bound to what upstream grants, no more
    subjects = [s for d in documents for s in d.get("subjects", [])]
    assert subjects and all(
        (s["kind"], s["name"], s["namespace"])
        == ("ServiceAccount", "metrics-server", "kube-system")
        for s in subjects
    )
    roles = {d["roleRef"]["name"] for d in documents if "roleRef" in d}
    assert roles == {
        "system:metrics-server",
        "system:auth-delegator",
        "extension-apiserver-authentication-reader",
    }
    rules = by_kind[("ClusterRole", "system:metrics-server")]["rules"]
    assert {(r, v) for rule in rules for r in rule["resources"] for v in rule["verbs"]} == {
        ("nodes/metrics", "get"),
        ("pods", "get"),
        ("pods", "list"),
        ("pods", "watch"),
        ("nodes", "get"),
        ("nodes", "list"),
        ("nodes", "watch"),
    }
