"""POSTing a webhook to an address someone else chose, safely.

- https only, unless ``WEBHOOK_ALLOW_HTTP`` (tests, local use);
- the host is resolved here and **every** address it resolves to is checked (private,
  loopback, link-local, multicast, reserved… are refused unless inside
  ``WEBHOOK_ALLOWED_NETWORKS``); the connection then goes to the checked address, so a
  second DNS answer (rebinding) cannot send it elsewhere. TLS still verifies the
  certificate against the host name (SNI and hostname check use the name, not the IP);
- redirects are not followed (a 3xx is a failed attempt), nothing is retried here (the
  retry schedule is the caller's), timeouts are short and only the start of the answer
  is read.
"""
from __future__ import annotations

import socket
import time

import urllib3
from urllib3.exceptions import HTTPError

from .domain import rules
from .service import Outcome, Settings

MAX_ANSWER_BYTES = 4096  # the status is what matters; a receiver's page is not read


class Refused(Exception):
    pass


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Refused(f"cannot resolve {host}: {exc.strerror or exc}") from None
    addresses = []
    for _family, _type, _proto, _name, sockaddr in infos:
        if sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    if not addresses:
        raise Refused(f"{host} has no address")
    return addresses


def checked_address(target: rules.Target, allowed_networks, resolver=resolve) -> str:
    """The address to connect to, once every address of the host passed the check."""
    addresses = resolver(target.host, target.port)
    for address in addresses:
        reason = rules.refusal(address, allowed_networks)
        if reason:
            raise Refused(f"{target.host} resolves to {address}, which is {reason}; refused "
                          "(WEBHOOK_ALLOWED_NETWORKS lists the networks that may be called)")
    return addresses[0]


def _pool(target: rules.Target, address: str, timeout_s: float):
    timeout = urllib3.Timeout(connect=timeout_s, read=timeout_s, total=timeout_s)
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(address, target.port, timeout=timeout, maxsize=1, retries=False,
                                           cert_reqs="CERT_REQUIRED", server_hostname=target.host,
                                           assert_hostname=target.host)
    return urllib3.HTTPConnectionPool(address, target.port, timeout=timeout, maxsize=1, retries=False)


def post(url: str, body: bytes, headers: dict[str, str], current: Settings, resolver=resolve) -> Outcome:
    started = time.perf_counter()

    def outcome(status_code: int | None, error: str | None) -> Outcome:
        return Outcome(status_code, error, int((time.perf_counter() - started) * 1000))

    try:
        target = rules.parse_target(url, current.allow_http)
        address = checked_address(target, current.allowed_networks, resolver)
        with _pool(target, address, current.timeout_s) as pool:
            response = pool.urlopen("POST", target.path, body=body, headers={**headers, "Host": target.host_header},
                                    redirect=False, retries=False, preload_content=False,
                                    assert_same_host=False)
            try:
                response.read(MAX_ANSWER_BYTES)
            finally:
                response.release_conn()
                response.close()
    except (rules.UnsafeTarget, Refused) as exc:
        return outcome(None, f"refused: {exc}")
    except (HTTPError, OSError) as exc:
        return outcome(None, f"{exc.__class__.__name__}: {exc}"[:500])
    status = response.status
    if 200 <= status < 300:
        return outcome(status, None)
    if 300 <= status < 400:
        return outcome(status, f"HTTP {status}: redirects are not followed "
                               f"(to {response.headers.get('Location', '?')[:200]})")
    return outcome(status, f"HTTP {status}")
