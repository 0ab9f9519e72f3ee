"""The ZenModelDeployment API as pydantic models: the one source of truth for the CRD's schema.

Every field carries a description (it becomes `kubectl explain` text). Cross-field rules are written once
here, as CEL (`CEL_RULES`), and the same constraints are checked by pydantic validators, so `render`
(offline) and the apiserver (at `kubectl apply` time) refuse the same objects.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .storage import AZURE_ACCOUNT_PATTERN, MODEL_URI_CHECKS
from .validation import (
    MAX_LABEL_KEY_LENGTH,
    Check,
    Checked,
    Expr,
    dns_label,
    dns_subdomain,
    first_failure,
    image_reference,
    invalid,
    label_key,
    label_value,
    lacks,
    matches,
    no_variable_reference,
    plain_url,
    validations,
)

GROUP = "zenml.io"
VERSION = "v1alpha1"
KIND = "ZenModelDeployment"
PLURAL = "zenmodeldeployments"
SINGULAR = "zenmodeldeployment"
SHORT_NAMES = ("zmd",)
API_VERSION = f"{GROUP}/{VERSION}"

# The SeldonDeployment keeps the parent's name, and Seldon names its Service `<name>-<predictor>`,
# which must be a DNS-1035 label (<= 63 chars): 63 - len("-default") leaves 55.
MAX_NAME_LENGTH = 55
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
QUANTITY_PATTERN = "^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i?|[munkMGTPE])?$"
QUANTITY = Checked(matches(QUANTITY_PATTERN, "must be a quantity such as 500m, 2 or 1Gi"))
MAX_RESOURCES = 32
# Kubernetes' own rule for environment variable names (IsEnvVarName).
ENV_NAME_PATTERN = "^[-._a-zA-Z][-._a-zA-Z0-9]*$"
# The keys of the generated rclone Secret (Seldon's storage initializer reads them): reserved to the operator,
# so no model env var can pass for rclone configuration.
RCLONE_ENV_PREFIX = "RCLONE_CONFIG_"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, use_enum_values=False)


class Implementation(StrEnum):
    SKLEARN_SERVER = "SKLEARN_SERVER"
    XGBOOST_SERVER = "XGBOOST_SERVER"
    TENSORFLOW_SERVER = "TENSORFLOW_SERVER"
    MLFLOW_SERVER = "MLFLOW_SERVER"
    TRITON_SERVER = "TRITON_SERVER"
    HUGGINGFACE_SERVER = "HUGGINGFACE_SERVER"
    CUSTOM = "CUSTOM"


class Protocol(StrEnum):
    SELDON = "seldon"
    V2 = "v2"
    TENSORFLOW = "tensorflow"


# Which protocol each Seldon Core v1 server speaks (Seldon's prepackaged-server docs). CUSTOM images
# bring their own server, so any protocol is theirs to choose.
PROTOCOLS_BY_IMPLEMENTATION: dict[Implementation, tuple[Protocol, ...]] = {
    Implementation.SKLEARN_SERVER: (Protocol.SELDON, Protocol.V2),
    Implementation.XGBOOST_SERVER: (Protocol.SELDON, Protocol.V2),
    Implementation.TENSORFLOW_SERVER: (Protocol.SELDON, Protocol.TENSORFLOW),
    Implementation.MLFLOW_SERVER: (Protocol.SELDON, Protocol.V2),
    Implementation.TRITON_SERVER: (Protocol.V2,),
    Implementation.HUGGINGFACE_SERVER: (Protocol.V2,),
    Implementation.CUSTOM: (Protocol.SELDON, Protocol.V2, Protocol.TENSORFLOW),
}


class ParameterType(StrEnum):
    STRING = "STRING"
    INT = "INT"
    FLOAT = "FLOAT"
    DOUBLE = "DOUBLE"
    BOOL = "BOOL"


class S3Provider(StrEnum):
    AWS = "AWS"
    MINIO = "Minio"
    CEPH = "Ceph"
    DIGITALOCEAN = "DigitalOcean"
    WASABI = "Wasabi"
    OTHER = "Other"


_NUMBER = "[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?"
_NOT_A_NUMBER = "[+-]?([iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN])"


def _float_check(type_: str) -> Check:
    return matches(
        f"^({_NUMBER}|{_NOT_A_NUMBER})$",
        f"is not a {type_} as Seldon reads it (Python's float()): write a number such as 0.5, -3 or 1e-3",
    )


# What Seldon's Python wrapper accepts (seldon_core.microservice.parse_parameters: int(), float(),
# strtobool()), without the surrounding blanks and digit underscores it also tolerates.
PARAMETER_VALUE_CHECKS: dict[ParameterType, Check] = {
    ParameterType.INT: matches(
        "^[+-]?[0-9]+$", "is not an INT as Seldon reads it (Python's int()): write a whole number such as 42"
    ),
    ParameterType.FLOAT: _float_check("FLOAT"),
    ParameterType.DOUBLE: _float_check("DOUBLE"),
    ParameterType.BOOL: matches(
        "^(?i:true|false|yes|no|on|off|y|n|t|f|1|0)$",
        "is not a BOOL as Seldon reads it (strtobool): write true or false",
    ),
}


def _parameter_value_rules() -> list[JsonValue]:
    value = Expr("self.value", lambda v: v)
    rules: list[JsonValue] = []
    for type_, check in PARAMETER_VALUE_CHECKS.items():
        (entry,) = validations([check.on(value)])
        rules.append(
            {**entry, "rule": f"self.type != '{type_.value}' || ({entry['rule']})", "fieldPath": ".value"}
        )
    return rules


class Parameter(_Model):
    """A server parameter, passed to the Seldon model server in PREDICTIVE_UNIT_PARAMETERS."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _parameter_value_rules()})

    name: Annotated[
        str,
        Checked(
            matches(
                "^[A-Za-z_][A-Za-z0-9_]*$",
                "must be a Python identifier (Seldon passes parameters as keyword arguments): letters, "
                "digits and '_', not beginning with a digit, e.g. method",
            )
        ),
    ] = Field(min_length=1, max_length=253, description="Parameter name, e.g. `method`.")
    type: ParameterType = Field(description="Parameter type as Seldon Core declares it.")
    value: str = Field(
        max_length=4096,
        description="Parameter value, as a string that Seldon's model server parses as `type`.",
    )

    @field_validator("value")
    @classmethod
    def _value_fits_type(cls, value: str, info: ValidationInfo) -> str:
        type_ = info.data.get("type")  # absent if the type itself was refused
        check = PARAMETER_VALUE_CHECKS.get(type_) if isinstance(type_, ParameterType) else None
        if check is not None and not check.holds.python(value):
            raise invalid(check.message_for(value))
        return value


