"""Figures of the voxel encoders: each function returns a matplotlib ``Figure``.

- :func:`roi_comparison`: mean noise-normalised accuracy per ROI and encoder;
- :func:`glass_brain`: a brain map (NIfTI image) as a glass-brain projection;
- :func:`ground_truth`: what a fit on a simulated subject found against what
  was planted (the numbers of :func:`neuro.encoders.groundtruth.check_ground_truth`).

Figures are made without pyplot (:func:`neuro.plotting.new_figure`), so they
work on machines without a display; ``neuro.plotting.save_figure`` writes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["glass_brain", "ground_truth", "roi_comparison"]


def roi_comparison(result):
    """Bar chart of the mean noise-normalised score per ROI and encoder, with 95% CIs.

    Parameters
    ----------
    result : EncoderComparison

    Returns
    -------
    matplotlib.figure.Figure
        One group of bars per ROI (the ``"all"`` row left out), one bar per encoder.
    """
    from neuro.plotting import new_figure

    names = result.names
    t = result.table[result.table["roi"] != "all"]
    rois = list(dict.fromkeys(t["roi"]))
    fig, axes = new_figure(size=(max(5.0, 0.9 * len(rois) + 2), 3.6))
    ax = axes[0, 0]
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(rois))
    for i, n in enumerate(names):
        rows = t[t["model"] == n].set_index("roi").loc[rois]
        mean = rows["normalized_mean"].to_numpy(dtype=float)
        err = np.stack(
            [
                mean - rows["normalized_ci_low"].to_numpy(dtype=float),
                rows["normalized_ci_high"].to_numpy(dtype=float) - mean,
            ]
        )
        ax.bar(x + (i - (len(names) - 1) / 2) * width, mean, width, yerr=err, label=n)
    ax.set_xticks(x, rois)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("fraction of noise ceiling (r² / NC)")
    ax.set_title(f"Held-out accuracy per ROI ({result.n_test} test stimuli)")
    ax.legend(fontsize=8, ncols=min(len(names), 5))
    return fig


def glass_brain(img, title: str):
    """A brain map as nilearn's glass-brain projection (NaN drawn as 0).

    Parameters
    ----------
    img : nibabel Nifti1Image
        A 3D map, e.g. :meth:`EncoderComparison.r_maps` values.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
        Symmetric colour scale from ``-max|value|`` to ``+max|value|``.
    """
    import nibabel as nib
    from matplotlib.figure import Figure
    from nilearn import plotting as nplot

    fig = Figure(figsize=(7, 2.6))
    data = np.nan_to_num(np.asarray(img.dataobj, dtype=np.float32))
    vmax = float(np.abs(data).max()) or 1.0
    nplot.plot_glass_brain(
        nib.Nifti1Image(data, img.affine),
        figure=fig,
        title=title,
        colorbar=True,
        plot_abs=False,
        vmax=vmax,
        cmap="RdBu_r",
    )
    return fig


def ground_truth(result, subject, truth: dict[str, Any]):
    """What a comparison on a simulated subject found against what was planted.

    Panels: the noise ceiling estimated from repeats against the planted one;
    the mean held-out r of each encoder in early visual and category-selective
    voxels; and, with a Gaussian readout, its receptive-field centres against
    the planted ones (lines join each pair).

    Parameters
    ----------
    result : EncoderComparison
    subject : SimulatedSubject
        The subject ``result`` was fitted on (with ``prf_centers``, ``prf_sizes``).
    truth : dict
        :func:`neuro.encoders.groundtruth.check_ground_truth` of the two.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from neuro.plotting import new_figure

    early = ~np.isnan(subject.prf_sizes)
    ncols = 3 if "gaussian" in truth else 2
    fig, axes = new_figure(ncols=ncols, size=(3.8, 3.6))
    ax = axes[0, 0]
    ax.scatter(subject.true_noise_ceiling(1), result.dataset.noise_ceiling().r2(1), s=8)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="planted ceiling (R², 1 trial)", ylabel="estimated from repeats")
    ax.set_title(f"Noise ceiling (r = {truth['ceiling_r']:.2f})")
    ax = axes[0, 1]
    groups = list(truth["mean_r"])
    x = np.arange(len(groups))
    width = 0.8 / len(result.names)
    for i, n in enumerate(result.names):
        vals = [truth["mean_r"][g][n] for g in groups]
        ax.bar(x + (i - (len(result.names) - 1) / 2) * width, vals, width, label=n)
    ax.set_xticks(x, ["early", "category"])
    ax.set(ylabel="held-out r (mean)")
    ax.set_title("Which encoder explains which voxels")
    ax.legend(fontsize=7)
    if "gaussian" in truth:
        ax = axes[0, 2]
        est = np.asarray(result.encoders["gaussian"].receptive_field_centers_)[early]
        true = subject.prf_centers[early]
        for t, e in zip(true, est, strict=True):
            ax.plot([t[0], e[0]], [t[1], e[1]], color="0.6", lw=0.6)
        ax.scatter(true[:, 0], true[:, 1], s=10, label="planted")
        ax.scatter(est[:, 0], est[:, 1], s=10, label="gaussian readout")
        ax.set(xlim=(-1, 1), ylim=(1, -1), xlabel="x (map units)", ylabel="y (map units)")
        ax.set_aspect("equal")
        ax.set_title(f"RF centres (median error {truth['gaussian']['median_center_error']:.3f})")
        ax.legend(fontsize=7)
    return fig
