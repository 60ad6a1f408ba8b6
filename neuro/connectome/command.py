"""``neuro connectome``: dynamic functional connectome of calcium traces.

Reads traces (``--traces FILE.h5|.npz|.npy|.nwb``; see :mod:`data_loaders.calcium`)
or, without them, simulates animals with planted communities
(:mod:`data_loaders.simulate.calcium`); fits :class:`~neuro.connectome.DynamicConnectome`
with ``--rank R`` or a rank chosen among ``--ranks``; writes into ``--out``:
``metrics.json`` (rank table, errors, communities, and on simulated data the
recovery of the planted truth), ``factors.npz``, one GraphML graph per
component and the figures (``factors.png``, ``affinity_matrices.png``,
``networks.png``, ``rank_selection.png``).
"""

from __future__ import annotations

import argparse

import numpy as np

__all__ = ["add_arguments", "evaluate_recovery", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``neuro connectome``."""
    parser.add_argument(
        "--traces", default=None, help="traces file (.h5/.hdf5/.npz/.npy/.nwb); default: simulate"
    )
    parser.add_argument("--sampling-rate", type=float, default=None, help="Hz, for .npy traces")
    parser.add_argument("--rank", type=int, default=None, help="number of NTF components")
    parser.add_argument(
        "--ranks", type=int, nargs="+", default=[2, 3, 4, 5], help="candidates when no --rank"
    )
    parser.add_argument("--affinity", choices=("derivative", "correlation"), default="derivative")
    parser.add_argument("--bin-size", type=int, default=20, help="steps per time bin")
    parser.add_argument("--method", choices=("hals", "mu"), default="hals")
    parser.add_argument("--backend", choices=("numpy", "pytorch"), default="numpy")
    parser.add_argument("--n-iter", type=int, default=300, help="NTF iterations")
    parser.add_argument("--restarts", type=int, default=3, help="random restarts per rank")
    parser.add_argument(
        "--communities",
        choices=("sbm", "louvain", "greedy"),
        default="sbm",
        help="partition of each component: weighted SBM chosen by exact ICL, or modularity",
    )
    parser.add_argument("--noise", type=float, default=0.3, help="simulated noise sd")
    parser.add_argument("--animals", type=int, default=4, help="simulated animals")
    parser.add_argument("--neurons", type=int, default=40, help="simulated neurons")
    parser.add_argument("--frames", type=int, default=2400, help="simulated frames")
    parser.add_argument("--no-figures", action="store_true", help="skip the figures")


def evaluate_recovery(model, truth) -> dict:
    """Compare a fitted model with the planted truth of :func:`simulate_calcium`.

    Each planted community is matched to the component whose pair factor is
    most congruent with its within-community pairs. Reported per community:
    the correlation of the component's time factor with the fraction of each
    bin in which the community is active, its peak bin's epoch, the cosine of
    its animal factor with the planted animals, and the adjusted Rand index of
    the component's core against the community; plus the ARI of all cores
    together against the planted labels.
    """
    from sklearn.metrics import adjusted_rand_score

    ind = truth.pair_indicator().astype(float)
    ind /= np.linalg.norm(ind, axis=1, keepdims=True)
    cong = ind @ (model.pair_factors_ / np.linalg.norm(model.pair_factors_, axis=0))
    n_bins, b = model.time_factors_.shape[0], model.bin_size
    steps = truth.active[:, :-1]
    pad = n_bins * b - steps.shape[1]
    act = np.pad(steps.astype(float), ((0, 0), (0, pad))).reshape(len(steps), n_bins, b).mean(-1)
    labels = np.full(len(truth.community), -1)
    rows = []
    for k in range(truth.n_communities):
        r = int(np.argmax(cong[k]))
        tf, af = model.time_factors_[:, r], model.animal_factors_[:, r]
        planted = truth.animals[k].astype(float)
        core = model.communities_[r].core
        labels[core & (labels < 0)] = k
        peak = int(np.argmax(tf))
        rows.append(
            {
                "community": k,
                "component": r,
                "pair_congruence": float(cong[k, r]),
                "time_correlation": float(np.corrcoef(tf, act[k])[0, 1]),
                "peak_bin_active_fraction": float(act[k, peak]),
                "animal_cosine": float(af @ planted / np.linalg.norm(af) / np.linalg.norm(planted)),
                "ari": float(adjusted_rand_score(truth.community == k, core)),
            }
        )
    return {
        "communities": rows,
        "ari_all": float(adjusted_rand_score(truth.community, labels)),
        "noise": truth.noise,
    }


def run(args: argparse.Namespace) -> int:
    """Entry point of ``neuro connectome``."""
    from data_loaders.calcium import load_calcium
    from data_loaders.simulate.calcium import simulate_calcium
    from neuro.connectome.ntf import DynamicConnectome
    from neuro.io import atomic_write_json

    truth = None
    if args.traces:
        data = load_calcium(args.traces, sampling_rate=args.sampling_rate)
    else:
        sim = simulate_calcium(
            n_animals=args.animals,
            n_neurons=args.neurons,
            n_frames=args.frames,
            noise=args.noise,
            seed=args.seed,
        )
        data, truth = sim.data, sim.truth
    verbose = max(0, args.verbose - 1)
    model = DynamicConnectome(
        rank=args.rank,
        ranks=tuple(args.ranks),
        affinity=args.affinity,
        bin_size=args.bin_size,
        method=args.method,
        backend=args.backend,
        n_iter_max=args.n_iter,
        n_restarts=args.restarts,
        community_method=args.communities,
        device=args.device,
        random_state=args.seed,
        verbose=verbose,
    ).fit(data)
    model.save(args.out, overwrite=True)
    metrics = model.metrics()
    metrics["data"] = {
        "source": str(args.traces) if args.traces else "simulated",
        "shape": list(data.shape),
        "missing_neurons": int(data.missing.sum()),
        "sampling_rate": data.sampling_rate,
    }
    lines = [f"neuro connectome: traces {data.shape}, tensor {tuple(model.affinity_.shape)}"]
    if model.rank_selection_ is not None:
        lines.append(model.rank_selection_.format_table())
    lines.append(f"rank {model.rank_}, relative error {model.reconstruction_error_:.4f}")
    if truth is not None:
        rec = evaluate_recovery(model, truth)
        metrics["recovery"] = rec
        for row in rec["communities"]:
            lines.append(
                f"  community {row['community']} -> component {row['component']}: time r="
                f"{row['time_correlation']:.2f}, animal cos={row['animal_cosine']:.2f}, "
                f"ARI={row['ari']:.2f}"
            )
        lines.append(f"  ARI of all communities: {rec['ari_all']:.3f} (noise {truth.noise})")
    atomic_write_json(args.out / "metrics.json", metrics)
    if not args.no_figures:
        from neuro.connectome import plots
        from neuro.plotting import save_figure

        save_figure(plots.plot_factors(model), args.out / "factors.png")
        save_figure(plots.plot_affinity_matrices(model), args.out / "affinity_matrices.png")
        save_figure(plots.plot_networks(model), args.out / "networks.png")
        if model.rank_selection_ is not None:
            save_figure(
                plots.plot_rank_selection(model.rank_selection_), args.out / "rank_selection.png"
            )
    lines.append(f"  written to {args.out}")
    print("\n".join(lines))
    return 0