class ModelSpec(_Model):
    """The model to serve."""

    name: Annotated[str, Checked(*dns_label("iris"))] = Field(
        min_length=1,
        max_length=63,
        description="Model name: the Seldon graph node and model container name (a DNS-1123 label).",
    )
    uri: Annotated[str, Checked(*MODEL_URI_CHECKS)] = Field(
        max_length=2048,
        description=(
            "Where the model artifact lives: s3://bucket/path, gs://bucket/path, az://container/path, "
            "https://<account>.blob.core.windows.net/<container>/<path> or pvc://<claim>/<path>."
        ),
    )
    implementation: Implementation = Field(
        description="Seldon Core v1 model server; CUSTOM runs the image in `custom.image`.",
    )
    protocol: Protocol = Field(
        default=Protocol.SELDON,
        description="Inference protocol; it must be one the implementation speaks (TRITON and HUGGINGFACE: v2).",
    )
    parameters: list[Parameter] = Field(
        default_factory=list,
        max_length=64,
        description="Parameters passed to the model server.",
    )


class ResourceRequirements(_Model):
    """Compute resources of the model container (not of Seldon's engine/executor)."""

    requests: dict[str, Annotated[str, QUANTITY, Field(max_length=64)]] = Field(
        default_factory=dict,
        max_length=MAX_RESOURCES,
        description="Minimum resources, e.g. {cpu: 500m, memory: 1Gi}.",
    )
    limits: dict[str, Annotated[str, QUANTITY, Field(max_length=64)]] = Field(
        default_factory=dict,
        max_length=MAX_RESOURCES,
        description="Maximum resources, e.g. {memory: 2Gi}.",
    )


