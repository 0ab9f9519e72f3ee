"""The reconcile's view of the cluster: reads from the informer's stores, writes through the API, and
each write's answer written through into the stores."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.plan import Event
from ..core.pods import PodProblem, PodRecord, last_line
from .informer import Informer
from .transport import ApiError
from .writes import KubeCluster


class InformedCluster:
    """`controller.Cluster`: reads from the informer's stores, writes through `KubeCluster` on the event
    loop, and writes each answer through into the stores, so the next read is never older than our own
    write."""

    def __init__(self, informer: Informer, kube: KubeCluster) -> None:
        self.informer = informer
        self.kube = kube

    def get_parent(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.informer.parents.get(namespace, name)

    def get_seldon_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.informer.seldon_deployments.get(namespace, name)

    def get_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.informer.secrets.get(namespace, name)

    def get_failing_pods(self, namespace: str, parent: str) -> tuple[PodRecord, ...]:
        return self.informer.pods.of_parent(namespace, parent)

    async def last_output_line(self, problem: PodProblem) -> str:
        """The last line of the output of the problem's failed run ("" if there is none or it cannot be
        read), read through the API once per failed run, and kept with the pod's record."""
        known = self.informer.pods.output(problem)
        if known is not None:
            return known
        failure = problem.failure
        output = await self.kube.container_output(
            problem.pod.namespace, problem.pod.name, failure.name, previous=failure.previous
        )
        line = last_line(output) if output is not None else ""
        self.informer.pods.remember_output(problem, line)
        return line

    async def apply(self, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        live = await self.kube.apply(obj)
        self.informer.wrote(live)
        return live

    async def create(self, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        live = await self.kube.create(obj)
        self.informer.wrote(live)
        return live

    async def read_metadata(self, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return await self.kube.read_metadata(obj)  # metadata alone: nothing for the stores

    async def remove_foreign_keys(self, patch: Mapping[str, Any]) -> Mapping[str, Any] | None:
        live = await self.kube.remove_foreign_keys(patch)
        if live is not None:
            self.informer.wrote(live)
        return live

    async def apply_status(self, parent: Mapping[str, Any], status: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            live = await self.kube.apply_status(parent, status)
        except ApiError as error:
            if error.status == 404:
                # Deleted between our startup LIST and kopf's, so no watch event will say so.
                self.informer.deleted(self.informer.parents, parent)
            raise
        self.informer.wrote(live)
        return live

    async def post_event(self, parent: Mapping[str, Any], event: Event) -> None:
        await self.kube.post_event(parent, event)
