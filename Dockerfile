# syntax=docker/dockerfile:1
# The zenmodel-operator image: a wheel built in a throwaway stage, installed into a slim Python runtime that
# runs as an unprivileged numeric user (the chart's pod runs under the "restricted" Pod Security Standard).
#
#   docker build -t zenmodel-operator:0.1.0 .

FROM python:3.11.14-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
# The operator's wheel and the wheels of everything it depends on, so the runtime stage installs offline.
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="zenmodel-operator" \
      org.opencontainers.image.description="Serves ZenML models on Seldon Core from ZenModelDeployment resources" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Only wheels, only from the builder (mounted, so they are not kept in a layer); then pip itself goes, as
# nothing at runtime installs anything.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/zenmodel_operator-*.whl \
    && pip uninstall --yes pip setuptools wheel
USER 65532:65532
# 8080: Prometheus /metrics; 8081: /healthz.
EXPOSE 8080 8081
ENTRYPOINT ["zenmodel-operator", "run"]
