"""``neuro simulate-fmri``: write a simulated fMRI experiment to disk.

The folder it writes holds what a real study would hand over, plus the truth:

* ``stimuli/``: the images as PNG files (``stim-00000.png`` ...), read in
  this order by :class:`data_loaders.stimuli.ImageFolder`;
* ``<subject>/``: NIfTI single-trial betas, mask, ROI labels and names, trial
  table (:meth:`SimulatedSubject.write_nifti`);
* ``bids/``: BOLD runs and events in BIDS (with ``--bids``);
* ``truth/<subject>.npz``: everything planted (receptive-field centres and
  sizes, selectivities, SNR, noise-free responses, voxel positions and ROIs);
* ``summary.json``: sizes and the noise ceiling estimated from repeats against
  the planted one.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``neuro simulate-fmri``."""
    parser.add_argument("--subjects", type=int, default=2, help="number of subjects")
    parser.add_argument("--stimuli", type=int, default=120, help="distinct images")
    parser.add_argument("--repeats", type=int, default=3, help="trials per image per subject")
    parser.add_argument("--image-size", type=int, default=64, help="image side in pixels")
    parser.add_argument(
        "--voxels-per-roi", type=int, default=20, help="voxels per ROI and hemisphere"
    )
    parser.add_argument(
        "--snr", type=float, default=1.0, help="median single-trial SNR (default: 1.0)"
    )
    parser.add_argument(
        "--bids", action="store_true", help="also write BOLD runs and events as BIDS"
    )


def run(args: argparse.Namespace) -> int:
    """Entry point of ``neuro simulate-fmri``."""
    import numpy as np
    from PIL import Image

    from data_loaders.fmri.repeats import noise_ceiling
    from data_loaders.simulate.fmri import simulate_fmri
    from neuro._validation import check_int
    from neuro.io import atomic_open, atomic_write_json

    # the options whose names differ from simulate_fmri's are checked under their flags
    n_subjects = check_int("--subjects", args.subjects, minimum=1)
    n_stimuli = check_int("--stimuli", args.stimuli, minimum=1)
    n_repeats = check_int("--repeats", args.repeats, minimum=1)
    out = args.out
    sim = simulate_fmri(
        n_subjects=n_subjects,
        n_stimuli=n_stimuli,
        n_repeats=n_repeats,
        image_size=args.image_size,
        voxels_per_roi=args.voxels_per_roi,
        snr=args.snr,
        seed=args.seed,
    )
    for i, img in enumerate(sim.stimuli.images):
        with atomic_open(out / "stimuli" / f"stim-{i:05d}.png", "wb") as fh:
            Image.fromarray(np.round(img * 255).astype(np.uint8)).save(fh, format="PNG")
    summary = {
        "n_stimuli": len(sim.stimuli),
        "categories": list(sim.stimuli.category_names),
        "subjects": [],
    }
    for sub in sim.subjects:
        sub.write_nifti(out / sub.name, overwrite=args.overwrite)
        if args.bids:
            sub.write_bids(out / "bids", overwrite=args.overwrite)
        with atomic_open(out / "truth" / f"{sub.name}.npz", "wb") as fh:
            np.savez(
                fh,
                prf_centers=sub.prf_centers,
                prf_sizes=sub.prf_sizes,
                selectivity=sub.selectivity,
                snr=sub.snr,
                amplitude=sub.amplitude,
                clean=sub.clean,
                voxel_ijk=sub.voxel_ijk,
                coords=sub.coords,
                roi_labels=sub.roi_labels.astype(str),
                hemisphere=sub.hemisphere.astype(str),
                stimulus_categories=sim.stimuli.categories,
            )
        est = noise_ceiling(sub.betas, sub.stimulus_ids, sub.session_ids).r2(n_repeats)
        true = sub.true_noise_ceiling(n_repeats)
        summary["subjects"].append(
            {
                "name": sub.name,
                "n_voxels": sub.n_voxels,
                "n_trials": len(sub.stimulus_ids),
                "ceiling_r2_planted_mean": float(true.mean()),
                "ceiling_r2_estimated_mean": float(est.mean()),
                "ceiling_estimate_vs_planted_r": float(np.corrcoef(est, true)[0, 1]),
            }
        )
    atomic_write_json(out / "summary.json", summary)
    print(f"neuro simulate-fmri: {len(sim.stimuli)} images, written to {out}")
    for s in summary["subjects"]:
        print(
            f"  {s['name']}: {s['n_voxels']} voxels, {s['n_trials']} trials; noise ceiling "
            f"(R2, {n_repeats}-trial mean) planted {s['ceiling_r2_planted_mean']:.3f}, "
            f"estimated {s['ceiling_r2_estimated_mean']:.3f} (r = {s['ceiling_estimate_vs_planted_r']:.3f})"
        )
    return 0
