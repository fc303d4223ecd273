"""Federated sites over TLS: a server and two sites on loopback with self-signed certificates
made here, a site without the CA (or with another CA) refused, and no unencrypted server or
client on a network address unless --insecure."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("flwr", reason='Flower not installed: pip install -e ".[federated]"')
x509 = pytest.importorskip("cryptography.x509")

from conftest import cli, cli_error, sr_config, tree_checksums  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from mrilearn.data.phantoms import ellipsoid_phantom  # noqa: E402
from mrilearn.federated.tls import is_loopback  # noqa: E402
from mrilearn.io import Volume, write_nifti  # noqa: E402


def _certificate(subject: str, issuer: x509.Certificate | None, key, signer, extensions):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer is not None else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signer, hashes.SHA256())


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A self-signed CA and a server certificate it signed for 127.0.0.1 and localhost."""
    folder.mkdir(parents=True)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("site CA", None, ca_key, ca_key,
                      [(x509.BasicConstraints(ca=True, path_length=None), True)])  # fmt: skip
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = _certificate("server", ca, key, ca_key, [(x509.SubjectAlternativeName(names), False)])
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def sites(tmp_path: Path) -> Path:
    """Two sites of 3 phantoms each and the config they share (1 round of 2 local steps)."""
    for site, seeds in {"siteA": range(0, 3), "siteB": range(3, 6)}.items():
        for i in seeds:
            volume = Volume(ellipsoid_phantom((20, 20, 20), seed=i), np.eye(4))
            write_nifti(volume, tmp_path / site / f"s{i:02d}.nii.gz")
    cfg = sr_config("per-site", tmp_path / "runs", experiment="fed", scheduler=None,
                    evaluation=None, data={"split": [1, 0, 0, 0]},
                    train={"iterations": 2, "batch_size": 2, "val_every": 0,
                           "checkpoint_every": 0})  # fmt: skip
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path


def test_loopback_addresses():
    assert all(map(is_loopback, ["127.0.0.1:8080", "localhost:1", "[::1]:8080", "127.3.0.1:9"]))
    assert not any(map(is_loopback, ["0.0.0.0:8080", "[::]:8080", "10.0.0.2:8080", "host:80"]))


def test_no_unencrypted_connection_on_a_network(sites, capsys):
    config = sites / "config.yaml"
    before = tree_checksums(sites)
    err = cli_error(capsys, ["federated", "server", config, "--address", "0.0.0.0:8080"])
    assert "not a loopback address, and no --certificates CA CERT KEY" in err
    err = cli_error(capsys, ["federated", "client", config, "--site-data", sites / "siteA",
                             "--address", "10.0.0.2:8080"])  # fmt: skip
    assert "no --root-certificate CA" in err and "--insecure" in err
    err = cli_error(capsys, ["federated", "simulate", config, "--sites", sites / "siteA",
                             "--address", "[::]:8080"])  # fmt: skip
    assert "not a loopback address" in err
    assert tree_checksums(sites) == before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, server: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline and server.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the server did not listen on {port} (exit {server.poll()})")


@pytest.mark.slow
def test_tls_server_and_two_sites_a_site_without_the_ca_is_refused(sites, tmp_path):
    ca, cert, key = make_certificates(tmp_path / "pki")
    other_ca = make_certificates(tmp_path / "other")[0]
    port = _free_port()
    base = [sys.executable, "-m", "mrilearn", "--threads", "1", "federated"]
    shared = [str(sites / "config.yaml"), "--address", f"127.0.0.1:{port}"]
    server = subprocess.Popen(
        [*base, "server", *shared, "--clients", "2", "--rounds", "1", "--local-iterations", "2",
         "--certificates", str(ca), str(cert), str(key)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for(port, server)

        def client(site: str, *tls: str) -> subprocess.Popen:
            return subprocess.Popen(
                [*base, "client", *shared, "--site-data", str(sites / site), *tls],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip

        refused = {  # started together, each refused at once
            "if the server uses TLS, pass --root-certificate CA": client("siteA"),
            "the TLS handshake failed": client("siteA", "--root-certificate", str(other_ca)),
        }
        for hint, proc in refused.items():
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 2 and "Traceback" not in err, err
            last = err.strip().splitlines()[-1]  # after Flower's and gRPC's own log lines
            assert last.startswith(f"mrilearn: error: 127.0.0.1:{port}: cannot connect"), last
            assert hint in last, last
        good = [client(s, "--root-certificate", str(ca)) for s in ("siteA", "siteB")]
        for proc in good:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
        _, err = server.communicate(timeout=300)
        assert server.returncode == 0, err
    finally:
        if server.poll() is None:
            server.kill()
    run = sites / "runs" / "fed"
    assert (run / "checkpoints" / "latest.pt").is_file()
    assert json.loads((run / "federated.json").read_text())["clients"] == 2


def test_simulate_passes_tls_on(sites, tmp_path, monkeypatch):
    """The server gets the three files, every site the CA (the processes are not started)."""
    from mrilearn.federated import cli as federated_cli

    started = []

    class Started:
        def __init__(self, cmd, **_):
            started.append(cmd)

        def wait(self, timeout=None):
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(federated_cli.subprocess, "Popen", Started)
    ca, cert, key = make_certificates(tmp_path / "pki")
    sites_ = [str(sites / "siteA"), str(sites / "siteB")]
    assert cli("federated", "simulate", sites / "config.yaml", "--sites", *sites_,
               "--certificates", ca, cert, key, "--address", "127.0.0.1:9") == 0  # fmt: skip
    server, *clients = started
    assert server[server.index("--certificates") + 1 :][:3] == [str(ca), str(cert), str(key)]
    assert len(clients) == 2
    for cmd in clients:
        assert cmd[cmd.index("--root-certificate") + 1] == str(ca)
        assert "--certificates" not in cmd
