"""Time per stage of the dynamic connectome: affinity, NTF, communities; numpy vs pytorch.

100 neurons x 3,000 frames x 5 animals by default (simulated), rank 4, HALS,
a fixed number of iterations. Affinities are computed in torch on --device;
the NTF runs on tensorly's numpy backend and on its pytorch backend. Run:

    python benchmarks/connectome.py [--neurons 100] [--frames 3000] [--animals 5] [--device auto]
"""

from __future__ import annotations

import argparse
import time

from data_loaders.simulate.calcium import simulate_calcium
from neuro.connectome import affinity_tensor, find_communities, fit_ntf
from neuro.train import resolve_device


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--neurons", type=int, default=100)
    p.add_argument("--frames", type=int, default=3000)
    p.add_argument("--animals", type=int, default=5)
    p.add_argument("--rank", type=int, default=4)
    p.add_argument("--bin-size", type=int, default=20)
    p.add_argument("--n-iter", type=int, default=100)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    device = resolve_device(args.device)
    sim = simulate_calcium(
        n_animals=args.animals,
        n_neurons=args.neurons,
        n_frames=args.frames,
        community_size=min(10, args.neurons // 3),
        seed=0,
    )
    rows = []
    t0 = time.perf_counter()
    x = affinity_tensor(sim.data, bin_size=args.bin_size, device=device)
    rows.append(("affinity (derivative)", str(device), time.perf_counter() - t0, ""))
    t0 = time.perf_counter()
    affinity_tensor(sim.data, method="correlation", bin_size=args.bin_size, device=device)
    rows.append(("affinity (correlation)", str(device), time.perf_counter() - t0, ""))
    fits = {}
    for backend in ("numpy", "pytorch"):
        dev = str(device) if backend == "pytorch" else "cpu"
        t0 = time.perf_counter()
        fits[backend] = fit_ntf(
            x, args.rank, n_iter_max=args.n_iter, tol=0, backend=backend, device=dev
        )
        rows.append(
            (f"NTF HALS {backend}", dev, time.perf_counter() - t0, f"err {fits[backend].error:.4f}")
        )
    for method in ("sbm", "louvain"):
        t0 = time.perf_counter()
        find_communities(fits["numpy"].factors[2], args.neurons, method=method)
        rows.append((f"communities ({method})", "cpu", time.perf_counter() - t0, ""))
    print(f"traces {sim.data.shape}, tensor {x.shape}, rank {args.rank}, {args.n_iter} iterations")
    print(f"{'stage':<26}{'device':<8}{'seconds':>9}  note")
    for name, dev, sec, note in rows:
        print(f"{name:<26}{dev:<8}{sec:>9.2f}  {note}")


if __name__ == "__main__":
    main()
