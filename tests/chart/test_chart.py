"""The Helm chart, rendered by the real `helm` (no cluster needed): values schema, CRD copy, RBAC shape, the
operator's pod, and deploy/ as the chart's current output."""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.helmchart import CHART, ROOT, HelmError, find, helm, helm_binary, render, set_flags, template
from zenmodel_operator import settings

CRD_FILE = "zenml.io_zenmodeldeployments.yaml"
DEPLOY = ROOT / "deploy"
NAMESPACED = {"rbac.scope": "namespaced", "watchNamespaces": ["models", "models-staging"]}
WORKLOAD_RULES = [
    {"apiGroups": ["zenml.io"], "resources": ["zenmodeldeployments"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["zenml.io"], "resources": ["zenmodeldeployments/status"], "verbs": ["patch"]},
    {"apiGroups": ["zenml.io"], "resources": ["zenmodeldeployments/finalizers"], "verbs": ["update"]},
    {
        "apiGroups": ["machinelearning.seldon.io"],
        "resources": ["seldondeployments"],
        "verbs": ["get", "list", "watch", "create", "patch"],
    },
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "create", "patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
]
CRD_DISCOVERY_RULE = {
    "apiGroups": ["apiextensions.k8s.io"],
    "resources": ["customresourcedefinitions"],
    "verbs": ["list", "watch"],
}
NAMESPACE_DISCOVERY_RULE = {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}


def operator_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = find(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def env_of(objects: list[dict[str, Any]]) -> dict[str, str]:
    return {item["name"]: item.get("value") for item in operator_container(objects)["env"]}


def test_lint_in_both_rbac_scopes() -> None:
    for values in ({}, NAMESPACED):
        out = helm("lint", str(CHART), "--strict", *set_flags(values)).stdout
        assert "0 chart(s) failed" in out


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        pytest.param({"replicas": 2}, "additional properties 'replicas' not allowed", id="unknown-top-level"),
        pytest.param(
            {"image.digest": "sha256:0"}, "additional properties 'digest' not allowed", id="unknown-nested"
        ),
        pytest.param({"workers": "four"}, "/workers", id="ill-typed-integer"),
        pytest.param({"replicaCount": 0}, "/replicaCount", id="no-replicas"),
        pytest.param(
            {"leaderElection.enabled": False}, "/leaderElection/enabled", id="two-replicas-without-election"
        ),
        pytest.param({"leaderElection.retryPeriod": 0}, "/leaderElection/retryPeriod", id="zero-retry"),
        pytest.param({"leaderElection.id": "Shard_A"}, "/leaderElection/id", id="invalid-lease-name"),
        pytest.param(
            {"leaderElection.renewDeadline": 15}, "leaseDuration > renewDeadline", id="renew-not-below-lease"
        ),
        pytest.param(
            {"leaderElection.retryPeriod": 9}, "renewDeadline > 1.2 x retryPeriod", id="retry-within-jitter"
        ),
        pytest.param({"crds.install": "yes"}, "/crds/install", id="ill-typed-boolean"),
        pytest.param({"rbac.scope": "cluster-wide"}, "/rbac/scope", id="unknown-scope"),
        pytest.param({"logFormat": "xml"}, "/logFormat", id="unknown-log-format"),
        pytest.param({"logLevel": "info"}, "/logLevel", id="lower-case-log-level"),
        pytest.param({"metrics.port": 70000}, "/metrics/port", id="port-out-of-range"),
        pytest.param({"ingressBaseURL": "ingress.example.com"}, "/ingressBaseURL", id="url-without-scheme"),
        pytest.param({"securityContext.runAsUser": 0}, "/securityContext/runAsUser", id="root"),
        pytest.param({"watchNamespaces": "models"}, "/watchNamespaces", id="namespaces-not-a-list"),
        pytest.param({"rbac.scope": "namespaced"}, "/watchNamespaces", id="namespaced-without-namespaces"),
        pytest.param(
            {"rbac.scope": "namespaced", "watchNamespaces": ["team-*"]},
            "/watchNamespaces/0",
            id="namespaced-with-a-glob",
        ),
    ],
)
def test_values_schema_rejects(values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(HelmError) as raised:
        template(values)
    assert complaint in str(raised.value)


def test_defaults_render_cluster_scope_with_every_object() -> None:
    objects = render()
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        [
            "CustomResourceDefinition",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Service",
            "Deployment",
            "Role",
            "RoleBinding",
            "PodDisruptionBudget",
        ]
    )
    assert all(
        o["metadata"].get("namespace") == "zenmodel-system"
        for o in objects
        if o["kind"]
        in ("ServiceAccount", "Service", "Deployment", "Role", "RoleBinding", "PodDisruptionBudget")
    )


