"""Reading fMRI responses the way the field stores them.

- :func:`load_nifti_betas`: single-trial beta maps from NIfTI, masked with
  nilearn, with per-voxel ROI labels and the way back to NIfTI maps;
- :func:`find_bids_runs` and :func:`estimate_single_trial_betas`: BIDS runs and
  single-trial betas from nilearn's first-level GLM (LSA or LSS);
- :class:`NSDSubject`: the Natural Scenes Dataset as distributed (betas-only
  ``betas_sessionXX.hdf5``, ``nsd_expdesign.mat``, ROI volumes with their
  ``.ctab`` names, the ``nsd_stimuli.hdf5`` image brick), read lazily;
- :class:`NSDSession` and :func:`write_nsd_session`: NSD-style HDF5 sessions
  (int16 betas x 300), read lazily in voxel or trial batches;
- :func:`load_surface_betas`, :class:`SurfaceGeometry`: surface betas (GIfTI,
  FreeSurfer MGH) with vertex ROI labels, and surface maps written and drawn;
- :func:`noise_ceiling`, :func:`average_repeats`, :func:`split_by_stimulus`:
  repeats, NSD's ncsnr noise ceiling, splits that keep repeats together;
- :class:`VoxelGeometry`: where the voxels lie (volume shape, affine, voxel
  indices), carried by every reader and the simulator, and the way back to
  NIfTI maps; :class:`RegionGeometry` for region-averaged columns
  (``load_nifti_betas(..., average_rois=True)``);
- :class:`FMRIDataset`: responses, stimuli, ROIs, noise ceiling and splits in
  one object that every encoder accepts.

Every reader turns a missing file into
:class:`~data_loaders.errors.MissingFileError` and an empty, truncated or
foreign one into :class:`~data_loaders.errors.UnreadableFileError`, both
:class:`~data_loaders.errors.InputError`.
"""

from data_loaders.fmri._common import FMRIDataWarning
from data_loaders.fmri.bids import (
    BidsRun,
    SingleTrialBetas,
    estimate_single_trial_betas,
    find_bids_runs,
)
from data_loaders.fmri.dataset import FMRIDataset
from data_loaders.fmri.geometry import RegionGeometry, VoxelGeometry, values_to_nifti
from data_loaders.fmri.hdf5 import NSDSession, write_nsd_session
from data_loaders.fmri.nifti import NiftiBetas, load_nifti_betas
from data_loaders.fmri.nsd import (
    NSDDesign,
    NSDSubject,
    nsd_paths,
    nsd_trial_images,
    read_ctab,
    read_nsd_expdesign,
)
from data_loaders.fmri.repeats import (
    NoiseCeiling,
    average_repeats,
    noise_ceiling,
    split_by_stimulus,
    zscore,
)
from data_loaders.fmri.surface import (
    SurfaceBetas,
    SurfaceGeometry,
    load_surface_betas,
    read_surface_labels,
    write_surface_betas,
)

__all__ = [
    "BidsRun",
    "FMRIDataWarning",
    "FMRIDataset",
    "NSDDesign",
    "NSDSession",
    "NSDSubject",
    "NiftiBetas",
    "NoiseCeiling",
    "RegionGeometry",
    "SingleTrialBetas",
    "SurfaceBetas",
    "SurfaceGeometry",
    "VoxelGeometry",
    "average_repeats",
    "estimate_single_trial_betas",
    "find_bids_runs",
    "load_nifti_betas",
    "load_surface_betas",
    "noise_ceiling",
    "nsd_paths",
    "nsd_trial_images",
    "read_ctab",
    "read_nsd_expdesign",
    "read_surface_labels",
    "split_by_stimulus",
    "values_to_nifti",
    "write_nsd_session",
    "write_surface_betas",
    "zscore",
]
