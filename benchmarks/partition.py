"""Community detection on weighted LFR graphs across the mixing parameter: ARI and NMI per method.

The public code of Dyballa et al. benchmarks its partitioner (graph-tool's
degree-corrected SBM) on LFR graphs; this is that benchmark for ours. The
structure is ``networkx.LFR_benchmark_graph`` (power-law degrees, exponent 3,
and community sizes, exponent 1.5); a fraction ``mu`` of each node's edges
leaves its community. Weights are drawn on top: every edge gets an
exponential weight of mean 1 inside communities and ``--w-out`` (default 0.5)
between them, so both the edges and the weights carry the communities; non-
edges weigh 0. Methods: ``sbm`` (the default: on these sparse graphs the
hurdle model, edges and exponential weights separately, the edges degree-
corrected or not as the criterion chooses), ``sbm hurdle-dc`` (degree
correction of the edges forced), ``sbm dense dc`` (exponential weights on
every pair, degree-corrected: the default for dense NTF factors, and about
what ``sbm`` fitted here before the hurdle model), ``sbm plain`` (the
earlier Gaussian SBM by exact ICL, at most 6 blocks), networkx ``louvain``
and ``greedy`` modularity. Each is scored against the planted communities by the
adjusted Rand index and normalised mutual information, averaged over
``--graphs`` graphs per ``mu``, and timed; ``--figure`` draws ARI and NMI
against ``mu``. ``--device`` is accepted and ignored (all on the CPU).
"""

from __future__ import annotations

import time

import networkx as nx
import numpy as np
from _common import Col, Report, parser
from sklearn.metrics import normalized_mutual_info_score

from neuro.connectome.communities import partition
from neuro.connectome.sbm import adjusted_rand

METHODS = {
    "sbm": {"method": "sbm"},
    "sbm hurdle-dc": {"method": "sbm", "sbm_model": "hurdle-dc"},
    "sbm dense dc": {"method": "sbm", "sbm_model": "dc"},
    "sbm plain": {"method": "sbm", "sbm_model": "plain"},
    "louvain": {"method": "louvain"},
    "greedy": {"method": "greedy"},
}


def lfr_graph(n: int, mu: float, seed: int, w_out: float, avg_degree: float):
    """A weighted LFR graph and its planted labels (tries a few seeds if one fails)."""
    for attempt in range(20):
        try:
            g = nx.LFR_benchmark_graph(
                n,
                tau1=3.0,
                tau2=1.5,
                mu=mu,
                average_degree=avg_degree,
                max_degree=max(int(3 * avg_degree), 10),
                min_community=max(n // 20, 8),
                max_community=max(n // 4, 16),
                seed=seed + 1000 * attempt,
            )
            break
        except nx.ExceededMaxIterations:
            continue
    else:
        raise RuntimeError(f"no LFR graph for n={n}, mu={mu} after 20 seeds")
    g.remove_edges_from(nx.selfloop_edges(g))
    comms = {frozenset(g.nodes[v]["community"]) for v in g}
    truth = np.empty(n, dtype=np.int64)
    for k, c in enumerate(sorted(comms, key=min)):
        truth[list(c)] = k
    rng = np.random.default_rng(seed)
    out = nx.Graph()
    out.add_nodes_from(range(n))
    for u, v in g.edges:
        mean = 1.0 if truth[u] == truth[v] else w_out
        out.add_edge(u, v, weight=float(rng.exponential(mean)))
    return out, truth


def main(argv=None) -> None:
    p = parser(__doc__.split("\n\n")[0], repeat=1)
    p.add_argument("--nodes", type=int, default=200)
    p.add_argument("--avg-degree", type=float, default=15.0)
    p.add_argument("--mu", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    p.add_argument("--graphs", type=int, default=2, help="graphs per mu")
    p.add_argument("--w-out", type=float, default=0.5, help="mean weight of edges between")
    p.add_argument("--figure", metavar="PATH", help="write ARI / NMI against mu (PNG)")
    args = p.parse_args(argv)
    if args.quick:
        args.nodes, args.mu, args.graphs, args.avg_degree = 100, [0.1, 0.3, 0.5], 1, 12.0
    report = Report("partition", args, "cpu")
    report.header(
        f"LFR graphs, {args.nodes} nodes, average degree {args.avg_degree}, "
        f"{args.graphs} graph(s) per mu, weights Exp(1) inside / Exp({args.w_out}) between"
    )
    rows = []
    for mu in args.mu:
        scores = {name: {"ari": [], "nmi": [], "seconds": [], "k": []} for name in METHODS}
        n_true = []
        for g_i in range(args.graphs):
            graph, truth = lfr_graph(args.nodes, mu, 1 + g_i, args.w_out, args.avg_degree)
            n_true.append(int(truth.max()) + 1)
            for name, kw in METHODS.items():
                t = time.perf_counter()
                labels, _ = partition(graph, seed=g_i, **kw)
                scores[name]["seconds"].append(time.perf_counter() - t)
                scores[name]["ari"].append(adjusted_rand(truth, labels))
                scores[name]["nmi"].append(normalized_mutual_info_score(truth, labels))
                scores[name]["k"].append(int(labels.max()) + 1)
        for name, s in scores.items():
            rows.append(
                {
                    "mu": mu,
                    "method": name,
                    "ari": float(np.mean(s["ari"])),
                    "nmi": float(np.mean(s["nmi"])),
                    "k": f"{np.mean(s['k']):.1f} / {np.mean(n_true):.1f}",
                    "seconds": float(np.mean(s["seconds"])),
                }
            )
    report.table(
        [
            Col("mu", "mu", "{:.2f}"),
            Col("method", "method"),
            Col("ari", "ARI", "{:.3f}"),
            Col("nmi", "NMI", "{:.3f}"),
            Col("k", "found / planted"),
            Col("seconds", "seconds", "{:.2f}"),
        ],
        rows,
        title="ARI and NMI against the planted communities (mean over graphs)",
    )
    mean_ari = {m: np.mean([r["ari"] for r in rows if r["method"] == m]) for m in METHODS}
    report.add_summary(
        f"LFR {args.nodes} nodes, mu {min(args.mu)}-{max(args.mu)}: mean ARI",
        f"sbm {mean_ari['sbm']:.3f}",
        f"louvain {mean_ari['louvain']:.3f}",
        None,
    )
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharex=True)
        for name in METHODS:
            sub = [r for r in rows if r["method"] == name]
            for ax, key in zip(axes, ("ari", "nmi"), strict=True):
                ax.plot([r["mu"] for r in sub], [r[key] for r in sub], "o-", label=name)
        for ax, key in zip(axes, ("ARI", "NMI"), strict=True):
            ax.set_xlabel("mixing parameter mu")
            ax.set_ylabel(key)
            ax.set_ylim(-0.05, 1.05)
        axes[0].legend(frameon=False)
        fig.suptitle(f"Weighted LFR, {args.nodes} nodes")
        fig.tight_layout()
        fig.savefig(args.figure, dpi=120)
        report.note(f"figure: {args.figure}")
    report.finish()


if __name__ == "__main__":
    main()
