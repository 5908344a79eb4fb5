"""The pinned control plane's tool module (tools/kube) and its generator."""

from __future__ import annotations

import re
import sys

import pytest

from tests.conftest import REPO

sys.path.append(str(REPO / "scripts"))  # the repo scripts are not a package
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
