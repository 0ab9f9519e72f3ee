"""The aiohttp carrier takes its TLS, proxy and authentication from the official client's configuration."""

from __future__ import annotations

import ssl

import certifi
import pytest
from kubernetes import client

from zenmodel_operator.runtime.transport import authenticated, proxy_of, ssl_context


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


def test_each_request_carries_a_freshly_refreshed_token_and_the_user_agent() -> None:
    # As in-cluster: the refresh hook re-reads the ServiceAccount token before each request.
    tokens = iter(["first", "rotated"])
    config = configuration(api_key_prefix={"authorization": "Bearer"})

    def refresh(config: client.Configuration) -> None:
        config.api_key["authorization"] = next(tokens)

    config.refresh_api_key_hook = refresh  # type: ignore[assignment]
    api = client.ApiClient(config)
    api.user_agent = "zenmodel-operator/test"
    query = [("labelSelector", "zenml.io/credentials in (a,b)"), ("limit", "250")]

    url, headers = authenticated(api, "/api/v1/namespaces/ns/secrets", query, {"Accept": "application/json"})

    assert str(url) == (
        "https://10.0.0.1:6443/api/v1/namespaces/ns/secrets"
        "?labelSelector=zenml.io%2Fcredentials+in+%28a%2Cb%29&limit=250"
    )
    assert url.query["labelSelector"] == "zenml.io/credentials in (a,b)"
    assert headers == {
        "Accept": "application/json",
        "User-Agent": "zenmodel-operator/test",
        "authorization": "Bearer first",
    }
    assert authenticated(api, "/readyz", None, {})[1]["authorization"] == "Bearer rotated"


def test_a_client_certificate_alone_sends_no_authorization_header() -> None:
    url, headers = authenticated(client.ApiClient(configuration(cert_file="c.crt")), "/readyz", None, {})
    assert str(url) == "https://10.0.0.1:6443/readyz"
    assert "authorization" not in headers