def test_crd_template_is_the_generated_crd_with_the_keep_annotation() -> None:
    assert (CHART / "files" / CRD_FILE).read_bytes() == (ROOT / "crds" / CRD_FILE).read_bytes()
    (crd,) = find(render(), "CustomResourceDefinition")
    metadata = crd["metadata"]
    assert metadata.pop("annotations") == {"helm.sh/resource-policy": "keep"}
    assert metadata.pop("labels")["app.kubernetes.io/part-of"] == "zenmodel-operator"
    assert crd == yaml.safe_load((ROOT / "crds" / CRD_FILE).read_text())


def test_crd_annotations_add_to_keep() -> None:
    (crd,) = find(
        render({"crds.annotations": {"argocd.argoproj.io/sync-options": "Prune=false"}}),
        "CustomResourceDefinition",
    )
    assert crd["metadata"]["annotations"] == {
        "helm.sh/resource-policy": "keep",
        "argocd.argoproj.io/sync-options": "Prune=false",
    }


def test_crd_can_be_left_out() -> None:
    assert not find(render({"crds.install": False}), "CustomResourceDefinition")


def workload_roles(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Roles but the Lease's (tested on its own)."""
    return [r for r in find(objects, "Role") if not r["metadata"]["name"].endswith("-leader-election")]


def test_cluster_scope_rbac() -> None:
    objects = render()
    assert not workload_roles(objects)
    (role,) = find(objects, "ClusterRole")
    assert role["rules"] == [CRD_DISCOVERY_RULE, *WORKLOAD_RULES]
    (binding,) = find(objects, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "zenmodel-operator", "namespace": "zenmodel-system"}
    ]


def test_cluster_scope_with_a_namespace_list_may_read_namespaces() -> None:
    (role,) = find(render({"watchNamespaces": ["team-*"]}), "ClusterRole")
    assert role["rules"] == [CRD_DISCOVERY_RULE, NAMESPACE_DISCOVERY_RULE, *WORKLOAD_RULES]


def test_namespaced_scope_rbac() -> None:
    objects = render(NAMESPACED)
    (cluster_role,) = find(objects, "ClusterRole")
    assert cluster_role["rules"] == [CRD_DISCOVERY_RULE, NAMESPACE_DISCOVERY_RULE], (
        "no cluster-wide workload access"
    )
    roles = workload_roles(objects)
    bindings = [
        b for b in find(objects, "RoleBinding") if b["roleRef"]["name"] == roles[0]["metadata"]["name"]
    ]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["models", "models-staging"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["models", "models-staging"]
    assert all(r["rules"] == WORKLOAD_RULES for r in roles)
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"][0]["namespace"] == "zenmodel-system"


def test_no_rule_deletes_or_updates_a_spec() -> None:
    for values in ({}, NAMESPACED):
        objects = render(values)
        for role in find(objects, "ClusterRole") + find(objects, "Role"):
            for rule in role["rules"]:
                assert "*" not in rule["verbs"] and "*" not in rule["resources"]
                assert not {"delete", "deletecollection"} & set(rule["verbs"])
                if "update" in rule["verbs"]:
                    assert rule["resources"] in (["zenmodeldeployments/finalizers"], ["leases"])


def test_pod_meets_the_restricted_pod_security_standard() -> None:
    objects = render()
    (deployment,) = find(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert isinstance(pod["securityContext"]["runAsUser"], int) and pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = operator_container(objects)
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


LEASE = "zenmodel-operator"  # the default release's full name


def test_two_replicas_elect_a_leader_by_default() -> None:
    objects = render()
    (deployment,) = find(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    env = env_of(objects)
    assert env["ZENMODEL_LEADER_ELECTION"] == "true"
    assert env["ZENMODEL_LEADER_ELECTION_NAMESPACE"] == "zenmodel-system"
    assert env["ZENMODEL_LEADER_ELECTION_ID"] == LEASE
    durations = [
        env[f"ZENMODEL_LEADER_ELECTION_{d}"] for d in ("LEASE_DURATION", "RENEW_DEADLINE", "RETRY_PERIOD")
    ]
    assert durations == ["15", "10", "2"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert deployment["spec"]["template"]["spec"]["affinity"] == {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": selector},
                    },
                }
            ]
        }
    }
    (budget,) = find(objects, "PodDisruptionBudget")
    assert budget["spec"] == {"minAvailable": 1, "selector": {"matchLabels": selector}}


