"""MALIBU vs the iterative spatial-factor recon, seconds per slice at the protocol size.

One simulated slice at 160², 8 coils, L = 32: the fastest iterative recon (Toeplitz E*E on
torch tensors, as ``mrilearn recon`` runs it, 20 ADMM × 20 CG; set-up + applications ×
seconds per application, as in ``bench/mtmri_recon.py``) against one forward pass of each
MALIBU network on the 2L-channel U0. The networks are timed untrained (run time does not depend on the weights), CPU-sized and
at the dissertation's width (growth 128). Ratios are given for the forward pass alone (what
the dissertation's 0.39 s per slice measures) and with the back-projection U0 = E*_{Φ,pc}(d)
that the network needs included.

    OMP_NUM_THREADS=1 .venv/bin/python bench/malibu_speed.py                # 160², L 32
    OMP_NUM_THREADS=1 .venv/bin/python bench/malibu_speed.py --matrix 96 --rank 12 --no-full
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from mtmri_recon import applications, seconds_per_application, simulated_slice

from mrilearn.apps.malibu.models import MDCN, MalibuDenseUnet
from mrilearn.physics.nufft import radial_density


def networks(rank: int, full: bool) -> dict[str, torch.nn.Module]:
    """The quick configs' networks and, with ``full``, the dissertation-width ones."""
    nets = {
        "mDCN quick (4 blocks, growth 16)": MDCN(rank, 4, 4, 16, [1, 4, 8, 1], residual=True),
        "DenseUnet quick (growth 16)": MalibuDenseUnet(rank, 16),
    }
    if full:
        nets["mDCN d1-4-8-1 (8 blocks, growth 128)"] = MDCN(rank, 8, 4, 128, [1, 4, 8, 1])
        nets["DenseUnet (growth 128)"] = MalibuDenseUnet(rank, 128)
    return nets


def forward_seconds(net: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median wall time of one forward pass after an untimed warm-up."""
    net.eval()
    times = []
    with torch.inference_mode():
        net(x)
        for _ in range(repeats):
            start = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--matrix", type=int, default=160)
    p.add_argument("--coils", type=int, default=8)
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--admm", type=int, default=20)
    p.add_argument("--cg", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-full", action="store_true", help="skip the growth-128 networks")
    args = p.parse_args()

    _, enc, data = simulated_slice(args.matrix, args.coils, args.rank)

    start = time.perf_counter()
    u0 = enc.back_project(data, radial_density(enc.traj))
    u0_s = time.perf_counter() - start
    start = time.perf_counter()
    enc.adjoint(data)
    toeplitz = enc.normal().to("cpu")
    setup_s = time.perf_counter() - start
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(u0.shape).astype(np.complex64))
    per_apply = seconds_per_application(toeplitz, x, args.repeats)
    iterative_s = setup_s + applications(args.admm, args.cg) * per_apply

    image = torch.from_numpy(np.concatenate([u0.real, u0.imag]).astype(np.float32))[None]
    print(
        f"\n{args.matrix}², {args.coils} coils, L = {args.rank}, torch threads "
        f"{torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    print(f"back-projection U0: {u0_s:.2f} s; Toeplitz set-up {setup_s:.2f} s, "
          f"{per_apply:.3f} s per E*E")  # fmt: skip
    print(f"iterative {args.admm}×{args.cg} ADMM/CG, Toeplitz (projected): {iterative_s:.1f} s\n")
    print("| network | forward s per slice | speed-up (forward) | speed-up (U0 + forward) |")
    print("|---|---|---|---|")
    for name, net in networks(args.rank, not args.no_full).items():
        s = forward_seconds(net, image, args.repeats)
        print(f"| {name} | {s:.3f} | {iterative_s / s:.0f}× | {iterative_s / (u0_s + s):.0f}× |")


if __name__ == "__main__":
    main()
