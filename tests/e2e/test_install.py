"""Installing the operator on the real control plane: the Helm chart (both RBAC scopes) and deploy/.

There is no kubelet, so the operator's pod never runs. What a pod would do is done here by the operator
process itself, logged in with a token of the chart's own ServiceAccount: the core scenario passing under
it proves the chart's RBAC is enough; `kubectl auth can-i` proves it is not more than that.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.helmchart import (
    CHART,
    OPERATOR_NAMESPACE,
    ROOT,
    HelmError,
    helm,
    helm_env,
    installed_release,
    set_flags,
    template,
)
from support.localcluster import LocalCluster
from support.objects import (
    apply,
    apply_until_available,
    condition,
    delete_and_wait_for_garbage_collection,
    events,
    exists,
    fresh_namespace,
    must_get,
    s3_secret,
    zmd,
)
from support.operator_process import OperatorProcess
from support.waiting import wait_for

pytestmark = pytest.mark.e2e

TIMEOUT = 30.0
CRD_NAME = "zenmodeldeployments.zenml.io"
INGRESS = "http://ingress.example.com"
PERMISSION_PROBLEMS = ("Forbidden", "forbidden", "HTTP 403", "Not enough permissions")


# ----------------------------------------------------------------------------------------------- helpers


def server_dry_run(cluster: LocalCluster, manifests: str) -> None:
    cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=manifests)


def can_i(
    cluster: LocalCluster,
    kubeconfig: Path,
    verb: str,
    resource: str,
    namespace: str | None = None,
    subresource: str | None = None,
) -> bool:
    """`kubectl auth can-i` as the ServiceAccount (its real token); namespace None asks cluster-wide."""
    args = ["auth", "can-i", verb, resource]
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    if subresource:
        args.append(f"--subresource={subresource}")
    result = cluster.kubectl(*args, kubeconfig=kubeconfig, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i {' '.join(args)}: {result.stdout}{result.stderr}"
    return answer == "yes"


def event_reasons(cluster: LocalCluster, namespace: str, name: str) -> list[str]:
    return [event["reason"] for event in events(cluster, namespace, name)]


def release_objects(cluster: LocalCluster, release: str) -> list[str]:
    selector = f"app.kubernetes.io/instance={release}"
    names = []
    for kinds, scope in (
        ("serviceaccounts,services,deployments", ["-n", OPERATOR_NAMESPACE]),
        ("clusterroles,clusterrolebindings", []),
        ("roles,rolebindings", ["--all-namespaces"]),
    ):
        out = cluster.kubectl("get", kinds, "-l", selector, "-o", "name", *scope).stdout
        names += out.split()
    return sorted(names)


def operator_pods(cluster: LocalCluster, instance: str) -> list[dict[str, Any]]:
    out = cluster.kubectl(
        "get", "pods", "-n", OPERATOR_NAMESPACE, "-l", f"app.kubernetes.io/instance={instance}", "-o", "yaml"
    ).stdout
    return list(yaml.safe_load(out)["items"])


def kustomize_deploy(cluster: LocalCluster) -> list[dict[str, Any]]:
    out = cluster.kubectl("kustomize", str(ROOT / "deploy")).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def operator_namespace(cluster: LocalCluster) -> Iterator[str]:
    """zenmodel-system, enforcing the restricted Pod Security Standard (so a pod the chart's Deployment
    asks for is only created if it meets it); deleted, without waiting, after this module."""
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": OPERATOR_NAMESPACE,
            "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
        },
    }
    apply(cluster, namespace)
    yield OPERATOR_NAMESPACE
    cluster.kubectl("delete", "namespace", OPERATOR_NAMESPACE, "--wait=false", "--ignore-not-found")


@pytest.fixture
def models_namespace(cluster: LocalCluster) -> Iterator[str]:
    """A namespace the operators under test serve. Not e2e-*: the session operator must leave it alone."""
    with fresh_namespace(cluster, "install") as name:
        yield name


@pytest.fixture
def helm_home(tmp_path: Path) -> Path:
    return tmp_path / "helm"


# ----------------------------------------------------------------------------------------------- tests


def test_lint_and_server_side_dry_run_in_both_scopes(
    cluster: LocalCluster, operator_namespace: str, models_namespace: str, helm_home: Path
) -> None:
    for values in ({}, {"rbac.scope": "namespaced", "watchNamespaces": [models_namespace]}):
        lint = helm("lint", str(CHART), "--strict", *set_flags(values), env=helm_env(cluster, helm_home))
        assert "0 chart(s) failed" in lint.stdout
        server_dry_run(cluster, template(values))
    with_monitor = template({"metrics.serviceMonitor.enabled": True})
    assert "kind: ServiceMonitor" in with_monitor  # no ServiceMonitor CRD here: rendered, not applied


def test_helm_install_upgrade_and_uninstall(
    cluster: LocalCluster, operator_namespace: str, helm_home: Path
) -> None:
    """A real install, CRD template included: the CRD the cluster already has (from crds/) is adopted by
    annotating it as the release's, the way README.md ("Installing") tells users who installed it with kubectl."""
    release = "zmo-install"
    env = helm_env(cluster, helm_home)
    adopt = [f"meta.helm.sh/release-name={release}", f"meta.helm.sh/release-namespace={operator_namespace}"]
    cluster.kubectl("annotate", "--overwrite", "crd", CRD_NAME, *adopt)
    cluster.kubectl("label", "--overwrite", "crd", CRD_NAME, "app.kubernetes.io/managed-by=Helm")
    try:
        installed = helm("install", release, str(CHART), "--namespace", operator_namespace, env=env)
        assert (
            f"kubectl -n {operator_namespace} logs deployment/{release}-zenmodel-operator" in installed.stdout
        )
        crd = yaml.safe_load(cluster.kubectl("get", "crd", CRD_NAME, "-o", "yaml").stdout)
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert crd["metadata"]["labels"]["app.kubernetes.io/instance"] == release
        assert release_objects(cluster, release) == sorted(
            [
                f"serviceaccount/{release}-zenmodel-operator",
                f"service/{release}-zenmodel-operator-metrics",
                f"deployment.apps/{release}-zenmodel-operator",
                f"clusterrole.rbac.authorization.k8s.io/{release}-zenmodel-operator",
                f"clusterrolebinding.rbac.authorization.k8s.io/{release}-zenmodel-operator",
                f"role.rbac.authorization.k8s.io/{release}-zenmodel-operator-leader-election",
                f"rolebinding.rbac.authorization.k8s.io/{release}-zenmodel-operator-leader-election",
            ]
        )
        # The Deployment controller's pod passes the namespace's restricted Pod Security admission.
        wait_for(
            lambda: bool(operator_pods(cluster, release)),
            TIMEOUT,
            "no operator pod was created: did Pod Security admission reject it? "
            + cluster.kubectl("get", "events", "-n", operator_namespace).stdout,
        )

        helm(
            "upgrade",
            release,
            str(CHART),
            "--namespace",
            operator_namespace,
            "--reuse-values",
            "--set",
            "logLevel=DEBUG",
            env=env,
        )
        deployment = must_get(cluster, "deployment", operator_namespace, f"{release}-zenmodel-operator")
        env_vars = {
            e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env_vars["ZENMODEL_LOG_LEVEL"] == "DEBUG"

        helm("uninstall", release, "--namespace", operator_namespace, "--wait", env=env)
        assert release_objects(cluster, release) == []
        # helm.sh/resource-policy: keep -- and so every ZenModelDeployment stays.
        assert exists(cluster, "crd", CRD_NAME)
    finally:
        helm(
            "uninstall",
            release,
            "--namespace",
            operator_namespace,
            "--ignore-not-found",
            env=env,
            check=False,
        )
        cluster.kubectl("annotate", "crd", CRD_NAME, *(a.split("=")[0] + "-" for a in adopt), check=False)
        cluster.kubectl("label", "crd", CRD_NAME, "app.kubernetes.io/managed-by-", check=False)


def test_namespaced_install_needs_its_namespaces_to_exist(
    cluster: LocalCluster, operator_namespace: str, helm_home: Path
) -> None:
    with pytest.raises(HelmError, match="not found"):
        helm(
            "install",
            "zmo-missing",
            str(CHART),
            "--namespace",
            operator_namespace,
            *set_flags(
                {"crds.install": False, "rbac.scope": "namespaced", "watchNamespaces": ["no-such-ns"]}
            ),
            env=helm_env(cluster, helm_home),
        )
    helm(
        "uninstall",
        "zmo-missing",
        "--namespace",
        operator_namespace,
        "--ignore-not-found",
        env=helm_env(cluster, helm_home),
    )


def test_kubectl_apply_k_deploy(cluster: LocalCluster, operator_namespace: str) -> None:
    """deploy/ for real. Cleanup deletes what it created except the CRD (the session's other tests use it)
    and the namespace (this module's)."""
    objects = kustomize_deploy(cluster)
    created = [o for o in objects if o["kind"] not in ("CustomResourceDefinition", "Namespace")]
    try:
        cluster.kubectl("apply", "-k", str(ROOT / "deploy"))
        missing = [
            f"{o['kind']}/{o['metadata']['name']}"
            for o in objects
            if not exists(cluster, o["kind"], o["metadata"]["name"], o["metadata"].get("namespace"))
        ]
        assert not missing
        namespace = yaml.safe_load(
            cluster.kubectl("get", "namespace", OPERATOR_NAMESPACE, "-o", "yaml").stdout
        )
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        deployment = must_get(cluster, "deployment", OPERATOR_NAMESPACE, "zenmodel-operator")
        assert deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kustomize"
        wait_for(
            lambda: bool(operator_pods(cluster, "zenmodel-operator")),
            TIMEOUT,
            "no operator pod was created: did Pod Security admission reject it?",
        )
    finally:
        cluster.kubectl(
            "delete", "--ignore-not-found", "--wait=true", "-f", "-", input=yaml.safe_dump_all(created)
        )
    assert not [
        o
        for o in created
        if exists(cluster, o["kind"], o["metadata"]["name"], o["metadata"].get("namespace"))
    ]


SCOPES = {
    "namespaced": lambda ns: {"rbac.scope": "namespaced", "watchNamespaces": [ns]},
    # Cluster scope, serving one namespace here only so it cannot race the session's operator elsewhere.
    "cluster": lambda ns: {"rbac.scope": "cluster", "watchNamespaces": [ns]},
}


@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_operator_converges_under_the_charts_service_account(
    cluster: LocalCluster,
    operator_namespace: str,
    models_namespace: str,
    helm_home: Path,
    tmp_path: Path,
    scope: str,
) -> None:
    namespace = models_namespace
    release = f"zmo-{scope}"
    env = helm_env(cluster, helm_home)
    values = {"crds.install": False, **SCOPES[scope](namespace)}
    operator: OperatorProcess | None = None
    with installed_release(
        cluster, env, release, operator_namespace, values, tmp_path / "operator.kubeconfig"
    ) as kubeconfig:
        try:
            operator = OperatorProcess(
                {**cluster.env(), "KUBECONFIG": str(kubeconfig), "ZENMODEL_INGRESS_BASE_URL": INGRESS},
                tmp_path / "operator.log",
                "--namespaces",
                namespace,
            ).start()

            # Seldon Core's own controller rolls it out: Available is Seldon's doing.
            parent = apply_until_available(cluster, s3_secret(namespace), zmd("iris", namespace, replicas=2))
            for kind, name in (("seldondeployment", "iris"), ("secret", "iris-rclone")):
                (owner,) = must_get(cluster, kind, namespace, name)["metadata"]["ownerReferences"]
                assert owner["uid"] == parent["metadata"]["uid"] and owner["controller"] is True
                assert owner["blockOwnerDeletion"] is True
            assert condition(parent, "Ready")["status"] == "True"
            assert (
                parent["status"]["predictionURL"] == f"{INGRESS}/seldon/{namespace}/iris/api/v1.0/predictions"
            )
            wait_for(
                lambda: {"Created", "Available"} <= set(event_reasons(cluster, namespace, "iris")),
                TIMEOUT,
                "the operator's Created and Available events are missing",
            )

            delete_and_wait_for_garbage_collection(cluster, namespace, "iris")
        finally:
            if operator is not None:
                operator.stop()
    assert operator is not None
    problems = [line for line in operator.log().splitlines() if any(p in line for p in PERMISSION_PROBLEMS)]
    assert not problems, "the operator lacked permissions:\n" + "\n".join(problems)


def test_namespaced_rbac_is_no_broader_than_needed(
    cluster: LocalCluster, operator_namespace: str, models_namespace: str, helm_home: Path, tmp_path: Path
) -> None:
    release = "zmo-least"
    env = helm_env(cluster, helm_home)
    values = {"crds.install": False, "rbac.scope": "namespaced", "watchNamespaces": [models_namespace]}
    with (
        fresh_namespace(cluster, "install-other") as other,
        installed_release(
            cluster, env, release, operator_namespace, values, tmp_path / "sa.kubeconfig"
        ) as kubeconfig,
    ):
        can = partial(can_i, cluster, kubeconfig)
        lease = f"{release}-zenmodel-operator"

        watched = models_namespace
        granted = [
            *[(verb, "zenmodeldeployments.zenml.io", watched, None) for verb in ("get", "list", "watch")],
            ("patch", "zenmodeldeployments.zenml.io", watched, "status"),
            ("update", "zenmodeldeployments.zenml.io", watched, "finalizers"),
            *[
                (verb, "seldondeployments.machinelearning.seldon.io", watched, None)
                for verb in ("get", "list", "watch", "create", "patch")
            ],
            *[(verb, "secrets", watched, None) for verb in ("get", "list", "watch", "create", "patch")],
            ("create", "events", watched, None),
            # Seldon's model pods: watched (label-selected), and a failed container's output read.
            ("list", "pods", watched, None),
            ("watch", "pods", watched, None),
            ("get", "pods", watched, "log"),
            ("list", "customresourcedefinitions.apiextensions.k8s.io", None, None),
            ("watch", "customresourcedefinitions.apiextensions.k8s.io", None, None),
            ("list", "namespaces", None, None),
            ("watch", "namespaces", None, None),
            # Leader election: its own Lease, in its own namespace.
            ("create", "leases.coordination.k8s.io", operator_namespace, None),
            ("get", f"leases.coordination.k8s.io/{lease}", operator_namespace, None),
            ("update", f"leases.coordination.k8s.io/{lease}", operator_namespace, None),
        ]
        denied = [
            # Secrets: nowhere but the watched namespace -- not cluster-wide, not another namespace, not its own.
            ("get", "secrets", other, None),
            ("list", "secrets", other, None),
            ("watch", "secrets", other, None),
            ("list", "secrets", None, None),
            ("get", "secrets", operator_namespace, None),
            ("delete", "secrets", watched, None),
            ("update", "secrets", watched, None),
            # The parent's spec and metadata are the user's (GitOps): only its status is written.
            ("update", "zenmodeldeployments.zenml.io", watched, None),
            ("patch", "zenmodeldeployments.zenml.io", watched, None),
            ("create", "zenmodeldeployments.zenml.io", watched, None),
            ("delete", "zenmodeldeployments.zenml.io", watched, None),
            ("update", "zenmodeldeployments.zenml.io", watched, "status"),
            ("list", "zenmodeldeployments.zenml.io", other, None),
            ("list", "zenmodeldeployments.zenml.io", None, None),
            # Children are never deleted or replaced (the garbage collector removes them).
            ("delete", "seldondeployments.machinelearning.seldon.io", watched, None),
            ("update", "seldondeployments.machinelearning.seldon.io", watched, None),
            ("patch", "seldondeployments.machinelearning.seldon.io", watched, "status"),
            ("create", "seldondeployments.machinelearning.seldon.io", other, None),
            ("list", "seldondeployments.machinelearning.seldon.io", None, None),
            # Nothing else.
            ("get", "customresourcedefinitions.apiextensions.k8s.io", None, None),
            ("create", "customresourcedefinitions.apiextensions.k8s.io", None, None),
            ("get", "namespaces", None, None),
            ("create", "events", other, None),
            ("patch", "events", watched, None),
            ("list", "configmaps", watched, None),
            # Pods: watched and their output read, nothing more, and only where the models are.
            ("create", "pods", watched, None),
            ("get", "pods", watched, None),
            ("delete", "pods", watched, None),
            ("update", "pods", watched, "status"),
            ("create", "pods", watched, "exec"),
            ("get", "pods", watched, "proxy"),
            ("list", "pods", other, None),
            ("get", "pods", other, "log"),
            ("list", "pods", None, None),
            ("create", "leases.coordination.k8s.io", watched, None),
            ("get", "leases.coordination.k8s.io/another-lease", operator_namespace, None),
            ("update", "leases.coordination.k8s.io/another-lease", operator_namespace, None),
            ("delete", f"leases.coordination.k8s.io/{lease}", operator_namespace, None),
            ("list", "leases.coordination.k8s.io", operator_namespace, None),
            ("*", "*", None, None),
        ]
        assert [check for check in granted if not can(*check)] == []
        assert [check for check in denied if can(*check)] == []


def test_cluster_rbac_grants_secrets_everywhere_but_still_no_deletes(
    cluster: LocalCluster, operator_namespace: str, models_namespace: str, helm_home: Path, tmp_path: Path
) -> None:
    release = "zmo-wide"
    env = helm_env(cluster, helm_home)
    values = {"crds.install": False}
    with installed_release(
        cluster, env, release, operator_namespace, values, tmp_path / "sa.kubeconfig"
    ) as kubeconfig:
        can = partial(can_i, cluster, kubeconfig)

        assert can("list", "secrets") and can("watch", "seldondeployments.machinelearning.seldon.io")
        assert can("patch", "zenmodeldeployments.zenml.io", subresource="status")
        assert not can("list", "namespaces"), "serving every namespace, kopf does not list them"
        for verb, resource in (
            ("delete", "secrets"),
            ("delete", "seldondeployments.machinelearning.seldon.io"),
            ("update", "zenmodeldeployments.zenml.io"),
            ("patch", "zenmodeldeployments.zenml.io"),
            ("list", "configmaps"),
            ("create", "pods"),
            ("delete", "pods"),
        ):
            assert not can(verb, resource, models_namespace), f"{verb} {resource}"
