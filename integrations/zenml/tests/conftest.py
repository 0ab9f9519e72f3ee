"""Every test runs ZenML offline in a store of its own: no analytics, a throwaway configuration directory
(set before zenml is first imported, which reads them once). ZenML's source root is this directory, as a
user's project would be: the pipeline module is `iris_pipeline`, and zenmodel_zenml (under ../src, outside
the root) resolves as the installed distribution it is, not as user code."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ["ZENML_ANALYTICS_OPT_IN"] = "false"
os.environ["ZENML_CONFIG_PATH"] = tempfile.mkdtemp(prefix="zenml-config-")
os.environ["AUTO_OPEN_DASHBOARD"] = "false"

from zenml.utils import source_utils

source_utils.set_custom_source_root(str(Path(__file__).resolve().parent))
