"""The pure rules behind the server's trust: Host names, the client behind a trusted proxy, and what
the HTTPS authority may vouch for."""

from __future__ import annotations

import ipaddress

import pytest

from describe_local.errors import ConfigError
from describe_local.server.certificate import permitted
from describe_local.server.guard import Guard, forwarded_client, host_name, parse_proxies


@pytest.mark.parametrize(("header", "name"), [
    ("LocalHost:8000", "localhost"), ("[::1]:8000", "::1"), ("[fe80::1]", "fe80::1"),
    ("192.168.1.5", "192.168.1.5"), ("myhost.local.", "myhost.local"), ("", ""),
])  # fmt: skip
def test_host_name_drops_the_port_and_brackets(header: str, name: str):
    assert host_name(header) == name


def test_the_default_answers_own_names_and_the_address_reached():
    guard = Guard(app=None, bound_host="0.0.0.0")  # type: ignore[arg-type]
    scope = {"server": ("192.168.1.5", 8000)}
    assert guard.answers(scope, "192.168.1.5:8000") and guard.answers(scope, "[::1]:8000")
    assert guard.answers(scope, "app.localhost") and guard.answers(scope, "")  # no Host: no browser
    assert not guard.answers(scope, "192.168.1.6:8000") and not guard.answers(scope, "evil.example")
    assert not guard.answers(scope, "0.0.0.0:8000")  # "any address" is no name to answer to
    # Listening on "::", an IPv4 connection's own address comes as ::ffff:a.b.c.d.
    assert guard.answers({"server": ("::ffff:192.168.1.5", 8000)}, "192.168.1.5:8000")
    named = Guard(app=None, bound_host="describe.home")  # type: ignore[arg-type]
    assert named.answers({"server": ("10.0.0.2", 80)}, "DESCRIBE.home:80")
    listed = Guard(app=None, allowed_hosts="describe.home")  # type: ignore[arg-type]
    assert not listed.answers({"server": ("127.0.0.1", 80)}, "127.0.0.1")  # a list is exactly that list
    assert Guard(app=None, allowed_hosts="*").answers({}, "anything.example")  # type: ignore[arg-type]


def test_the_client_is_the_rightmost_hop_that_is_no_trusted_proxy():
    proxies = parse_proxies("10.0.0.2, 172.16.0.0/12")
    assert forwarded_client("10.0.0.2", "203.0.113.7", proxies) == "203.0.113.7"
    assert forwarded_client("10.0.0.2", "1.2.3.4, 203.0.113.7", proxies) == "203.0.113.7"  # made-up left part
    assert forwarded_client("10.0.0.2", "203.0.113.7, 172.17.0.9", proxies) == "203.0.113.7"  # proxy chain
    assert forwarded_client("::ffff:10.0.0.2", "203.0.113.7", proxies) == "203.0.113.7"  # a dual-stack socket
    assert forwarded_client("10.0.0.2", "[2001:db8::1]", proxies) == "2001:db8::1"
    assert forwarded_client("10.0.0.2", "", proxies) == "10.0.0.2"  # nothing said: the proxy itself
    assert forwarded_client("10.0.0.2", "junk", proxies) == "10.0.0.2"
    assert forwarded_client("10.0.0.3", "203.0.113.7", proxies) == "10.0.0.3"  # not a proxy: its header is ignored
    assert forwarded_client("10.0.0.2", "203.0.113.7", []) == "10.0.0.2"


def test_a_trusted_proxy_that_is_not_an_address_is_a_config_error():
    with pytest.raises(ConfigError, match="'proxy.lan' is not an address or CIDR block"):
        parse_proxies("10.0.0.2, proxy.lan")


def test_the_authority_covers_the_private_block_and_loopback_only():
    dns, nets = permitted(["localhost", "127.0.0.1", "::1", "192.168.1.5", "203.0.113.9", "myhost.local"])
    assert dns == ["localhost", "myhost.local"]
    assert nets == [ipaddress.ip_network(n) for n in ("127.0.0.0/8", "::1/128", "192.168.0.0/16", "203.0.113.9/32")]
    assert permitted(["myhost"])[1] == [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