def test_leases_are_granted_in_the_release_namespace_only_and_only_its_own_renewed() -> None:
    for values in ({}, NAMESPACED):
        objects = render(values)
        (role,) = find(objects, "Role", f"{LEASE}-leader-election")
        assert role["metadata"]["namespace"] == "zenmodel-system"
        assert role["rules"] == [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "resourceNames": [LEASE],
                "verbs": ["get", "update"],
            },
        ]
        (binding,) = find(objects, "RoleBinding", f"{LEASE}-leader-election")
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "zenmodel-operator", "namespace": "zenmodel-system"}
        ]
        cluster_rules = [r for o in find(objects, "ClusterRole") for r in o["rules"]]
        assert not [r for r in cluster_rules if "coordination.k8s.io" in r["apiGroups"]]


def test_a_named_lease_shards_releases_apart() -> None:
    objects = render({"leaderElection.id": "zmo-shard-a"}, release="shard-a")
    assert env_of(objects)["ZENMODEL_LEADER_ELECTION_ID"] == "zmo-shard-a"
    (role,) = find(objects, "Role", "shard-a-zenmodel-operator-leader-election")
    assert role["rules"][1]["resourceNames"] == ["zmo-shard-a"]
    assert env_of(render(release="shard-b"))["ZENMODEL_LEADER_ELECTION_ID"] == "shard-b-zenmodel-operator"


def test_a_single_replica_runs_alone_without_election() -> None:
    objects = render({"replicaCount": 1, "leaderElection.enabled": False})
    (deployment,) = find(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "affinity" not in deployment["spec"]["template"]["spec"]
    assert not find(objects, "PodDisruptionBudget") and not find(objects, "Role")
    env = env_of(objects)
    assert env["ZENMODEL_LEADER_ELECTION"] == "false"
    assert not [name for name in env if name.startswith("ZENMODEL_LEADER_ELECTION_")]


def test_an_affinity_of_ones_own_replaces_the_spread_and_the_budget_can_go() -> None:
    affinity: dict[str, Any] = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}
    }
    objects = render({"affinity": affinity, "podDisruptionBudget.enabled": False})
    (deployment,) = find(objects, "Deployment")
    assert deployment["spec"]["template"]["spec"]["affinity"] == affinity
    assert not find(objects, "PodDisruptionBudget")


def test_probes_use_the_health_endpoint_and_metrics_its_port() -> None:
    container = operator_container(render())
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert "args" not in container and "command" not in container, "the image's ENTRYPOINT runs the operator"


def test_image_tag_defaults_to_the_app_version() -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert operator_container(render())["image"] == f"ghcr.io/zenml-io/zenmodel-operator:{app_version}"
    container = operator_container(
        render(
            {
                "image.repository": "registry.example.com/zmo",
                "image.tag": "1.2.3",
                "image.pullPolicy": "Always",
            }
        )
    )
    assert (container["image"], container["imagePullPolicy"]) == ("registry.example.com/zmo:1.2.3", "Always")


def operator_setting_env_vars() -> set[str]:
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser, environ={})
    flags = [
        option for action in parser._actions for option in action.option_strings if option.startswith("--")
    ]
    return {settings.ENV_PREFIX + flag[2:].replace("-", "_").upper() for flag in flags if flag != "--help"}


def test_every_operator_setting_has_a_value() -> None:
    assert set(env_of(render())) == operator_setting_env_vars()


