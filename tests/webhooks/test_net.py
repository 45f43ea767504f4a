"""SSRF protection: the URL rules, the address policy, and delivery pinned to the address that was checked."""

from __future__ import annotations

import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.webhooks_net import (
    AddressPolicy,
    WebhookTargetRefused,
    WebhookTargetUnresolvable,
    post,
    resolve_target,
)
from tests.conftest import reserve_port
from tests.harness import serve
from tests.webhooks.conftest import Receiver, receiver_app

STRICT = AddressPolicy()
LOOSE = AddressPolicy(allow_private=True)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "10.0.0.1", "10.255.255.254", "172.16.0.1", "192.168.1.1", "169.254.169.254",
    "169.254.0.1", "100.64.0.1", "0.0.0.0", "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::1", "64:ff9b::a9fe:a9fe", "224.0.0.1", "ff02::1",
])
def test_private_loopback_link_local_and_friends_are_refused(address: str) -> None:
    assert STRICT.refusal(address) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert STRICT.refusal(address) is None


def test_admin_settings_open_private_addresses() -> None:
    assert LOOSE.refusal("127.0.0.1") is None
    assert LOOSE.refusal("10.1.2.3") is None
    assert LOOSE.refusal("::1") is None
    assert LOOSE.refusal("0.0.0.0") is not None, "never the unspecified address"
    assert LOOSE.refusal("224.0.0.1") is not None, "never multicast"
    some = AddressPolicy(allowed=(ipaddress.ip_network("10.20.0.0/16"),))
    assert some.refusal("10.20.3.4") is None
    assert some.refusal("10.21.0.1") is not None
    assert some.refusal("127.0.0.1") is not None


@given(st.ip_addresses(network="10.0.0.0/8") | st.ip_addresses(network="127.0.0.0/8")
       | st.ip_addresses(network="169.254.0.0/16") | st.ip_addresses(network="192.168.0.0/16")
       | st.ip_addresses(network="172.16.0.0/12") | st.ip_addresses(network="fc00::/7")
       | st.ip_addresses(network="fe80::/10"))
def test_every_private_address_is_refused_also_wrapped_in_ipv6(address: ipaddress.IPv4Address
                                                               | ipaddress.IPv6Address) -> None:
    assert STRICT.refusal(address) is not None
    if isinstance(address, ipaddress.IPv4Address):
        assert STRICT.refusal(ipaddress.IPv6Address(f"::ffff:{address}")) is not None


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://example.com/",
                                 "javascript:alert(1)", "ws://example.com/", "http://", "//example.com/x",
                                 "http://user:pw@example.com/"])
async def test_only_plain_http_urls(url: str) -> None:
    with pytest.raises(WebhookTargetRefused):
        await resolve_target(url, LOOSE)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/", "http://10.1.2.3/", "http://169.254.169.254/latest/",
                                 "http://[::1]:8080/", "http://localhost/", "http://2130706433/",
                                 "http://0x7f000001/", "https://[::ffff:127.0.0.1]/"])
async def test_loopback_private_link_local_urls_are_refused(url: str) -> None:
    with pytest.raises(WebhookTargetRefused) as err:
        await resolve_target(url, STRICT)
    assert not isinstance(err.value, WebhookTargetUnresolvable)


async def test_a_name_with_any_refused_address_is_refused() -> None:
    async def mixed(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.7"]

    with pytest.raises(WebhookTargetRefused, match="10.0.0.7"):
        await resolve_target("https://hooks.example/x", STRICT, mixed)


async def test_a_name_that_does_not_resolve_is_unresolvable() -> None:
    with pytest.raises(WebhookTargetUnresolvable):
        await resolve_target("http://no-such-host.invalid/", STRICT)


async def test_the_request_goes_to_the_checked_address_with_the_name_in_host(receiver: Receiver) -> None:
    """DNS rebinding: the name is resolved once, checked, and the connection goes to that address."""
    port = int(receiver.url.rsplit(":", 1)[1])
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    target = await resolve_target(f"http://hooks.example:{port}/pinned?x=1", LOOSE, rebinding)
    assert target.address == "127.0.0.1"
    assert str(target.url) == f"http://127.0.0.1:{port}/pinned?x=1"
    assert target.host_header == f"hooks.example:{port}"
    assert target.server_name is None
    async with httpx.AsyncClient(trust_env=False) as http:
        status = await post(http, target, b"{}", {"Content-Type": "application/json"}, timeout=5)
    assert status == 204
    (got,) = receiver.at("/pinned")
    assert got.headers["host"] == f"hooks.example:{port}"
    # The next lookup answers a private address: refused before any connection.
    with pytest.raises(WebhookTargetRefused):
        await resolve_target(f"http://hooks.example:{port}/pinned", STRICT, rebinding)


async def test_tls_keeps_the_name_for_sni_and_certificate_checks() -> None:
    async def public(host: str, port: int) -> list[str]:
        return ["93.184.215.14"]

    target = await resolve_target("https://hooks.example/x", STRICT, public)
    assert str(target.url) == "https://93.184.215.14/x"
    assert target.server_name == "hooks.example"
    assert target.host_header == "hooks.example"


def _tls_files(tmp: Path, name: str) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for `name` it signed (cryptography comes with moto, a dev dependency)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gsf test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


async def test_https_to_the_pinned_address_checks_the_certificate_against_the_name(tmp_path: Path) -> None:
    ca, cert, key = _tls_files(tmp_path, "hooks.example")
    receiver = Receiver(url="")
    port = reserve_port()
    server, task = await serve(receiver_app(receiver), port, ssl_certfile=str(cert), ssl_keyfile=str(key))
    try:
        async def local(host: str, port: int) -> list[str]:
            return ["127.0.0.1"]

        trust = ssl.create_default_context(cafile=str(ca))
        async with httpx.AsyncClient(trust_env=False, verify=trust) as http:
            target = await resolve_target(f"https://hooks.example:{port}/tls", LOOSE, local)
            assert str(target.url).startswith(f"https://127.0.0.1:{port}/")
            assert await post(http, target, b"{}", {}, timeout=5) == 204
            # The same address under another name: the certificate does not match, nothing is sent.
            other = await resolve_target(f"https://other.example:{port}/tls", LOOSE, local)
            with pytest.raises(httpx.ConnectError, match="(?i)certificate|hostname"):
                await post(http, other, b"{}", {}, timeout=5)
        (got,) = receiver.at("/tls")
        assert got.headers["host"] == f"hooks.example:{port}"
    finally:
        server.should_exit = True
        await task
