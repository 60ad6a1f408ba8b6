"""Decoding what a subject saw as a 3D object, and naming an impaired visual region (Brain3D).

* :class:`Brain3DDecoder`: fMRI -> shape and semantic latents (stage 1) ->
  a conditional rectified flow over a learned 3D shape latent (stage 2) ->
  occupancy grids, with the nearest-neighbour baseline and category readout;
* :mod:`~neuro.decoding.metrics`: IoU, Chamfer distance, two-way
  identification, category accuracy, intervals over objects;
* :mod:`~neuro.decoding.mesh`: marching cubes and ``.obj``/``.ply`` export;
* :mod:`~neuro.decoding.data`: per-stimulus responses aligned with 3D targets;
* :mod:`~neuro.decoding.lesion`: ROI lesions, their degradation sweep and the
  diagnosis of the impaired ROI;
* :mod:`~neuro.decoding.experiment`: the whole pipeline (simulate or split,
  decode held-out stimuli against baselines, lesions, diagnosis) behind
  ``neuro brain3d``.
"""

from neuro.decoding.brain3d import FLOW_CONDITIONS, STAGES, Brain3DDecoder
from neuro.decoding.data import DecodingData, check_rois, decoding_arrays
from neuro.decoding.experiment import (
    Brain3DReport,
    SimulatedDecoding,
    evaluate_decoder,
    simulated_decoding,
    split_decoding,
)
from neuro.decoding.lesion import (
    LESION_LABELS,
    SIGNATURE_FEATURES,
    DiagnosisResult,
    ImpairmentDiagnoser,
    LesionSweep,
    diagnosis_curve,
    diagnosis_signatures,
    lesion_responses,
    lesion_sweep,
)
from neuro.decoding.mesh import export_meshes, occupancy_to_mesh, write_mesh
from neuro.decoding.metrics import (
    category_accuracy,
    chamfer_distance,
    iou,
    mean_interval,
    multiscale_iou,
    shape_metrics,
    surface_points,
    two_way_identification,
)

__all__ = [
    "FLOW_CONDITIONS",
    "LESION_LABELS",
    "SIGNATURE_FEATURES",
    "STAGES",
    "Brain3DDecoder",
    "Brain3DReport",
    "DecodingData",
    "DiagnosisResult",
    "ImpairmentDiagnoser",
    "LesionSweep",
    "SimulatedDecoding",
    "category_accuracy",
    "chamfer_distance",
    "check_rois",
    "decoding_arrays",
    "diagnosis_curve",
    "diagnosis_signatures",
    "evaluate_decoder",
    "export_meshes",
    "iou",
    "lesion_responses",
    "lesion_sweep",
    "mean_interval",
    "multiscale_iou",
    "occupancy_to_mesh",
    "shape_metrics",
    "simulated_decoding",
    "split_decoding",
    "surface_points",
    "two_way_identification",
    "write_mesh",
]