class LocalObjectReference(_Model):
    """A reference to an object in the same namespace."""

    name: Annotated[str, Checked(*dns_subdomain("s3-creds"))] = Field(
        min_length=1,
        max_length=253,
        description="Name of the object in the ZenModelDeployment's namespace.",
    )


class S3Options(_Model):
    """Non-secret options of an S3 or S3-compatible store."""

    endpoint: Annotated[str, Checked(*plain_url("http://minio.minio:9000"))] | None = Field(
        default=None,
        max_length=2048,
        description="Endpoint URL of an S3-compatible store, e.g. http://minio.minio:9000; empty for AWS.",
    )
    region: (
        Annotated[
            str,
            Checked(matches("^[a-z0-9-]+$", "must be lower-case letters, digits and '-', e.g. eu-west-1")),
        ]
        | None
    ) = Field(
        default=None,
        max_length=64,
        description="Region, e.g. eu-west-1.",
    )
    provider: S3Provider = Field(default=S3Provider.AWS, description="The S3 implementation rclone talks to.")


class GCSOptions(_Model):
    """Non-secret options of a Google Cloud Storage bucket."""

    projectNumber: (
        Annotated[
            str,
            Checked(matches("^[0-9a-z-]+$", "must be lower-case letters, digits and '-', e.g. 123456789012")),
        ]
        | None
    ) = Field(
        default=None,
        max_length=64,
        description="Project number, needed only to list or create buckets.",
    )
    endpoint: (
        Annotated[str, Checked(*plain_url("https://storage-psc.p.googleapis.com/storage/v1/"))] | None
    ) = Field(
        default=None,
        max_length=2048,
        description=(
            "JSON API endpoint, e.g. a Private Service Connect endpoint "
            "(https://storage-<name>.p.googleapis.com/storage/v1/); empty for Google's."
        ),
    )


class AzureOptions(_Model):
    """Non-secret options of an Azure Blob Storage container."""

    account: (
        Annotated[
            str,
            Checked(
                matches(
                    f"^{AZURE_ACCOUNT_PATTERN}$",
                    "must be a storage account name: 3 to 24 lower-case letters and digits",
                )
            ),
        ]
        | None
    ) = Field(
        default=None,
        max_length=24,
        description="Storage account; taken from the URI for https:// URIs or from the Secret when unset.",
    )
    useManagedIdentity: bool = Field(
        default=False,
        description="Authenticate with the pod's managed identity instead of a Secret.",
    )
    managedIdentityClientId: (
        Annotated[
            str,
            Checked(
                matches(
                    "^[0-9a-fA-F-]+$",
                    "must be a client ID: hexadecimal digits and '-', e.g. 00000000-0000-0000-0000-000000000000",
                )
            ),
        ]
        | None
    ) = Field(
        default=None,
        max_length=64,
        description="Client ID of a user-assigned managed identity; empty for the system-assigned one.",
    )


class Credentials(_Model):
    """Where the model store's credentials come from, and the store's non-secret options."""

    secretRef: LocalObjectReference | None = Field(
        default=None,
        description=(
            "Secret in the same namespace with the store's native keys (AWS_*, "
            "gcloud-application-credentials.json, AZURE_*) or keys already in rclone form. It must carry "
            "the label zenml.io/model-credentials=true unless the operator is told otherwise."
        ),
    )
    s3: S3Options | None = Field(default=None, description="Options for s3:// URIs.")
    gcs: GCSOptions | None = Field(default=None, description="Options for gs:// URIs.")
    azure: AzureOptions | None = Field(default=None, description="Options for az:// and blob https:// URIs.")


