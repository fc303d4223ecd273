"""Flower transport for federated averaging: a FedAvg server and NumPy clients (§8.4.3).

Flower 1.42 still ships the gRPC ``start_server`` / ``start_client`` pair (deprecated since
1.13 in favour of SuperLink/SuperNode processes driven by ``flwr run`` and a Flower App
project). They run fully offline on loopback or a LAN with one process per site and no app
packaging, which is what ``mrilearn federated`` needs; the deprecation warnings are expected.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mrilearn.federated.site import (
    get_weights,
    local_training,
    set_weights,
    site_trainer,
    training_size,
    validation_loss,
    voxel_size_from,
    voxel_size_metrics,
)
from mrilearn.federated.tls import connection_error
from mrilearn.io.atomic import write_json_atomic
from mrilearn.io.volume import spacing_matches
from mrilearn.runs import check_run_target, claim_run

log = logging.getLogger(__name__)

warnings.filterwarnings("ignore", category=DeprecationWarning, module="flwr")


def make_client(trainer: Any) -> Any:
    """A Flower client that trains ``trainer`` locally for the rounds' iteration count."""
    from flwr.client import NumPyClient

    voxel_size = voxel_size_metrics(trainer.measured_voxel_size())

    class SiteClient(NumPyClient):
        def get_parameters(self, config: dict[str, Any]) -> list[np.ndarray]:
            return get_weights(trainer)

        def fit(
            self, parameters: list[np.ndarray], config: dict[str, Any]
        ) -> tuple[list[np.ndarray], int, dict[str, float]]:
            set_weights(trainer, parameters)
            stats = local_training(trainer, int(config["iterations"]))
            log.info(
                "round %s: %s local steps, %s", config.get("round"), config["iterations"], stats
            )
            return get_weights(trainer), training_size(trainer), {**stats, **voxel_size}

    return SiteClient().to_client()


def run_client(
    config: str | Path, site_data: str | Path, address: str, overrides: list[str],
    root_certificate: bytes | None = None,
) -> None:  # fmt: skip
    """Connect one site to the server at ``address`` (over TLS when ``root_certificate``, the
    PEM of the CA that signed the server's certificate, is given) and serve its rounds until
    the server ends them."""
    import grpc
    from flwr.client import start_client

    trainer = site_trainer(config, site_data, overrides)
    log.info("site %s: %d training subjects", site_data, training_size(trainer))
    try:
        start_client(
            server_address=address, client=make_client(trainer),
            root_certificates=root_certificate, insecure=root_certificate is None,
        )  # fmt: skip
    except grpc.RpcError as err:
        raise connection_error(address, err, root_certificate is not None) from None


def record_voxel_size(trainer: Any, site_metrics: list[tuple[int, dict[str, Any]]]) -> dict:
    """Flower's ``fit_metrics_aggregation_fn``: the first site's training voxel size becomes
    the federated run's (checked at inference, as for a trained run); a site whose voxel size
    differs by more than 10 % is warned about, once. Aggregates no metric."""
    sizes = [s for s in (voxel_size_from(m) for _, m in site_metrics) if s is not None]
    if not sizes or trainer.voxel_size is not None:  # recorded in an earlier round
        return {}
    trainer.voxel_size = sizes[0]
    for size in sizes[1:]:
        if not spacing_matches(size, trainer.voxel_size):
            log.warning("a site trains at voxel size %s mm, unlike the run's %s mm: the model "
                        "learns a mix of resolutions", size, trainer.voxel_size)  # fmt: skip
    return {}


def run_server(
    config: str | Path,
    rounds: int,
    clients: int,
    address: str,
    local_iterations: int,
    eval_data: str | Path | None = None,
    overrides: list[str] = (),
    certificates: tuple[bytes, bytes, bytes] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """FedAvg over ``clients`` sites for ``rounds`` rounds of ``local_iterations`` local steps
    (over TLS with ``certificates``: the PEM CA certificate, server certificate and key).

    The initial weights are the config's seeded model. After every round the aggregate is
    saved as ``checkpoints/round_<r>.pt`` (round 0: the initial model) and, with
    ``eval_data`` (a data folder used whole as validation split), its validation loss is
    measured. The final model is saved as ``checkpoints/latest.pt`` with
    ``config.yaml`` in the run directory (``output_dir/experiment``), so ``mrilearn infer``,
    ``evaluate`` and ``export`` take it; ``federated.json`` holds the per-round history.
    """
    import flwr
    from flwr.common import ndarrays_to_parameters
    from flwr.server import ServerConfig, start_server
    from flwr.server.strategy import FedAvg

    trainer = site_trainer(config, None, list(overrides))
    check_run_target(trainer.cfg, overwrite=overwrite)
    # the whole evaluation folder is the validation split
    held_out = [*overrides, "data.split=[0,1,0,0]"]
    evaluator = site_trainer(config, eval_data, held_out) if eval_data else None
    history: list[dict[str, Any]] = []

    def evaluate(server_round: int, parameters: list[np.ndarray], _: dict) -> Any:
        set_weights(trainer, parameters)
        trainer.iteration = server_round * local_iterations
        trainer.save(f"round_{server_round:03d}")
        if evaluator is None:
            return None
        set_weights(evaluator, parameters)
        values = validation_loss(evaluator)
        history.append({"round": server_round, **values})
        log.info("round %d: %s", server_round, values)
        return values.get("val/loss", math.nan), values

    strategy = FedAvg(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=clients,
        min_available_clients=clients,
        evaluate_fn=evaluate,
        fit_metrics_aggregation_fn=lambda metrics: record_voxel_size(trainer, metrics),
        on_fit_config_fn=lambda r: {"iterations": local_iterations, "round": r},
        initial_parameters=ndarrays_to_parameters(get_weights(trainer)),
    )
    result = {
        "rounds": rounds,
        "clients": clients,
        "local_iterations": local_iterations,
        "flwr": flwr.__version__,
        "history": history,
    }
    with claim_run(trainer.cfg, overwrite=overwrite) as run_dir:
        start_server(
            server_address=address, config=ServerConfig(num_rounds=rounds), strategy=strategy,
            certificates=certificates,
        )  # fmt: skip
        trainer.save("latest")
        write_json_atomic(run_dir / "federated.json", result)
    return result
