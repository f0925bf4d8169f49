"""The worker's web server address, checked before Faust starts, so a clash is one clear line.

Faust binds its web server while it starts, and a port another worker holds ends the worker
with a long traceback; `check_web_port` finds out first, binding the way Faust's server will.

    >>> check_web_port("127.0.0.1", 0)  # port 0: any free port, so this always passes
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from streamlearn.errors import ConfigError


def check_web_port(host: str, port: int) -> None:
    """Raise `ConfigError` unless a web server could listen on `host`:`port` right now.

    Binds every address `host` resolves to with SO_REUSEADDR, as asyncio's `create_server`
    (under Faust's aiohttp server) does, so only a port that a server listens on fails here.
    Another process can still take the port before Faust binds it; this catches the usual
    case, a second worker started on the same machine with the same `--web-port`.
    """
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise ConfigError(f"--web-host {host}: not a known address ({error.strerror})") from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as error:
                raise ConfigError(_reason(error, host, port)) from None


def check_web_exposure(host: str, token: str | None) -> None:
    """Raise `ConfigError` when `host` reaches beyond this machine and no token guards the routes:
    a key's model and predictions are the user's data, not the network's."""
    if token:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        return  # check_web_port reports it
    if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise ConfigError(
            f"--web-host {host} reaches beyond this machine: set STREAMLEARN_WEB_TOKEN, and"
            " clients send it as 'Authorization: Bearer <token>'"
        )


def _reason(error: OSError, host: str, port: int) -> str:
    if error.errno == errno.EADDRINUSE:
        return (
            f"web port {port} on {host} is in use (another worker?):"
            " give each worker its own --web-port"
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return f"--web-host {host} is not an address of this machine"
    if error.errno == errno.EACCES:
        return f"web port {port} on {host} needs privileges: pass a --web-port above 1023"
    return f"cannot listen on web port {port} on {host}: {error.strerror}"