class CustomServer(_Model):
    """A custom model server image (implementation CUSTOM)."""

    image: Annotated[str, Checked(*image_reference("registry.example.com/team/iris:1.2"))] = Field(
        min_length=1,
        max_length=512,
        description="Container image of the model server.",
    )
    predictFunction: (
        Annotated[
            str,
            Checked(
                matches(
                    "^[A-Za-z_][A-Za-z0-9_]*([.][A-Za-z_][A-Za-z0-9_]*)+$",
                    "must be a dotted Python import path, e.g. iris.serving.predict",
                )
            ),
        ]
        | None
    ) = Field(
        default=None,
        max_length=512,
        description="Import path of the predict function, e.g. iris.serving.predict (passed as predict_func).",
    )
    imagePullSecrets: list[LocalObjectReference] = Field(
        default_factory=list,
        max_length=16,
        description="Secrets to pull the image with.",
    )


class Ingress(_Model):
    """How clients outside the cluster reach the model."""

    baseURL: Annotated[str, Checked(*plain_url("http://ingress.example.com"))] | None = Field(
        default=None,
        max_length=2048,
        description="Base URL of Seldon's ingress (Istio or Ambassador); defaults to the operator's setting.",
    )


class Provenance(_Model):
    """Where the model came from; becomes zenml.* labels on the SeldonDeployment."""

    pipelineName: str | None = Field(default=None, max_length=253, description="ZenML pipeline name.")
    runId: str | None = Field(default=None, max_length=253, description="ZenML pipeline run ID.")
    stepName: str | None = Field(
        default=None, max_length=253, description="ZenML step that deployed the model."
    )


class Autoscaling(_Model):
    """Horizontal autoscaling of the main predictor's model pods (Seldon's hpaSpec)."""

    minReplicas: int = Field(default=1, ge=1, le=1000, description="Fewest model server replicas.")
    maxReplicas: int = Field(ge=1, le=1000, description="Most model server replicas; at least minReplicas.")
    targetCPUUtilizationPercentage: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Average CPU use to hold, as a percentage of the model container's CPU request.",
    )
    targetMemoryUtilizationPercentage: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Average memory use to hold, as a percentage of the model container's memory request.",
    )


class CanaryMode(StrEnum):
    SPLIT = "split"
    SHADOW = "shadow"


class Canary(_Model):
    """A second predictor beside the main one, serving another version of the same model."""

    uri: Annotated[str, Checked(*MODEL_URI_CHECKS)] = Field(
        max_length=2048,
        description=(
            "Where the canary's model artifact lives; it must have model.uri's scheme (and, for Azure "
            "https:// URIs, its storage account), since it is read with the same credentials."
        ),
    )
    mode: CanaryMode = Field(
        default=CanaryMode.SPLIT,
        description=(
            "split: the canary answers trafficPercent of the requests, the main predictor the rest. "
            "shadow: the canary gets a copy of every request and its answers are discarded."
        ),
    )
    trafficPercent: int | None = Field(
        default=None,
        ge=1,
        le=99,
        description="Share of requests the canary answers (1..99), with mode split only.",
    )
    replicas: int = Field(
        default=1, ge=1, le=1000, description="Number of the canary's model server replicas."
    )


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(_Model):
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


class NodeSelectorRequirement(_Model):
    """A Kubernetes NodeSelectorRequirement: a node label or field compared with values."""

    key: str = Field(min_length=1, max_length=MAX_LABEL_KEY_LENGTH, description="The label or field key.")
    operator: NodeSelectorOperator = Field(description="In, NotIn, Exists, DoesNotExist, Gt or Lt.")
    values: _Values = Field(
        default_factory=list,
        description="Values; one integer for Gt and Lt, none for Exists and DoesNotExist.",
    )


class NodeSelectorTerm(_Model):
    """A Kubernetes NodeSelectorTerm: its requirements are ANDed."""

    matchExpressions: list[NodeSelectorRequirement] = Field(
        default_factory=list, max_length=_AFFINITY_LIST_LIMIT, description="Requirements on node labels."
    )
    matchFields: list[NodeSelectorRequirement] = Field(
        default_factory=list, max_length=_AFFINITY_LIST_LIMIT, description="Requirements on node fields."
    )


class NodeSelector(_Model):
    """A Kubernetes NodeSelector: its terms are ORed."""

    nodeSelectorTerms: list[NodeSelectorTerm] = Field(
        min_length=1, max_length=_AFFINITY_LIST_LIMIT, description="Terms, of which a node must match one."
    )