def test_values_reach_the_operator_environment() -> None:
    env = env_of(
        render(
            {
                "ingressBaseURL": "http://ingress.example.com",
                "watchNamespaces": ["models", "team-*"],
                "logFormat": "text",
                "logLevel": "DEBUG",
                "requireCredentialsLabel": False,
                "workers": 8,
                "metrics.port": 9090,
                "healthPort": 9091,
                "leaderElection.id": "zmo-shard-a",
                "leaderElection.leaseDuration": 3,
                "leaderElection.renewDeadline": 2,
                "leaderElection.retryPeriod": 0.5,
            }
        )
    )
    assert env == {
        "ZENMODEL_INGRESS_BASE_URL": "http://ingress.example.com",
        "ZENMODEL_NAMESPACES": "models,team-*",
        "ZENMODEL_LOG_FORMAT": "text",
        "ZENMODEL_LOG_LEVEL": "DEBUG",
        "ZENMODEL_REQUIRE_CREDENTIALS_LABEL": "false",
        "ZENMODEL_WORKERS": "8",
        "ZENMODEL_METRICS_PORT": "9090",
        "ZENMODEL_HEALTH_PORT": "9091",
        "ZENMODEL_LEADER_ELECTION": "true",
        "ZENMODEL_LEADER_ELECTION_NAMESPACE": "zenmodel-system",
        "ZENMODEL_LEADER_ELECTION_ID": "zmo-shard-a",
        "ZENMODEL_LEADER_ELECTION_LEASE_DURATION": "3",
        "ZENMODEL_LEADER_ELECTION_RENEW_DEADLINE": "2",
        "ZENMODEL_LEADER_ELECTION_RETRY_PERIOD": "0.5",
    }
    # The operator's own parser accepts every value the chart passes.
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser, environ=env)
    parsed = settings.from_arguments(parser.parse_args([]))
    assert parsed.namespaces == ("models", "team-*")
    assert parsed.require_credentials_label is False
    assert (parsed.metrics_port, parsed.health_port, parsed.workers) == (9090, 9091, 8)
    assert parsed.leader_election == settings.LeaderElectionSettings(
        True, "zenmodel-system", "zmo-shard-a", 3, 2, 0.5
    )


def test_metrics_service_and_optional_service_monitor() -> None:
    objects = render()
    assert not find(objects, "ServiceMonitor")
    (service,) = find(objects, "Service")
    assert service["spec"]["ports"] == [
        {"name": "http-metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    (monitor,) = find(
        render(
            {
                "metrics.serviceMonitor.enabled": True,
                "metrics.serviceMonitor.labels": {"release": "prometheus"},
            }
        ),
        "ServiceMonitor",
    )
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"][0]["port"] == "http-metrics"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]


def test_deploy_manifests_are_the_charts_current_output(tmp_path: Path) -> None:
    rendered = tmp_path / "deploy"
    subprocess.run(
        ["bash", str(ROOT / "hack" / "render-deploy.sh"), str(rendered)],
        check=True,
        env={**os.environ, "HELM": str(helm_binary())},
    )
    comparison = filecmp.dircmp(rendered, DEPLOY)
    stale = comparison.diff_files + comparison.left_only + comparison.right_only
    # dircmp compares sizes and times first; compare the bytes of every file it calls the same, too.
    stale += [
        name
        for name in comparison.same_files
        if (rendered / name).read_bytes() != (DEPLOY / name).read_bytes()
    ]
    assert not stale, f"deploy/ is stale ({sorted(stale)}): run hack/render-deploy.sh"
    assert (DEPLOY / CRD_FILE).read_bytes() == (ROOT / "crds" / CRD_FILE).read_bytes()


def test_deploy_manifests_are_cluster_scoped_defaults_in_zenmodel_system() -> None:
    objects = [doc for doc in yaml.safe_load_all((DEPLOY / "operator.yaml").read_text()) if doc]
    assert not find(objects, "CustomResourceDefinition"), (
        "the CRD is deploy/'s verbatim copy, not the template's"
    )
    assert find(objects, "ClusterRole")
    assert [role["metadata"]["name"] for role in find(objects, "Role")] == [
        "zenmodel-operator-leader-election"
    ]
    assert env_of(objects)["ZENMODEL_NAMESPACES"] == ""
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["namespace.yaml", CRD_FILE, "operator.yaml"]
    namespace = yaml.safe_load((DEPLOY / "namespace.yaml").read_text())
    assert namespace["metadata"]["name"] == "zenmodel-system"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
