"""zenmodel-operator: serve ZenML models on Seldon Core from a declarative ZenModelDeployment."""

__version__ = "0.1.0"