class PreferredSchedulingTerm(_Model):
    """A Kubernetes PreferredSchedulingTerm: a weighted preference for some nodes."""

    weight: int = Field(ge=1, le=100, description="Weight of the preference, 1..100.")
    preference: NodeSelectorTerm = Field(description="The nodes preferred.")


class NodeAffinity(_Model):
    """A Kubernetes NodeAffinity."""

    requiredDuringSchedulingIgnoredDuringExecution: NodeSelector | None = Field(
        default=None, description="Nodes the pods must run on."
    )
    preferredDuringSchedulingIgnoredDuringExecution: list[PreferredSchedulingTerm] = Field(
        default_factory=list, max_length=_AFFINITY_LIST_LIMIT, description="Nodes the pods prefer."
    )


class LabelSelectorRequirement(_Model):
    """A Kubernetes LabelSelectorRequirement."""

    key: str = Field(min_length=1, max_length=MAX_LABEL_KEY_LENGTH, description="The label key.")
    operator: LabelSelectorOperator = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: _Values = Field(default_factory=list, description="Values; none for Exists and DoesNotExist.")


class LabelSelector(_Model):
    """A Kubernetes LabelSelector: matchLabels and matchExpressions, ANDed."""

    matchLabels: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict, max_length=_AFFINITY_LIST_LIMIT, description="Labels to match exactly."
    )
    matchExpressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=_AFFINITY_LIST_LIMIT, description="Requirements on labels."
    )


class PodAffinityTerm(_Model):
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


class WeightedPodAffinityTerm(_Model):
    """A Kubernetes WeightedPodAffinityTerm."""

    weight: int = Field(ge=1, le=100, description="Weight of the preference, 1..100.")
    podAffinityTerm: PodAffinityTerm = Field(description="The term.")


class PodAffinity(_Model):
    """A Kubernetes PodAffinity (or PodAntiAffinity: the same shape)."""

    requiredDuringSchedulingIgnoredDuringExecution: list[PodAffinityTerm] = Field(
        default_factory=list, max_length=_AFFINITY_LIST_LIMIT, description="Terms the pods must satisfy."
    )
    preferredDuringSchedulingIgnoredDuringExecution: list[WeightedPodAffinityTerm] = Field(
        default_factory=list, max_length=_AFFINITY_LIST_LIMIT, description="Terms the pods prefer to satisfy."
    )


class Affinity(_Model):
    """A Kubernetes Affinity, typed as the core API (and Seldon's CRD) has it, so a mistake is refused at
    apply time. Label keys and values inside it are left to Kubernetes to check."""

    nodeAffinity: NodeAffinity | None = Field(
        default=None, description="A Kubernetes NodeAffinity: the nodes the model pods run on."
    )
    podAffinity: PodAffinity | None = Field(default=None, description="Pods to run the model pods near.")
    podAntiAffinity: PodAffinity | None = Field(
        default=None, description="Pods to keep the model pods away from, e.g. each other."
    )


class Scheduling(_Model):
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


class EnvVar(_Model):
    """An environment variable of the model container (a plain value: no references to other objects)."""

    name: Annotated[
        str,
        Checked(
            matches(
                ENV_NAME_PATTERN,
                "must be an environment variable name: letters, digits, '_', '-' and '.', not beginning "
                "with a digit, e.g. LOG_LEVEL",
            ),
            lacks(
                f"^{RCLONE_ENV_PREFIX}",
                f"names starting with {RCLONE_ENV_PREFIX} are reserved for the operator's rclone credentials",
            ),
        ),
    ] = Field(
        min_length=1,
        max_length=253,
        description=f"Variable name; names starting with {RCLONE_ENV_PREFIX} are the operator's.",
    )
    value: Annotated[str, Checked(no_variable_reference("the model container's environment"))] = Field(
        default="",
        max_length=4096,
        description="Variable value; it may not contain $( or $$ (Kubernetes would expand them).",
    )


