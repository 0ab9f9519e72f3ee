"""Log output: one JSON object a line on request, and kopf never below INFO (its DEBUG dumps events)."""

from __future__ import annotations

import json
import logging

import pytest

from zenmodel_operator.logs import configure_logging


def test_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    logging.getLogger("zenmodel_operator.reconcile").info("reconciled %s/%s", "models", "iris")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("zenmodel_operator.workqueue").exception("reconcile failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["message"] == "reconciled models/iris"
    assert lines[0]["level"] == "INFO" and lines[0]["logger"] == "zenmodel_operator.reconcile"
    assert "ValueError: boom" in lines[1]["exception"]


def test_kopf_stays_at_info_even_when_debugging() -> None:
    configure_logging("DEBUG", "text")
    assert logging.getLogger("zenmodel_operator").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("kopf").getEffectiveLevel() == logging.INFO
    assert logging.getLogger("kopf.objects").getEffectiveLevel() == logging.WARNING
