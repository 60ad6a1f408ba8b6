"""Brain3D at CPU scale: decode 3D objects from fMRI, then find the impaired visual region.

The same as ``neuro brain3d`` (same options, same errors). A simulated
subject views renders of procedural 3D objects (8 categories of primitives
and composites, with pose, scale and part variation); V1-V4 respond to the
renders through receptive fields that grow from V1 to V4, and an MTL-like
ROI to the objects' category and attributes. A two-stage decoder (Yang et
al., "Brain3D", 2024, at a size that trains on a CPU: a 3D shape prior, fMRI
-> latents in an early-visual and a semantic stream, a conditional flow over
shape latents) is trained on part of the stimuli; on the held-out ones the
script writes

* the decoded objects against the truth (IoU, Chamfer distance, two-way
  identification, category accuracy), beside the nearest training object in
  the predicted latent and the mean training object, with 95% intervals over
  objects, and whether the decoder beats the nearest-neighbour baseline;
* the lesion table: noise of variance 0, 0.5, 1 and 1.5 (the paper's) added
  to one ROI at a time and the degradation of each metric;
* the diagnosis table: which ROI is impaired (healthy, V1, V2, V3, V4, MTL),
  told from the decoded objects alone, with its accuracy against the number of
  images, like the paper's;
* figures (true / decoded / nearest objects as the subject saw them), example
  meshes (``meshes/*.obj``) and the model (``model.pt``).

The small default (240 objects on a 16^3 grid, 40 % held out) runs in a few
minutes on a CPU; ``--grid-size 32 --n-shapes 480 --shape-bank 2000`` is
closer to a real run, and ``--device cuda`` with ``--channels 32 64 128``
scales it up. With your own data: ``--betas BETAS.nii.gz --trials TRIALS.tsv
--labels ROIS.nii.gz --label-names NAMES.tsv --targets MESH_FOLDER
[--categories CATS.txt]``.

    python scripts/brain3d.py --out runs/brain3d
    python scripts/brain3d.py --grid-size 32 --n-shapes 480 --shape-bank 2000 --out runs/brain3d32
"""

from __future__ import annotations

import sys

from neuro.cli import main

if __name__ == "__main__":
    sys.exit(main(["brain3d", *sys.argv[1:]]))