class ZenModelDeploymentSpec(_Model):
    """A model served by Seldon Core."""

    model: ModelSpec = Field(description="The model to serve.")
    replicas: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description=(
            "Number of model server replicas (default 1). With autoscaling it may be left out (it is then "
            "minReplicas) or must lie within minReplicas..maxReplicas; the HorizontalPodAutoscaler sets "
            "the running count."
        ),
    )
    resources: ResourceRequirements | None = Field(
        default=None,
        description="Resources of the model container.",
    )
    serviceAccountName: Annotated[str, Checked(*dns_subdomain("model-reader"))] | None = Field(
        default=None,
        max_length=253,
        description="ServiceAccount the model pods run as (e.g. for IRSA or workload identity).",
    )
    credentials: Credentials | None = Field(
        default=None,
        description="Credentials of the model store; omit for public or pvc:// models.",
    )
    custom: CustomServer | None = Field(
        default=None, description="Custom server; only with implementation CUSTOM."
    )
    ingress: Ingress | None = Field(default=None, description="Ingress settings for the prediction URL.")
    provenance: Provenance | None = Field(default=None, description="ZenML provenance, as labels.")
    autoscaling: Autoscaling | None = Field(
        default=None, description="Autoscaling of the main predictor's model pods (Seldon's hpaSpec)."
    )
    canary: Canary | None = Field(
        default=None,
        description=(
            "A canary or shadow predictor beside the main one; it uses the main model's implementation, "
            "protocol, parameters and credentials. Traffic splitting and shadowing need Seldon with Istio "
            "or Ambassador."
        ),
    )
    scheduling: Scheduling | None = Field(
        default=None, description="nodeSelector, tolerations and affinity of every predictor's model pods."
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=64,
        description="Environment variables of every predictor's model container.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )

    @field_validator("env")
    @classmethod
    def _unique_env_names(cls, env: list[EnvVar]) -> list[EnvVar]:
        # The CRD says the same with x-kubernetes-list-map-keys: [name].
        names = [variable.name for variable in env]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise invalid(f"duplicate names {duplicates}")
        return env

    @property
    def desired_replicas(self) -> int:
        """Replicas of the main predictor: as written, else autoscaling's minimum, else 1."""
        if self.replicas is not None:
            return self.replicas
        return self.autoscaling.minReplicas if self.autoscaling is not None else 1

    @model_validator(mode="after")
    def _cross_field_rules(self) -> ZenModelDeploymentSpec:
        for rule in CEL_RULES:
            if not rule.holds(self):
                raise invalid(f"{rule.field}: {rule.message}")
        return self


class CrossFieldRule:
    """A rule checked twice from one definition: as CEL by the apiserver, as Python by `render`."""

    def __init__(self, field: str, cel: str, message: str, holds: Any) -> None:
        self.field, self.cel, self.message, self.holds = field, cel, message, holds


def _scheme(uri: str) -> str:
    return uri.split("://", 1)[0]


NODE_SELECTOR_KEY_CHECKS = label_key("nvidia.com/gpu.present")
_KEY = Expr("k", lambda key: key)

# Schemes whose URIs a canary may take for each main model URI: the same, so one rclone remote serves both.
_URI_SCHEMES = ("s3://", "gs://", "az://", "https://", "pvc://")


def _same_scheme(main: str, canary: str) -> bool:
    return all(main.startswith(p) == canary.startswith(p) for p in _URI_SCHEMES)


def _azure_account(uri: str) -> str:
    """The host of an https:// blob URI, which names the storage account (as CEL reads it too)."""
    return uri.split("/")[2]


def _protocol_rule_cel() -> str:
    clauses = [
        f"(self.model.implementation == '{impl.value}' && "
        f"self.model.protocol in [{', '.join(repr(p.value) for p in protocols)}])"
        for impl, protocols in PROTOCOLS_BY_IMPLEMENTATION.items()
    ]
    # `protocol` has a schema default, so it is always set when the rule runs.
    return " || ".join(clauses)


CEL_RULES: tuple[CrossFieldRule, ...] = (
    CrossFieldRule(
        "spec.custom",
        "self.model.implementation != 'CUSTOM' || has(self.custom)",
        "implementation CUSTOM needs custom.image",
        lambda s: s.model.implementation != Implementation.CUSTOM or s.custom is not None,
    ),
    CrossFieldRule(
        "spec.custom",
        "self.model.implementation == 'CUSTOM' || !has(self.custom)",
        "custom is only allowed with implementation CUSTOM",
        lambda s: s.model.implementation == Implementation.CUSTOM or s.custom is None,
    ),
    CrossFieldRule(
        "spec.model.protocol",
        _protocol_rule_cel(),
        "the protocol must fit the implementation: "
        + "; ".join(
            f"{impl.value}: {', '.join(p.value for p in ps)}"
            for impl, ps in PROTOCOLS_BY_IMPLEMENTATION.items()
            if impl is not Implementation.CUSTOM
        ),
        lambda s: s.model.protocol in PROTOCOLS_BY_IMPLEMENTATION[s.model.implementation],
    ),
    CrossFieldRule(
        "spec.credentials",
        "!self.model.uri.startsWith('pvc://') || !has(self.credentials)",
        "pvc:// models need no credentials",
        lambda s: _scheme(s.model.uri) != "pvc" or s.credentials is None,
    ),
    CrossFieldRule(
        "spec.credentials.s3",
        "!has(self.credentials) || !has(self.credentials.s3) || self.model.uri.startsWith('s3://')",
        "credentials.s3 applies only to s3:// model URIs",
        lambda s: s.credentials is None or s.credentials.s3 is None or _scheme(s.model.uri) == "s3",
    ),
    CrossFieldRule(
        "spec.credentials.gcs",
        "!has(self.credentials) || !has(self.credentials.gcs) || self.model.uri.startsWith('gs://')",
        "credentials.gcs applies only to gs:// model URIs",
        lambda s: s.credentials is None or s.credentials.gcs is None or _scheme(s.model.uri) == "gs",
    ),
    CrossFieldRule(
        "spec.credentials.azure",
        "!has(self.credentials) || !has(self.credentials.azure) || self.model.uri.startsWith('az://') "
        "|| self.model.uri.startsWith('https://')",
        "credentials.azure applies only to az:// and Azure Blob https:// model URIs",
        lambda s: (
            s.credentials is None or s.credentials.azure is None or _scheme(s.model.uri) in ("az", "https")
        ),
    ),
    CrossFieldRule(
        "spec.autoscaling.maxReplicas",
        "!has(self.autoscaling) || self.autoscaling.minReplicas <= self.autoscaling.maxReplicas",
        "must be at least autoscaling.minReplicas",
        lambda s: s.autoscaling is None or s.autoscaling.minReplicas <= s.autoscaling.maxReplicas,
    ),
    CrossFieldRule(
        "spec.autoscaling",
        "!has(self.autoscaling) || has(self.autoscaling.targetCPUUtilizationPercentage) "
        "|| has(self.autoscaling.targetMemoryUtilizationPercentage)",
        "needs targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage",
        lambda s: (
            s.autoscaling is None
            or s.autoscaling.targetCPUUtilizationPercentage is not None
            or s.autoscaling.targetMemoryUtilizationPercentage is not None
        ),
    ),
    CrossFieldRule(
        "spec.replicas",
        "!has(self.autoscaling) || !has(self.replicas) || "
        "(self.replicas >= self.autoscaling.minReplicas && self.replicas <= self.autoscaling.maxReplicas)",
        "with autoscaling, replicas is the starting count and must lie within minReplicas..maxReplicas "
        "(or be left out)",
        lambda s: (
            s.autoscaling is None
            or s.replicas is None
            or s.autoscaling.minReplicas <= s.replicas <= s.autoscaling.maxReplicas
        ),
    ),
    CrossFieldRule(
        "spec.canary.uri",
        "!has(self.canary) || ("
        + " && ".join(
            f"self.model.uri.startsWith('{p}') == self.canary.uri.startsWith('{p}')" for p in _URI_SCHEMES
        )
        + ")",
        "must have model.uri's scheme: the canary reads its model with the same credentials",
        lambda s: s.canary is None or _same_scheme(s.model.uri, s.canary.uri),
    ),
    CrossFieldRule(
        "spec.canary.uri",
        "!has(self.canary) || !self.model.uri.startsWith('https://') || !self.canary.uri.startsWith('https://') "
        "|| self.canary.uri.split('/')[2] == self.model.uri.split('/')[2]",
        "must name model.uri's Azure storage account: the canary reads its model with the same credentials",
        lambda s: (
            s.canary is None
            or not (s.model.uri.startswith("https://") and s.canary.uri.startswith("https://"))
            or _azure_account(s.canary.uri) == _azure_account(s.model.uri)
        ),
    ),
    CrossFieldRule(
        "spec.canary.trafficPercent",
        "!has(self.canary) || self.canary.mode != 'split' || has(self.canary.trafficPercent)",
        "a split canary needs trafficPercent (1..99)",
        lambda s: (
            s.canary is None or s.canary.mode is not CanaryMode.SPLIT or s.canary.trafficPercent is not None
        ),
    ),
    CrossFieldRule(
        "spec.canary.trafficPercent",
        "!has(self.canary) || self.canary.mode != 'shadow' || !has(self.canary.trafficPercent)",
        "a shadow takes no trafficPercent: it gets a copy of every request",
        lambda s: (
            s.canary is None or s.canary.mode is not CanaryMode.SHADOW or s.canary.trafficPercent is None
        ),
    ),
    CrossFieldRule(
        "spec.scheduling.nodeSelector",
        "!has(self.scheduling) || !has(self.scheduling.nodeSelector) || self.scheduling.nodeSelector.all(k, "
        f"k.size() <= {MAX_LABEL_KEY_LENGTH} && "
        + " && ".join(f"({check.holds.on(_KEY).cel})" for check in NODE_SELECTOR_KEY_CHECKS)
        + ")",
        "keys must be label keys (an optional DNS subdomain and '/', then a name of at most 63 letters, "
        "digits, '-', '_' and '.'), e.g. nvidia.com/gpu.present",
        lambda s: (
            s.scheduling is None
            or all(
                len(key) <= MAX_LABEL_KEY_LENGTH and first_failure(NODE_SELECTOR_KEY_CHECKS, key) is None
                for key in s.scheduling.nodeSelector
            )
        ),
    ),
)

# Rules on the whole object (metadata.name), enforced by the apiserver only: `render` checks them too.
NAME_RULE = CrossFieldRule(
    "metadata.name",
    f"self.metadata.name.size() <= {MAX_NAME_LENGTH} && self.metadata.name.matches('{NAME_PATTERN}')",
    f"must be a DNS-1035 label of at most {MAX_NAME_LENGTH} characters (Seldon derives Service names from it)",
    lambda name: len(name) <= MAX_NAME_LENGTH and re.fullmatch(NAME_PATTERN, name) is not None,
)


class StatusCondition(_Model):
    """A condition, per the Kubernetes API conventions."""

    type: str = Field(description="CredentialsReady, SeldonDeploymentReady or Ready.")
    status: str = Field(description="True, False or Unknown.")
    reason: str = Field(description="Machine-readable reason for the condition's last transition, CamelCase.")
    message: str = Field(description="Human-readable details.")
    lastTransitionTime: str = Field(description="When the status last changed (RFC 3339).")
    observedGeneration: int = Field(description="The .metadata.generation the condition was set from.")


class CanaryStatus(_Model):
    """The canary predictor, as Seldon Core runs it."""

    uri: str = Field(description="The canary's model URI.")
    mode: str = Field(description="split or shadow.")
    trafficPercent: int | None = Field(
        default=None, description="Share of requests the canary answers (split)."
    )
    traffic: str = Field(description="The canary's share, as `kubectl get` shows it: e.g. 10%, or shadow.")
    replicas: int = Field(description="Desired canary replicas.")
    availableReplicas: int = Field(description="Canary replicas available, from Seldon's Deployment status.")


class ZenModelDeploymentStatus(_Model):
    """What the operator observed, mirrored from Seldon Core."""

    observedGeneration: int | None = Field(
        default=None, description="The .metadata.generation last reconciled."
    )
    state: str | None = Field(
        default=None,
        description=(
            "Seldon's state, mirrored: Unknown, Creating, Available or Failed; Stopped when replicas is 0 "
            "on purpose."
        ),
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
