"""Time per stage of the dynamic connectome: affinity, NTF, communities; numpy vs pytorch.

100 neurons x 3,000 frames x 5 animals by default (simulated), rank 4, HALS,
a fixed number of iterations. Affinities are computed in torch on ``--device``;
the NTF runs on tensorly's numpy backend (the peer, on the CPU, with numpy's
OpenBLAS at its best: see ``benchmarks/_common.py``) and on its pytorch
backend on ``--device``; communities run on the CPU. Every time is the best of
``--repeat``.
"""

from __future__ import annotations

from _common import Col, Report, best_of, fair_blas, parser, resolve

from data_loaders.simulate.calcium import simulate_calcium
from neuro.connectome import affinity_tensor, find_communities, fit_ntf


def main(argv=None) -> None:
    p = parser(__doc__.split("\n\n")[0], repeat=3, numpy_peer=True)
    p.add_argument("--neurons", type=int, default=100)
    p.add_argument("--frames", type=int, default=3000)
    p.add_argument("--animals", type=int, default=5)
    p.add_argument("--rank", type=int, default=4)
    p.add_argument("--bin-size", type=int, default=20)
    p.add_argument("--n-iter", type=int, default=100)
    args = p.parse_args(argv)
    unset = fair_blas(args.keep_blas_env)
    device = resolve(args.device)
    if args.quick:
        args.neurons, args.frames, args.animals, args.n_iter = 30, 600, 2, 20
    sim = simulate_calcium(
        n_animals=args.animals,
        n_neurons=args.neurons,
        n_frames=args.frames,
        community_size=min(10, args.neurons // 3),
        seed=0,
    )
    report = Report("connectome", args, device, unset)
    report.header(
        f"traces {sim.data.shape}, rank {args.rank}, {args.n_iter} HALS iterations, "
        f"device {device}, best of {args.repeat}"
    )
    rows = []
    t, _, x = best_of(
        lambda: affinity_tensor(sim.data, bin_size=args.bin_size, device=device),
        args.repeat,
        device,
    )
    rows.append({"stage": "affinity (derivative)", "device": str(device), "seconds": t})
    t, _, _ = best_of(
        lambda: affinity_tensor(
            sim.data, method="correlation", bin_size=args.bin_size, device=device
        ),
        args.repeat,
        device,
    )
    rows.append({"stage": "affinity (correlation)", "device": str(device), "seconds": t})
    fits, times = {}, {}
    for backend in ("numpy", "pytorch"):
        dev = str(device) if backend == "pytorch" else "cpu"
        times[backend], _, fits[backend] = best_of(
            lambda backend=backend, dev=dev: fit_ntf(
                x, args.rank, n_iter_max=args.n_iter, tol=0, backend=backend, device=dev
            ),
            args.repeat,
            dev,
        )
        rows.append(
            {
                "stage": f"NTF HALS {backend}" + (" (peer)" if backend == "numpy" else ""),
                "device": dev,
                "seconds": times[backend],
                "note": f"err {fits[backend].error:.4f}",
            }
        )
    for method in ("sbm", "louvain"):
        t, _, _ = best_of(
            lambda method=method: find_communities(
                fits["numpy"].factors[2], args.neurons, method=method, n_bootstrap=0
            ),
            args.repeat,
        )
        rows.append(
            {"stage": f"communities ({method}, no bootstrap)", "device": "cpu", "seconds": t}
        )
    report.table(
        [
            Col("stage", "stage"),
            Col("device", "device"),
            Col("seconds", "seconds", "{:.3f}"),
            Col("note", "note"),
        ],
        rows,
        title=f"tensor {tuple(x.shape)}",
    )
    report.add_summary(
        f"NTF HALS rank {args.rank}, {args.n_iter} it, tensor {tuple(x.shape)}",
        f"pytorch {times['pytorch']:.3f} s",
        f"tensorly numpy {times['numpy']:.3f} s",
        times["pytorch"] / times["numpy"],
    )
    report.finish()


if __name__ == "__main__":
    main()
