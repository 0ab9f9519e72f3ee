"""The aiohttp carrier takes its TLS and proxy from the official client's configuration."""

from __future__ import annotations

import ssl

import certifi
import pytest
from kubernetes import client

from zenmodel_operator.kube import proxy_of, ssl_context


def configuration(**options: object) -> client.Configuration:
    return client.Configuration(host="https://10.0.0.1:6443", **options)  # type: ignore[arg-type]


def test_tls_verifies_the_server_by_default_against_the_configured_ca() -> None:
    # Any PEM bundle will do as the CA: certifi's comes with the official client.
    context = ssl_context(configuration(ssl_ca_cert=certifi.where()))
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs()


def test_tls_verification_and_hostname_checks_follow_the_configuration() -> None:
    unverified = ssl_context(configuration(verify_ssl=False))
    assert unverified.verify_mode is ssl.CERT_NONE and not unverified.check_hostname
    any_name = ssl_context(configuration(assert_hostname=False))
    assert any_name.verify_mode is ssl.CERT_REQUIRED and not any_name.check_hostname


def test_the_proxy_is_used_unless_the_host_bypasses_it() -> None:
    assert proxy_of(configuration(proxy="http://proxy:3128", no_proxy="")) == "http://proxy:3128"
    assert proxy_of(configuration(proxy="http://proxy:3128", no_proxy="10.0.0.1")) is None


def test_a_socks_proxy_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="SOCKS"):
        proxy_of(configuration(proxy="socks5://proxy:1080", no_proxy=""))
