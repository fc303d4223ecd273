"""``mrilearn federated server|client|simulate``: FedAvg training across sites (§8.4.3)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from mrilearn.arguments import add_overwrite_argument
from mrilearn.errors import ConfigError

DEFAULT_ADDRESS = "127.0.0.1:8080"


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    f = subparsers.add_parser("federated", help="federated averaging across sites (Flower)")
    sub = f.add_subparsers(dest="federated_command", required=True, metavar="ROLE")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("config", help="the YAML experiment config every site shares")
        p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. seed=1")
        p.add_argument("--address", default=DEFAULT_ADDRESS, help="server HOST:PORT")
        p.add_argument(
            "--insecure", action="store_true",
            help="allow an unencrypted connection to or on a non-loopback address",
        )  # fmt: skip

    def certificates(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--certificates", nargs=3, type=Path, metavar=("CA", "CERT", "KEY"),
            help="TLS: the CA certificate, the server's certificate and its private key (PEM)",
        )  # fmt: skip

    def server_options(p: argparse.ArgumentParser) -> None:
        add_overwrite_argument(p, "replace an earlier run of the same experiment")
        p.add_argument("--rounds", type=int, default=3, help="FedAvg rounds")
        p.add_argument("--local-iterations", type=int, default=20, help="local steps per round")
        p.add_argument("--eval-data", type=Path, help="held-out data folder for the server")

    s = sub.add_parser("server", help="aggregate the sites' weights; saves the final model")
    common(s)
    server_options(s)
    certificates(s)
    s.add_argument("--clients", type=int, default=2, help="sites taking part in every round")
    s.set_defaults(func=cmd_server)

    c = sub.add_parser("client", help="train on this site's data, send only weights")
    common(c)
    c.add_argument("--site-data", required=True, type=Path, help="this site's data folder")
    c.add_argument(
        "--root-certificate", type=Path, metavar="CA",
        help="TLS: the CA certificate that signed the server's certificate (PEM)",
    )  # fmt: skip
    c.set_defaults(func=cmd_client)

    m = sub.add_parser("simulate", help="server and one client per site as local processes")
    common(m)
    server_options(m)
    m.add_argument("--sites", required=True, nargs="+", type=Path, help="one data folder each")
    certificates(m)
    m.set_defaults(func=cmd_simulate)


def _require_flwr() -> None:
    try:
        import flwr  # noqa: F401
    except ImportError:
        raise ConfigError(
            'federated training needs Flower: pip install -c constraints.txt -e ".[federated]"'
        ) from None


def cmd_server(args: argparse.Namespace) -> int:
    _require_flwr()
    from mrilearn.federated.flower import run_server
    from mrilearn.federated.tls import server_certificates

    tls = server_certificates(args.certificates, args.address, args.insecure)
    result = run_server(
        args.config, args.rounds, args.clients, args.address, args.local_iterations,
        args.eval_data, args.overrides, tls, args.overwrite,
    )  # fmt: skip
    for row in result["history"]:
        print(f"round {row['round']}: val/loss {row.get('val/loss', float('nan')):.5g}")
    return 0


def cmd_client(args: argparse.Namespace) -> int:
    _require_flwr()
    from mrilearn.federated.flower import run_client
    from mrilearn.federated.tls import root_certificate

    if not args.site_data.exists():
        raise ConfigError(f"--site-data {args.site_data}: not found")
    root = root_certificate(args.root_certificate, args.address, args.insecure)
    run_client(args.config, args.site_data, args.address, args.overrides, root)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Start the server and one client per site as child processes on this machine."""
    from mrilearn.federated.tls import server_certificates

    _require_flwr()
    server_certificates(args.certificates, args.address, args.insecure)  # fail here, not there
    threads = ["--threads", str(args.threads)] if args.threads else []
    base = [sys.executable, "-m", "mrilearn", *threads, "federated"]
    shared = [args.config, *args.overrides, "--address", args.address]
    shared += ["--insecure"] if args.insecure else []
    server_cmd = [*base, "server", *shared, *(["--overwrite"] if args.overwrite else []),
                  "--rounds", str(args.rounds),
                  "--clients", str(len(args.sites)),
                  "--local-iterations", str(args.local_iterations)]  # fmt: skip
    client_tls = []
    if args.certificates:
        server_cmd += ["--certificates", *map(str, args.certificates)]
        client_tls = ["--root-certificate", str(args.certificates[0])]
    if args.eval_data:
        server_cmd += ["--eval-data", str(args.eval_data)]
    server = subprocess.Popen(server_cmd)
    clients = [
        subprocess.Popen([*base, "client", *shared, "--site-data", str(site), *client_tls])
        for site in args.sites
    ]
    try:
        code = server.wait()
        codes = [c.wait(timeout=60) for c in clients]
    finally:
        for proc in (server, *clients):
            if proc.poll() is None:
                proc.terminate()
    if code or any(codes):
        print(f"federated run failed: server exit {code}, clients {codes}", file=sys.stderr)
        return 1
    return 0
