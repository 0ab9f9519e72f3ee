"""Where the model pods may run: Kubernetes' nodeSelector, tolerations and affinity, re-declared as the
API's own models so that the CRD states (and pydantic checks) every field the operator copies onto the
SeldonDeployment's pods."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from .model import ApiModel
from .validation import MAX_LABEL_KEY_LENGTH, Checked, label_key, label_value


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(ApiModel):
    """A Kubernetes toleration, copied onto the model pods."""

    key: Annotated[str, Checked(*label_key("nvidia.com/gpu"))] | None = Field(
        default=None,
        max_length=MAX_LABEL_KEY_LENGTH,
        description="Taint key to tolerate, e.g. nvidia.com/gpu; empty with operator Exists tolerates every taint.",
    )
    operator: TolerationOperator | None = Field(
        default=None, description="Exists or Equal (Kubernetes' default: Equal)."
    )
    value: Annotated[str, Checked(*label_value("present"))] | None = Field(
        default=None,
        max_length=63,
        description="Taint value to match, with operator Equal.",
    )
    effect: TaintEffect | None = Field(
        default=None, description="Taint effect to match; empty matches every effect."
    )
    tolerationSeconds: int | None = Field(
        default=None,
        ge=0,
        description="With effect NoExecute: how long the pod stays bound after the taint appears.",
    )


class NodeSelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"
    GT = "Gt"
    LT = "Lt"


class LabelSelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


_AFFINITY_LIST_LIMIT = 32
_Values = Annotated[
    list[Annotated[str, Field(max_length=316, description="A value.")]],
    Field(max_length=_AFFINITY_LIST_LIMIT),
]
_LabelKey = Annotated[str, Field(max_length=MAX_LABEL_KEY_LENGTH, description="A label key.")]


class NodeSelectorRequirement(ApiModel):
    """A Kubernetes NodeSelectorRequirement: a node label or field compared with values."""

    key: str = Field(min_length=1, max_length=MAX_LABEL_KEY_LENGTH, description="The label or field key.")
    operator: NodeSelectorOperator = Field(description="In, NotIn, Exists, DoesNotExist, Gt or Lt.")
    values: _Values = Field(
        default_factory=list,
        description="Values; one integer for Gt and Lt, none for Exists and DoesNotExist.",
    )


class NodeSelectorTerm(ApiModel):
    """A Kubernetes NodeSelectorTerm: its requirements are ANDed."""

    matchExpressions: list[NodeSelectorRequirement] = Field(
        default_factory=list, max_length=_AFFINITY_LIST_LIMIT, description="Requirements on node labels."
    )
    matchFields: list[NodeSelectorRequirement] = Field(
        default_factory=list, max_length=_AFFINITY_LIST_LIMIT, description="Requirements on node fields."
    )


class NodeSelector(ApiModel):
    """A Kubernetes NodeSelector: its terms are ORed."""

    nodeSelectorTerms: list[NodeSelectorTerm] = Field(
        min_length=1, max_length=_AFFINITY_LIST_LIMIT, description="Terms, of which a node must match one."
    )


class PreferredSchedulingTerm(ApiModel):
    """A Kubernetes PreferredSchedulingTerm: a weighted preference for some nodes."""

    weight: int = Field(ge=1, le=100, description="Weight of the preference, 1..100.")
    preference: NodeSelectorTerm = Field(description="The nodes preferred.")


class NodeAffinity(ApiModel):
    """A Kubernetes NodeAffinity."""

    requiredDuringSchedulingIgnoredDuringExecution: NodeSelector | None = Field(
        default=None, description="Nodes the pods must run on."
    )
    preferredDuringSchedulingIgnoredDuringExecution: list[PreferredSchedulingTerm] = Field(
        default_factory=list, max_length=_AFFINITY_LIST_LIMIT, description="Nodes the pods prefer."
    )


class LabelSelectorRequirement(ApiModel):
    """A Kubernetes LabelSelectorRequirement."""

    key: str = Field(min_length=1, max_length=MAX_LABEL_KEY_LENGTH, description="The label key.")
    operator: LabelSelectorOperator = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: _Values = Field(default_factory=list, description="Values; none for Exists and DoesNotExist.")


class LabelSelector(ApiModel):
    """A Kubernetes LabelSelector: matchLabels and matchExpressions, ANDed."""

    matchLabels: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict, max_length=_AFFINITY_LIST_LIMIT, description="Labels to match exactly."
    )
    matchExpressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=_AFFINITY_LIST_LIMIT, description="Requirements on labels."
    )


class PodAffinityTerm(ApiModel):
    """A Kubernetes PodAffinityTerm: pods matched by labels, on nodes sharing a topology key."""

    labelSelector: LabelSelector | None = Field(default=None, description="The pods to match.")
    namespaceSelector: LabelSelector | None = Field(
        default=None, description="Namespaces whose pods to match; empty: this namespace."
    )
    namespaces: list[Annotated[str, Field(max_length=63, description="A namespace.")]] = Field(
        default_factory=list, max_length=_AFFINITY_LIST_LIMIT, description="Namespaces whose pods to match."
    )
    topologyKey: str = Field(
        min_length=1,
        max_length=MAX_LABEL_KEY_LENGTH,
        description="Node label whose value defines co-location, e.g. kubernetes.io/hostname.",
    )
    matchLabelKeys: list[_LabelKey] = Field(
        default_factory=list,
        max_length=_AFFINITY_LIST_LIMIT,
        description="Label keys whose values, taken from the incoming pod, are ANDed into labelSelector.",
    )
    mismatchLabelKeys: list[_LabelKey] = Field(
        default_factory=list,
        max_length=_AFFINITY_LIST_LIMIT,
        description="Label keys whose values, taken from the incoming pod, must not match.",
    )


class WeightedPodAffinityTerm(ApiModel):
    """A Kubernetes WeightedPodAffinityTerm."""

    weight: int = Field(ge=1, le=100, description="Weight of the preference, 1..100.")
    podAffinityTerm: PodAffinityTerm = Field(description="The term.")


class PodAffinity(ApiModel):
    """A Kubernetes PodAffinity (or PodAntiAffinity: the same shape)."""

    requiredDuringSchedulingIgnoredDuringExecution: list[PodAffinityTerm] = Field(
        default_factory=list, max_length=_AFFINITY_LIST_LIMIT, description="Terms the pods must satisfy."
    )
    preferredDuringSchedulingIgnoredDuringExecution: list[WeightedPodAffinityTerm] = Field(
        default_factory=list, max_length=_AFFINITY_LIST_LIMIT, description="Terms the pods prefer to satisfy."
    )


class Affinity(ApiModel):
    """A Kubernetes Affinity, typed as the core API (and Seldon's CRD) has it, so a mistake is refused at
    apply time. Label keys and values inside it are left to Kubernetes to check."""

    nodeAffinity: NodeAffinity | None = Field(
        default=None, description="A Kubernetes NodeAffinity: the nodes the model pods run on."
    )
    podAffinity: PodAffinity | None = Field(default=None, description="Pods to run the model pods near.")
    podAntiAffinity: PodAffinity | None = Field(
        default=None, description="Pods to keep the model pods away from, e.g. each other."
    )


class Scheduling(ApiModel):
    """Where the model pods of every predictor may run (e.g. GPU nodes)."""

    nodeSelector: dict[str, Annotated[str, Checked(*label_value("true")), Field(max_length=63)]] = Field(
        default_factory=dict,
        max_length=32,
        description='Node labels the model pods require, e.g. {nvidia.com/gpu.present: "true"}.',
    )
    tolerations: list[Toleration] = Field(
        default_factory=list,
        max_length=32,
        description="Taints the model pods tolerate, e.g. [{key: nvidia.com/gpu, operator: Exists}].",
    )
    affinity: Affinity | None = Field(default=None, description="Node and pod affinity of the model pods.")
