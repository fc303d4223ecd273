"""TLS for federated sites: which connections must be encrypted, reading the PEM files, and
what a refused connection means (docs/federated.md).

Weights leave a hospital only encrypted: a server on, or a client connecting to, an address
other than loopback needs certificates unless ``--insecure`` says the network is trusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mrilearn.errors import ConfigError, MrilearnError


def is_loopback(address: str) -> bool:
    """Whether ``HOST:PORT`` (``[v6]:PORT`` too) stays on this machine."""
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may be anywhere
        return False


def _require_tls(address: str, insecure: bool, flag: str) -> None:
    if not insecure and not is_loopback(address):
        raise ConfigError(
            f"--address {address}: not a loopback address, and no {flag}: the weights would "
            f"travel unencrypted; give {flag} (docs/federated.md), or --insecure on a network "
            "you trust"
        )


def _read(path: Path, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the {what} ({err.strerror})") from None
    if b"-----BEGIN" not in data:
        raise ConfigError(f"{path}: the {what} is not a PEM file (-----BEGIN ...)")
    return data


def server_certificates(
    paths: Sequence[Path] | None, address: str, insecure: bool
) -> tuple[bytes, bytes, bytes] | None:
    """``--certificates CA CERT KEY`` as Flower's ``start_server(certificates=...)``."""
    if paths is None:
        _require_tls(address, insecure, "--certificates CA CERT KEY")
        return None
    ca, cert, key = paths
    return (
        _read(ca, "CA certificate"),
        _read(cert, "server certificate"),
        _read(key, "server key"),
    )


def root_certificate(path: Path | None, address: str, insecure: bool) -> bytes | None:
    """``--root-certificate CA`` as Flower's ``start_client(root_certificates=...)``."""
    if path is None:
        _require_tls(address, insecure, "--root-certificate CA")
        return None
    return _read(path, "CA certificate")


def connection_error(address: str, err: Any, tls: bool) -> MrilearnError:
    """A one-line error for a connection the server (or its address) refused."""
    details = str(err.details() if hasattr(err, "details") else err).splitlines()[0]
    if "handshake" in details.lower():
        hint = (
            "the TLS handshake failed: --root-certificate must be the CA certificate that "
            "signed the server's certificate, issued for this address"
        )
    elif not tls:
        hint = "if the server uses TLS, pass --root-certificate CA"
    else:
        hint = "check --address and that the server is running"
    return MrilearnError(f"{address}: cannot connect to the server ({details[:200]}); {hint}")
