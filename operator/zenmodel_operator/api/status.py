"""The ZenModelDeployment's status as the CRD declares it (the operator owns every field of it)."""

from __future__ import annotations

from pydantic import Field

from .model import ApiModel


class StatusCondition(ApiModel):
    """A condition, per the Kubernetes API conventions."""

    type: str = Field(description="CredentialsReady, SeldonDeploymentReady or Ready.")
    status: str = Field(description="True, False or Unknown.")
    reason: str = Field(description="Machine-readable reason for the condition's last transition, CamelCase.")
    message: str = Field(description="Human-readable details.")
    lastTransitionTime: str = Field(description="When the status last changed (RFC 3339).")
    observedGeneration: int = Field(description="The .metadata.generation the condition was set from.")


class CanaryStatus(ApiModel):
    """The canary predictor, as Seldon Core runs it."""

    uri: str = Field(description="The canary's model URI.")
    mode: str = Field(description="split or shadow.")
    trafficPercent: int | None = Field(
        default=None, description="Share of requests the canary answers (split)."
    )
    traffic: str = Field(description="The canary's share, as `kubectl get` shows it: e.g. 10%, or shadow.")
    replicas: int = Field(description="Desired canary replicas.")
    availableReplicas: int = Field(description="Canary replicas available, from Seldon's Deployment status.")


class ZenModelDeploymentStatus(ApiModel):
    """What the operator observed, mirrored from Seldon Core."""

    observedGeneration: int | None = Field(
        default=None, description="The .metadata.generation last reconciled."
    )
    state: str | None = Field(
        default=None,
        description="Seldon's state, mirrored: Unknown, Creating, Available or Failed.",
    )
    predictionURL: str | None = Field(default=None, description="Prediction URL through Seldon's ingress.")
    internalURL: str | None = Field(default=None, description="Prediction URL inside the cluster.")
    replicas: int | None = Field(
        default=None,
        description="Desired replicas of the main predictor (with autoscaling, the autoscaler's count).",
    )
    availableReplicas: int | None = Field(
        default=None, description="Replicas of the main predictor available (a canary's are under canary)."
    )
    seldonDeploymentName: str | None = Field(default=None, description="Name of the owned SeldonDeployment.")
    credentialsSecretName: str | None = Field(
        default=None, description="Name of the generated rclone Secret."
    )
    canary: CanaryStatus | None = Field(default=None, description="The canary predictor, if any.")
    conditions: list[StatusCondition] = Field(
        default_factory=list,
        description="CredentialsReady, SeldonDeploymentReady and Ready.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
