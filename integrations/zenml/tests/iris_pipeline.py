"""The pipeline a ZenML user writes: train a tiny scikit-learn model, serve it with the zenmodel step."""

from __future__ import annotations

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from zenml import pipeline, step

from zenmodel_zenml import ZenModelDeploymentConfig, zenmodel_model_deployer_step


@step
def train() -> LogisticRegression:
    features, labels = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=500).fit(features, labels)


@pipeline(enable_cache=True)
def serve_iris(config: ZenModelDeploymentConfig) -> None:
    zenmodel_model_deployer_step(model=train(), service_config=config, timeout=120)
