"""Simulators with ground truth: each returns its data and what it planted.

- :func:`simulate_fmri` (:mod:`data_loaders.simulate.fmri`): single-trial fMRI
  betas of voxels in the MNI152 brain with planted receptive fields and
  category selectivities, for images from :func:`make_stimuli`;
- :func:`simulate_linear_encoding` (:mod:`data_loaders.simulate.linear`):
  voxels that respond linearly to stimulus features, with a known noise
  ceiling;
- :func:`write_nsd_layout` (:mod:`data_loaders.simulate.nsd_layout`): a
  subject in the Natural Scenes Dataset's own file layout, with planted
  linear responses to image features;
- :func:`simulate_calcium` (:mod:`data_loaders.simulate.calcium`): calcium
  traces of several animals with planted functional communities;
- :func:`simulate_spiking_circuit` (:mod:`data_loaders.simulate.spikes`): a
  stimulus-driven spiking circuit with known directed connectivity (hubs,
  excitatory and inhibitory delayed couplings, refractoriness) and a
  behaviour read out from the population;
- :func:`simulate_shape_fmri` (:mod:`data_loaders.simulate.shapes`): a
  subject viewing renders of procedural 3D objects (:func:`make_shapes`:
  occupancy grids, signed distances, renders), with V1-V4 driven by the
  renders through receptive fields and an MTL-like ROI by category.
"""

from data_loaders.simulate.calcium import CalciumGroundTruth, SimulatedCalcium, simulate_calcium
from data_loaders.simulate.fmri import (
    CATEGORIES,
    ROIS,
    SimulatedFMRI,
    SimulatedStimuli,
    SimulatedSubject,
    contrast_energy,
    make_stimuli,
    simulate_fmri,
)
from data_loaders.simulate.linear import LinearEncodingData, simulate_linear_encoding
from data_loaders.simulate.nsd_layout import NSDLayout, write_nsd_layout
from data_loaders.simulate.shapes import (
    SHAPE_CATEGORIES,
    SHAPE_ROIS,
    ShapeSet,
    SimulatedShapeFMRI,
    make_shapes,
    render_occupancy,
    simulate_shape_fmri,
)
from data_loaders.simulate.spikes import (
    SimulatedCircuit,
    cross_correlogram,
    simulate_spiking_circuit,
)

__all__ = [
    "CATEGORIES",
    "ROIS",
    "SHAPE_CATEGORIES",
    "SHAPE_ROIS",
    "CalciumGroundTruth",
    "LinearEncodingData",
    "NSDLayout",
    "ShapeSet",
    "SimulatedCalcium",
    "SimulatedCircuit",
    "SimulatedFMRI",
    "SimulatedShapeFMRI",
    "SimulatedStimuli",
    "SimulatedSubject",
    "contrast_energy",
    "cross_correlogram",
    "make_shapes",
    "make_stimuli",
    "render_occupancy",
    "simulate_calcium",
    "simulate_fmri",
    "simulate_linear_encoding",
    "simulate_shape_fmri",
    "simulate_spiking_circuit",
    "write_nsd_layout",
]
