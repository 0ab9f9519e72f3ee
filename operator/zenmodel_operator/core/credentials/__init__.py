"""From the Secret a user references to the rclone config that Seldon's storage initializer reads.

`engine` holds what all stores share; `s3`, `gcs` and `azure` each hold one store's keys and rules.
"""

from .azure import AZURE_EMULATOR_ACCOUNT, AZURE_EMULATOR_KEY
from .base import FAILURE_REASONS, CredentialsError, SourceSecret
from .engine import credentials_hash, rclone_config

__all__ = [
    "AZURE_EMULATOR_ACCOUNT",
    "AZURE_EMULATOR_KEY",
    "FAILURE_REASONS",
    "CredentialsError",
    "SourceSecret",
    "credentials_hash",
    "rclone_config",
]
