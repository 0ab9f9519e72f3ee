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
    Check,
    Checked,
    Expr,
    dns_label,
    dns_subdomain,
    image_reference,
    invalid,
    matches,
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


class ZenModelDeploymentSpec(_Model):
    """A model served by Seldon Core."""

    model: ModelSpec = Field(description="The model to serve.")
    replicas: int = Field(default=1, ge=0, le=1000, description="Number of model server replicas.")
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


class ZenModelDeploymentStatus(_Model):
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
    replicas: int | None = Field(default=None, description="Desired model server replicas.")
    availableReplicas: int | None = Field(default=None, description="Model server replicas available.")
    seldonDeploymentName: str | None = Field(default=None, description="Name of the owned SeldonDeployment.")
    credentialsSecretName: str | None = Field(
        default=None, description="Name of the generated rclone Secret."
    )
    conditions: list[StatusCondition] = Field(
        default_factory=list,
        description="CredentialsReady, SeldonDeploymentReady and Ready.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
