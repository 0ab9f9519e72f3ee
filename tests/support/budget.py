"""The operator's requests as the apiserver itself counts them (its audit log), not as the operator does:
writes and reads are a budget.

Seldon Core's controller, the scheduler and the controller manager write Events and statuses as well, so
the operator's requests are told apart by their user agent, in one test's namespace.
"""

from __future__ import annotations

from support.localcluster import LocalCluster

# Everything the operator may write, as (resource, subresource). The tests' own writes (creating parents
# and Secrets) and every other component's fall outside it.
OPERATOR_WRITES = {
    ("seldondeployments", ""),
    ("secrets", ""),
    ("zenmodeldeployments", "status"),
    ("events", ""),
}
OPERATOR_USER_AGENTS = ("zenmodel-operator/", "kopf/")
WRITE_VERBS = {"create", "update", "patch", "delete"}
# Everything the reconcile reads: from its informer's stores, so a GET of these is a budget overrun; and
# a failed container's output, which healthy pods never cost.
OPERATOR_READS = {("zenmodeldeployments", ""), ("seldondeployments", ""), ("secrets", ""), ("pods", "log")}
CONTAINER_OUTPUT = {("pods", "log")}


def operator_requests(
    cluster: LocalCluster,
    namespace: str,
    verbs: set[str],
    resources: set[tuple[str, str]],
    *,
    answered: bool = True,
) -> int:
    """The operator's requests in `namespace` so far with one of `verbs` on one of (resource, subresource),
    from the apiserver's audit log: those answered with success, or (`answered=False`) all of them. (A
    streamed answer, such as a container's output, is audited as it starts and as it ends: counted once.)"""
    return sum(
        1
        for event in cluster.audit_events()
        if event["stage"] == "ResponseComplete"
        and event["userAgent"].startswith(OPERATOR_USER_AGENTS)
        and event["verb"] in verbs
        and event["objectRef"].get("namespace") == namespace
        and (event["objectRef"].get("resource"), event["objectRef"].get("subresource", "")) in resources
        and (not answered or 200 <= (event.get("responseStatus") or {}).get("code", 0) < 300)
    )


def operator_writes(cluster: LocalCluster, namespace: str) -> int:
    return operator_requests(cluster, namespace, WRITE_VERBS, OPERATOR_WRITES)


def operator_gets(cluster: LocalCluster, namespace: str) -> int:
    return operator_requests(cluster, namespace, {"get"}, OPERATOR_READS)
