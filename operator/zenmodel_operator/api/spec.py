"""The ZenModelDeployment API as pydantic models: the one source of truth for the CRD's schema.

Every field carries a description (it becomes `kubectl explain` text). Cross-field rules are written once
here (`CEL_RULES`), in `validation`'s framework, which gives the CRD their CEL and pydantic their Python,
so `render` (offline) and the apiserver (at `kubectl apply` time) refuse the same objects.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import (
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .model import ApiModel
from .scheduling import Scheduling
from .uris import AZURE_ACCOUNT_PATTERN, MODEL_URI_CHECKS, URI_PREFIXES
from .validation import (
    KEY,
    MAX_LABEL_KEY_LENGTH,
    Check,
    Checked,
    CrossFieldRule,
    Expr,
    all_of,
    any_of,
    at_least,
    at_most,
    cross_field,
    differs,
    dns_label,
    dns_subdomain,
    equals,
    every_key,
    field,
    fullmatches,
    grouped,
    has,
    image_reference,
    invalid,
    label_key,
    lacks,
    matches,
    no_variable_reference,
    not_,
    one_of,
    plain_url,
    same,
    size_at_most,
    starts_with,
    url_host,
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


class Executor(StrEnum):
    """Whether Seldon Core runs its executor (seldon-container-engine) in front of the model server."""

    ENABLED = "Enabled"
    DISABLED = "Disabled"


# Where the model server itself serves the paths the executor would (so Seldon can leave it out): MLServer
# and Triton serve the V2 inference protocol at the very paths the executor forwards. Under the seldon and
# tensorflow protocols the executor is the one serving the documented paths.
PROTOCOLS_WITHOUT_EXECUTOR: tuple[Protocol, ...] = (Protocol.V2,)


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


class Parameter(ApiModel):
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


class ModelSpec(ApiModel):
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


class ResourceRequirements(ApiModel):
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


class LocalObjectReference(ApiModel):
    """A reference to an object in the same namespace."""

    name: Annotated[str, Checked(*dns_subdomain("s3-creds"))] = Field(
        min_length=1,
        max_length=253,
        description="Name of the object in the ZenModelDeployment's namespace.",
    )


class S3Options(ApiModel):
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


class GCSOptions(ApiModel):
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


class AzureOptions(ApiModel):
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


class Credentials(ApiModel):
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


class CustomServer(ApiModel):
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


class Ingress(ApiModel):
    """How clients outside the cluster reach the model."""

    baseURL: Annotated[str, Checked(*plain_url("http://ingress.example.com"))] | None = Field(
        default=None,
        max_length=2048,
        description="Base URL of Seldon's ingress (Istio or Ambassador); defaults to the operator's setting.",
    )


class Provenance(ApiModel):
    """Where the model came from; becomes zenml.* labels on the SeldonDeployment."""

    pipelineName: str | None = Field(default=None, max_length=253, description="ZenML pipeline name.")
    runId: str | None = Field(default=None, max_length=253, description="ZenML pipeline run ID.")
    stepName: str | None = Field(
        default=None, max_length=253, description="ZenML step that deployed the model."
    )


class Autoscaling(ApiModel):
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


class Canary(ApiModel):
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


class EnvVar(ApiModel):
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


class ZenModelDeploymentSpec(ApiModel):
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
    executor: Executor = Field(
        default=Executor.ENABLED,
        description=(
            "Enabled (default): Seldon Core runs its executor (seldon-container-engine) in every model pod, "
            "as a proxy in front of the model server; the predictor's Service listens on the executor's port "
            "(8000 by default). Disabled: Seldon leaves the executor out (seldon.io/no-engine on every "
            "predictor), one container and one network hop fewer; the predictor's Service then listens on "
            "the model server's own port (9000 by default) and the prediction paths stay the same. Disabled "
            "needs model.protocol v2, whose paths MLServer and Triton serve themselves."
        ),
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


NODE_SELECTOR_KEY_CHECKS = label_key("nvidia.com/gpu.present")

_IMPLEMENTATION = field("model.implementation")
_PROTOCOL = field("model.protocol")
_URI = field("model.uri")
_CANARY_URI = field("canary.uri")
_MIN_REPLICAS = field("autoscaling.minReplicas")
_MAX_REPLICAS = field("autoscaling.maxReplicas")


def _credentials_only_for(store: str, *prefixes: str) -> Expr:
    """credentials.<store> is set only for model URIs that begin with one of `prefixes`."""
    return any_of(
        not_(has("credentials")),
        not_(has(f"credentials.{store}")),
        *(starts_with(_URI, prefix) for prefix in prefixes),
    )


CEL_RULES: tuple[CrossFieldRule, ...] = (
    cross_field(
        "spec.custom",
        any_of(differs(_IMPLEMENTATION, Implementation.CUSTOM), has("custom")),
        "implementation CUSTOM needs custom.image",
    ),
    cross_field(
        "spec.custom",
        any_of(equals(_IMPLEMENTATION, Implementation.CUSTOM), not_(has("custom"))),
        "custom is only allowed with implementation CUSTOM",
    ),
    cross_field(
        "spec.model.protocol",
        # `protocol` has a schema default, so it is always set when the rule runs.
        any_of(
            *(
                grouped(all_of(equals(_IMPLEMENTATION, impl), one_of(_PROTOCOL, protocols)))
                for impl, protocols in PROTOCOLS_BY_IMPLEMENTATION.items()
            )
        ),
        "the protocol must fit the implementation: "
        + "; ".join(
            f"{impl.value}: {', '.join(p.value for p in ps)}"
            for impl, ps in PROTOCOLS_BY_IMPLEMENTATION.items()
            if impl is not Implementation.CUSTOM
        ),
    ),
    cross_field(
        "spec.executor",
        # Both fields have schema defaults, so they are always set when the rule runs.
        any_of(differs(field("executor"), Executor.DISABLED), one_of(_PROTOCOL, PROTOCOLS_WITHOUT_EXECUTOR)),
        f"Disabled needs model.protocol {' or '.join(PROTOCOLS_WITHOUT_EXECUTOR)}: under the "
        f"{' and '.join(p for p in Protocol if p not in PROTOCOLS_WITHOUT_EXECUTOR)} protocols the executor is "
        "what serves the prediction paths",
    ),
    cross_field(
        "spec.credentials",
        any_of(not_(starts_with(_URI, "pvc://")), not_(has("credentials"))),
        "pvc:// models need no credentials",
    ),
    cross_field(
        "spec.credentials.s3",
        _credentials_only_for("s3", "s3://"),
        "credentials.s3 applies only to s3:// model URIs",
    ),
    cross_field(
        "spec.credentials.gcs",
        _credentials_only_for("gcs", "gs://"),
        "credentials.gcs applies only to gs:// model URIs",
    ),
    cross_field(
        "spec.credentials.azure",
        _credentials_only_for("azure", "az://", "https://"),
        "credentials.azure applies only to az:// and Azure Blob https:// model URIs",
    ),
    cross_field(
        "spec.autoscaling.maxReplicas",
        any_of(not_(has("autoscaling")), at_most(_MIN_REPLICAS, _MAX_REPLICAS)),
        "must be at least autoscaling.minReplicas",
    ),
    cross_field(
        "spec.autoscaling",
        any_of(
            not_(has("autoscaling")),
            has("autoscaling.targetCPUUtilizationPercentage"),
            has("autoscaling.targetMemoryUtilizationPercentage"),
        ),
        "needs targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage",
    ),
    cross_field(
        "spec.replicas",
        any_of(
            not_(has("autoscaling")),
            not_(has("replicas")),
            grouped(
                all_of(at_least(field("replicas"), _MIN_REPLICAS), at_most(field("replicas"), _MAX_REPLICAS))
            ),
        ),
        "with autoscaling, replicas is the starting count and must lie within minReplicas..maxReplicas "
        "(or be left out)",
    ),
    cross_field(
        "spec.canary.uri",
        any_of(
            not_(has("canary")),
            # The same scheme as the main model's URI, so one rclone remote serves both.
            grouped(all_of(*(same(starts_with(_URI, p), starts_with(_CANARY_URI, p)) for p in URI_PREFIXES))),
        ),
        "must have model.uri's scheme: the canary reads its model with the same credentials",
    ),
    cross_field(
        "spec.canary.uri",
        any_of(
            not_(has("canary")),
            not_(starts_with(_URI, "https://")),
            not_(starts_with(_CANARY_URI, "https://")),
            # The host of an https:// blob URI names the storage account.
            same(url_host(_CANARY_URI), url_host(_URI)),
        ),
        "must name model.uri's Azure storage account: the canary reads its model with the same credentials",
    ),
    cross_field(
        "spec.canary.trafficPercent",
        any_of(
            not_(has("canary")), differs(field("canary.mode"), CanaryMode.SPLIT), has("canary.trafficPercent")
        ),
        "a split canary needs trafficPercent (1..99)",
    ),
    cross_field(
        "spec.canary.trafficPercent",
        any_of(
            not_(has("canary")),
            differs(field("canary.mode"), CanaryMode.SHADOW),
            not_(has("canary.trafficPercent")),
        ),
        "a shadow takes no trafficPercent: it gets a copy of every request",
    ),
    cross_field(
        "spec.scheduling.nodeSelector",
        any_of(
            not_(has("scheduling")),
            not_(has("scheduling.nodeSelector")),
            every_key(
                field("scheduling.nodeSelector"),
                all_of(
                    size_at_most(KEY, MAX_LABEL_KEY_LENGTH),
                    *(grouped(check.holds.on(KEY)) for check in NODE_SELECTOR_KEY_CHECKS),
                ),
            ),
        ),
        "keys must be label keys (an optional DNS subdomain and '/', then a name of at most 63 letters, "
        "digits, '-', '_' and '.'), e.g. nvidia.com/gpu.present",
    ),
)

# Rules on the whole object (metadata.name), enforced by the apiserver only: `render` checks them too, on
# the name alone.
_NAME = Expr("self.metadata.name", lambda name: name)
NAME_RULE = cross_field(
    "metadata.name",
    all_of(size_at_most(_NAME, MAX_NAME_LENGTH), fullmatches(_NAME, NAME_PATTERN)),
    f"must be a DNS-1035 label of at most {MAX_NAME_LENGTH} characters (Seldon derives Service names from it)",
)
