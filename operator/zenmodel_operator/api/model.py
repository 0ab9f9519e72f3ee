"""The base of the API's pydantic models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ApiModel(BaseModel):
    """Unknown fields are refused and a parsed object never changes, as the apiserver's structural schema
    and the reconcile need."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, use_enum_values=False)
