"""Simulated fMRI experiments whose answer is known.

Stimuli
    Images of four categories, built from pictures that ship with scikit-image
    (its ``lfw_subset`` faces and non-face crops, and its natural images) and
    from procedural drawings: ``face`` (a face pasted onto a background),
    ``scene`` (a full-field natural photograph or a drawn layout with a
    horizon, ground plane and buildings), ``object`` (a drawn shape or a
    cut-out photographed object on a background) and ``text`` (rows of
    letter strings on a background). Faces, objects and text appear at random
    positions and sizes; each stimulus carries a per-pixel map of where its
    category content lies.

Voxels
    Placed in the MNI152 2 mm brain that nilearn ships, in ROIs centred at
    typical MNI coordinates in both hemispheres: early visual areas V1, V2,
    V3, V4 and category-selective FFA (faces), PPA (scenes), LOC (objects)
    and VWFA (text). Each subject's ROI centres are jittered by a few mm and
    hold a different number of voxels.

Responses
    Early visual voxels have a Gaussian population receptive field over a
    retinotopic map of local contrast energy: centres follow the cortex
    (contralateral hemifield, dorsal areas represent the lower field, more
    anterior voxels more eccentric) and sizes grow from V1 to V4 and with
    eccentricity. Category-selective voxels respond to how much of the image
    their preferred category covers, wherever it lies, plus a weaker response
    to the other categories; with ``category_tuning > 0`` they also respond to
    the *appearance* of their category's content (luminance, contrast and
    colour read where that content lies, through a per-voxel tuning vector),
    which no linear map of a feature map computes: a model must find the
    content in each image to read it (content-dependent routing). With
    ``n_families``, category voxels of every subject are drawn from a few
    tuning families shared across subjects (what a meta-learned encoder can
    learn). Each voxel's noise-free response is scaled to a
    chosen amplitude (percent signal change) over the stimulus set; each trial
    adds Gaussian noise at the voxel's SNR, so the true noise ceiling of an
    ``n``-trial average is ``snr / (snr + 1/n)`` (fraction of variance).

Map coordinates are ``(x, y)`` in ``[-1, 1]``: ``x`` from the image's left edge
(-1) to its right edge (+1), ``y`` from the top (-1) to the bottom (+1), as in
``torch.nn.functional.grid_sample``; receptive-field sizes are Gaussian sds in
the same units.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from data_loaders._io import check_overwrite
from data_loaders._validation import check_array, check_bool, check_float, check_int
from data_loaders.errors import InputError, InputTypeError
from data_loaders.fmri.geometry import GeometryFields, VoxelGeometry

__all__ = [
    "APPEARANCE",
    "CATEGORIES",
    "ROIS",
    "SimulatedFMRI",
    "SimulatedStimuli",
    "SimulatedSubject",
    "contrast_energy",
    "make_stimuli",
    "simulate_fmri",
]

#: Stimulus categories, in the column order of ``selectivity`` and ``content``.
CATEGORIES = ("face", "scene", "object", "text")

#: Per-pixel appearance channels of :meth:`SimulatedStimuli.appearance_maps`.
APPEARANCE = ("luminance", "contrast", "red-green", "blue-yellow")

#: ROI -> (MNI centre of the left-hemisphere ROI in mm, kind, preferred category or pRF size range).
ROIS = {
    "V1": ((-8.0, -92.0, 2.0), "early", (0.04, 0.08)),
    "V2": ((-14.0, -94.0, 8.0), "early", (0.07, 0.13)),
    "V3": ((-22.0, -90.0, 12.0), "early", (0.10, 0.20)),
    "V4": ((-30.0, -78.0, -12.0), "early", (0.18, 0.35)),
    "FFA": ((-40.0, -52.0, -18.0), "category", "face"),
    "PPA": ((-26.0, -46.0, -8.0), "category", "scene"),
    "LOC": ((-44.0, -76.0, -4.0), "category", "object"),
    "VWFA": ((-44.0, -58.0, -12.0), "category", "text"),
}


def _gzip(img) -> bytes:
    return gzip.compress(img.to_bytes(), compresslevel=1)


# ----------------------------------------------------------------- stimuli
@dataclass
class SimulatedStimuli:
    """Stimulus images and where their category content lies.

    Attributes
    ----------
    images : ndarray of shape (n_stimuli, size, size, 3), float32 in [0, 1]
    categories : ndarray of shape (n_stimuli,), int
        Index into :data:`CATEGORIES`.
    content : ndarray of shape (n_stimuli, n_categories, size, size), float32 in [0, 1]
        Per-pixel coverage of each category (the pasted face, object or text,
        or the whole field for a scene).
    category_names : tuple of str
    """

    images: np.ndarray
    categories: np.ndarray
    content: np.ndarray
    category_names: tuple[str, ...] = CATEGORIES

    def __len__(self) -> int:
        return len(self.images)

    def appearance_maps(self) -> np.ndarray:
        """Per-pixel appearance channels, each z-scored over all pixels of all images.

        The channels are :data:`APPEARANCE`: luminance (mean of RGB), local
        contrast energy (:func:`contrast_energy`), red-green (R - G) and
        blue-yellow (B - (R + G) / 2).

        Returns
        -------
        ndarray of shape (n_stimuli, 4, size, size), float32
        """
        img = self.images.astype(np.float32)
        r, g, b = img[..., 0], img[..., 1], img[..., 2]
        maps = np.stack(
            [img.mean(axis=3), contrast_energy(img), r - g, b - (r + g) / 2], axis=1
        ).astype(np.float32)
        mean = maps.mean(axis=(0, 2, 3), keepdims=True)
        sd = maps.std(axis=(0, 2, 3), keepdims=True)
        return (maps - mean) / np.where(sd > 0, sd, 1.0)

    def content_appearance(self) -> np.ndarray:
        """How each category's content looks: appearance summed over its pixels.

        ``A[i, c, a] = mean over pixels of content[i, c] * appearance_maps[i, a]``
        -- the appearance channel ``a`` read where category ``c`` lies in
        image ``i`` (0 when the category is absent). Appearance-tuned voxels
        (``simulate_fmri(category_tuning > 0)``) respond to
        ``A[:, preferred_category] @ appearance_tuning``.

        Returns
        -------
        ndarray of shape (n_stimuli, n_categories, 4), float32
        """
        return np.einsum("ncyx,nayx->nca", self.content, self.appearance_maps()) / (
            self.content.shape[2] * self.content.shape[3]
        )

    def oracle_maps(self, map_size: int = 8) -> np.ndarray:
        """A stand-in for a backbone's feature map that encodes what is where.

        The category content (:attr:`content`, 4 channels) and the
        appearance channels (:meth:`appearance_maps`, 4 channels), averaged
        over blocks to ``map_size x map_size``: what an ideal frozen vision
        model's spatial feature map would say about these images. On it, the
        simulated voxels are exactly computable: early voxels pool contrast
        over a receptive field, category voxels read their content's
        coverage and appearance wherever it lies.

        Parameters
        ----------
        map_size : int, default=8
            Side of the output grid; must divide the image size.

        Returns
        -------
        ndarray of shape (n_stimuli, 8, map_size, map_size), float32
            Channels: the :data:`CATEGORIES` content, then :data:`APPEARANCE`.
        """
        map_size = check_int("map_size", map_size, minimum=1)
        size = self.images.shape[1]
        if size % map_size:
            raise InputError(
                f"map_size={map_size} does not divide the image size {size}; choose a divisor "
                f"(e.g. {size // 4 if size % 4 == 0 else 1})."
            )
        block = size // map_size
        both = np.concatenate([self.content, self.appearance_maps()], axis=1)
        pooled = both.reshape(len(self), both.shape[1], map_size, block, map_size, block)
        return pooled.mean(axis=(3, 5)).astype(np.float32)

    def semantic_embedding(
        self, dim: int = 16, noise: float = 0.05, seed: int = 0, appearance: bool = False
    ) -> np.ndarray:
        """A stand-in for a frozen semantic model's embedding of each image.

        Each image's category coverage (the fraction of the image each
        category covers) through a fixed random linear map to ``dim``
        numbers, plus Gaussian noise of ``noise`` times the embedding's sd:
        what a semantic image model such as CLIP encodes linearly about these
        images. It describes the image, not any voxel, and feeds the
        semantic-modulated readout and the in-context encoder the way a real
        frozen model would.

        Parameters
        ----------
        dim : int, default=16
            Length of each embedding (>= 1).
        noise : float, default=0.05
            Noise sd relative to the embedding's sd (>= 0).
        seed : int, default=0
            Seed of the random map and the noise.
        appearance : bool, default=False
            Also encode how each category's content looks
            (:meth:`content_appearance`, 16 more numbers, each scaled to the
            coverage's sd), so appearance-tuned voxels are linear in the
            embedding too (keep ``dim >= 20`` to lose nothing).

        Returns
        -------
        ndarray of shape (n_stimuli, dim), float32
        """
        dim = check_int("dim", dim, minimum=1)
        noise = check_float("noise", noise, minimum=0.0)
        appearance = check_bool("appearance", appearance)
        rng = np.random.default_rng(check_int("seed", seed, allow_none=True))
        parts = self.content.mean(axis=(2, 3))
        if appearance:
            look = self.content_appearance().reshape(len(self), -1)
            look = look / (look.std(axis=0, keepdims=True) + 1e-12) * parts.std()
            parts = np.concatenate([parts, look], axis=1)
        proj = rng.standard_normal((parts.shape[1], dim)) / np.sqrt(parts.shape[1])
        emb = parts @ proj
        emb = emb + noise * emb.std() * rng.standard_normal(emb.shape)
        return emb.astype(np.float32)


def _resize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from skimage.transform import resize

    return resize(img, shape, anti_aliasing=True, preserve_range=True).astype(np.float32)


def _to_rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img, dtype=np.float32)
    if img.max() > 1.0:
        img = img / 255.0
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return img[..., :3]


class _Library:
    """Source pictures from scikit-image, loaded once."""

    def __init__(self) -> None:
        from skimage import data

        lfw = data.lfw_subset()  # 100 faces, then 100 non-face crops, 25 x 25, in [0, 1]
        self.faces = lfw[:100].astype(np.float32)
        self.nonfaces = lfw[100:].astype(np.float32)
        self.scenes = [
            _to_rgb(getattr(data, name)())
            for name in (
                "coffee",
                "chelsea",
                "rocket",
                "astronaut",
                "hubble_deep_field",
                "immunohistochemistry",
            )
        ]
        self.textures = [
            _to_rgb(getattr(data, name)()) for name in ("brick", "grass", "gravel", "moon")
        ]
        self.objects = [_to_rgb(getattr(data, name)()) for name in ("horse", "coins", "clock")]


def _crop(rng, img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    side = int(rng.integers(min(h, w) // 2, min(h, w) + 1))
    y0 = int(rng.integers(0, h - side + 1))
    x0 = int(rng.integers(0, w - side + 1))
    return _resize(img[y0 : y0 + side, x0 : x0 + side], (size, size))


def _background(rng, lib: _Library, size: int) -> np.ndarray:
    """A low-contrast textured background."""
    tex = _crop(rng, lib.textures[int(rng.integers(len(lib.textures)))], size)
    gray = np.full_like(tex, 0.5)
    return gray + 0.25 * (tex - tex.mean())


def _layout(rng, size: int) -> np.ndarray:
    """A drawn scene: sky gradient, horizon, ground plane and buildings."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    horizon = rng.uniform(0.35, 0.65)
    sky = np.stack([0.5 + 0.3 * yy, 0.6 + 0.3 * yy, np.full_like(yy, 0.95)], axis=2)
    ground_color = np.array([rng.uniform(0.2, 0.5), rng.uniform(0.3, 0.6), rng.uniform(0.1, 0.3)])
    ground = ground_color * (0.6 + 0.4 * ((yy - horizon) / (1 - horizon)))[..., None]
    img = np.where((yy < horizon)[..., None], sky, ground)
    for _ in range(int(rng.integers(2, 6))):  # buildings standing on the horizon
        x0, width = rng.uniform(0, 0.9), rng.uniform(0.05, 0.25)
        top = horizon - rng.uniform(0.1, 0.4)
        shade = rng.uniform(0.2, 0.7)
        inside = (xx >= x0) & (xx < x0 + width) & (yy >= top) & (yy < horizon)
        img[inside] = shade
    # receding lines on the ground plane
    for k in range(5):
        slope = (k - 2) * rng.uniform(0.4, 0.8)
        line = (np.abs(xx - 0.5 - slope * (yy - horizon)) < 0.01) & (yy > horizon)
        img[line] = 0.1
    return img.astype(np.float32)


def _shape_patch(rng, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A filled polygon or ellipse in a random colour; returns (rgb, mask)."""
    from skimage.draw import ellipse, polygon

    mask = np.zeros((size, size), dtype=bool)
    c = size / 2
    if rng.random() < 0.5:
        rr, cc = ellipse(
            c,
            c,
            rng.uniform(0.3, 0.48) * size,
            rng.uniform(0.2, 0.48) * size,
            shape=mask.shape,
            rotation=rng.uniform(0, np.pi),
        )
    else:
        n = int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radius = rng.uniform(0.25, 0.48, n) * size
        rr, cc = polygon(c + radius * np.sin(angles), c + radius * np.cos(angles), shape=mask.shape)
    mask[rr, cc] = True
    color = rng.uniform(0.0, 1.0, 3).astype(np.float32)
    shading = np.linspace(0.7, 1.0, size, dtype=np.float32)[:, None, None]
    return np.broadcast_to(color, (size, size, 3)) * shading, mask


def _text_patch(rng, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of random letters, dark on light; returns (rgb, mask of the text block)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (64, 64), color=235)
    draw = ImageDraw.Draw(canvas)
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for row in range(5):
        word = "".join(rng.choice(list(letters), size=int(rng.integers(5, 10))))
        draw.text((2, 2 + 12 * row), word, fill=20)
    gray = _resize(np.asarray(canvas, dtype=np.float32) / 255.0, (size, size))
    return np.repeat(gray[..., None], 3, axis=2), np.ones((size, size), dtype=bool)


def _object_patch(rng, lib: _Library, size: int) -> tuple[np.ndarray, np.ndarray]:
    if rng.random() < 0.6:
        return _shape_patch(rng, size)
    photo = _crop(rng, lib.objects[int(rng.integers(len(lib.objects)))], size)
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2
    mask = (yy**2 + xx**2) <= (0.48 * size) ** 2  # a round cut-out
    return photo, mask


def _paste(rng, canvas: np.ndarray, patch: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Paste ``patch`` (masked) at a random position; return the coverage map."""
    size = canvas.shape[0]
    p = patch.shape[0]
    y0 = int(rng.integers(0, size - p + 1))
    x0 = int(rng.integers(0, size - p + 1))
    region = canvas[y0 : y0 + p, x0 : x0 + p]
    region[mask] = patch[mask]
    cover = np.zeros((size, size), dtype=np.float32)
    cover[y0 : y0 + p, x0 : x0 + p] = mask
    return cover


def make_stimuli(n_stimuli: int = 240, size: int = 64, seed: int | None = 0) -> SimulatedStimuli:
    """Draw ``n_stimuli`` images, balanced over :data:`CATEGORIES`.

    Parameters
    ----------
    n_stimuli : int, default=240
    size : int, default=64
        Images are ``size x size`` pixels (>= 16).
    seed : int or None, default=0

    Returns
    -------
    SimulatedStimuli
    """
    n_stimuli = check_int("n_stimuli", n_stimuli, minimum=1)
    size = check_int("size", size, minimum=16)
    rng = np.random.default_rng(check_int("seed", seed, allow_none=True))
    lib = _Library()
    n_cat = len(CATEGORIES)
    categories = rng.permutation(np.arange(n_stimuli) % n_cat)
    images = np.empty((n_stimuli, size, size, 3), dtype=np.float32)
    content = np.zeros((n_stimuli, n_cat, size, size), dtype=np.float32)
    for i, cat in enumerate(categories):
        name = CATEGORIES[cat]
        if name == "scene":
            if rng.random() < 0.5:
                images[i] = _crop(rng, lib.scenes[int(rng.integers(len(lib.scenes)))], size)
            else:
                images[i] = _layout(rng, size)
            content[i, cat] = 1.0
            continue
        canvas = _background(rng, lib, size)
        patch_size = int(size * rng.uniform(0.3, 0.6))
        if name == "face":
            face = _resize(lib.faces[int(rng.integers(len(lib.faces)))], (patch_size, patch_size))
            yy, xx = np.mgrid[0:patch_size, 0:patch_size] - (patch_size - 1) / 2
            mask = (yy / (0.48 * patch_size)) ** 2 + (xx / (0.40 * patch_size)) ** 2 <= 1.0
            patch = np.repeat(face[..., None], 3, axis=2)
        elif name == "object":
            patch, mask = _object_patch(rng, lib, patch_size)
        else:
            patch, mask = _text_patch(rng, patch_size)
        content[i, cat] = _paste(rng, canvas, patch, mask)
        images[i] = canvas
    np.clip(images, 0.0, 1.0, out=images)
    return SimulatedStimuli(images=images, categories=categories.astype(np.int64), content=content)


def contrast_energy(images: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Local luminance contrast energy, the early-visual feature map.

    Parameters
    ----------
    images : array of shape (n, size, size, 3) in [0, 1]
    scale : float, default=1.0
        Gaussian scale (pixels) of the centre-surround filter.

    Returns
    -------
    ndarray of shape (n, size, size), float32
    """
    images = check_array("images", images, ndim=4, shape_hint="(n, size, size, 3)")
    scale = check_float("scale", scale, minimum=0.0, strict_minimum=True)
    gray = images.mean(axis=3)
    out = np.empty_like(gray)
    for i, g in enumerate(gray):
        dog = ndimage.gaussian_filter(g, scale) - ndimage.gaussian_filter(g, 3 * scale)
        out[i] = ndimage.gaussian_filter(dog**2, scale)
    return out.astype(np.float32)


# ------------------------------------------------------------------ voxels
@dataclass
class SimulatedSubject(GeometryFields):
    """One simulated subject: single-trial betas and everything planted.

    Attributes
    ----------
    name : str
    betas : ndarray of shape (n_trials, n_voxels), float32
        Single-trial responses in percent signal change.
    stimulus_ids : ndarray of shape (n_trials,)
        Which stimulus each trial showed.
    session_ids : ndarray of shape (n_trials,)
    clean : ndarray of shape (n_stimuli, n_voxels), float32
        Noise-free responses (without the per-voxel baseline).
    baseline : ndarray of shape (n_voxels,)
        Per-voxel offset added to every trial.
    geometry : VoxelGeometry
        Where the voxels lie: their indices in the MNI152 2 mm volume, with
        its shape and affine.
    roi_labels : ndarray of shape (n_voxels,), str
        ROI of each voxel (a key of :data:`ROIS`).
    hemisphere : ndarray of shape (n_voxels,), str
        "left" or "right".
    prf_centers : ndarray of shape (n_voxels, 2)
        Planted receptive-field centres (x, y) in map coordinates; NaN for
        category-selective voxels.
    prf_sizes : ndarray of shape (n_voxels,)
        Planted receptive-field sds in map units; NaN for category voxels.
    selectivity : ndarray of shape (n_voxels, n_categories)
        Planted weights on category coverage; 0 for early visual voxels.
    snr : ndarray of shape (n_voxels,)
        Signal variance over the stimulus set / noise variance of one trial.
    amplitude : ndarray of shape (n_voxels,)
        Sd of the noise-free response over the stimulus set (% signal change).
    appearance_tuning : ndarray of shape (n_voxels, 4)
        Planted unit tuning vector over :data:`APPEARANCE` of each category
        voxel's preferred content; it shapes the response only when
        ``category_tuning > 0``. NaN for early visual voxels.
    family : ndarray of shape (n_voxels,), int
        The shared tuning family each category voxel was drawn from
        (``n_families``); -1 for early voxels and when no families were drawn.
    voxel_ijk, coords, affine, volume_shape
        Read-only views of ``geometry``: indices ``(n_voxels, 3)``, MNI
        coordinates in mm ``(n_voxels, 3)``, the ``(4, 4)`` affine and the
        volume's shape.
    """

    name: str
    betas: np.ndarray
    stimulus_ids: np.ndarray
    session_ids: np.ndarray
    clean: np.ndarray
    baseline: np.ndarray
    geometry: VoxelGeometry
    roi_labels: np.ndarray
    hemisphere: np.ndarray
    prf_centers: np.ndarray
    prf_sizes: np.ndarray
    selectivity: np.ndarray
    snr: np.ndarray
    amplitude: np.ndarray
    appearance_tuning: np.ndarray | None = None
    family: np.ndarray | None = None

    @property
    def n_voxels(self) -> int:
        """Number of voxels (columns of :attr:`betas`)."""
        return self.betas.shape[1]

    @property
    def coords(self) -> np.ndarray:
        """MNI coordinates in mm, ``(n_voxels, 3)``."""
        return self.geometry.coords

    def _crop(self, margin: int = 2):
        """Bounding box of the voxels (plus ``margin``) and the affine of that box."""
        lo = np.maximum(self.voxel_ijk.min(axis=0) - margin, 0)
        hi = np.minimum(self.voxel_ijk.max(axis=0) + margin + 1, self.volume_shape)
        affine = self.affine.copy()
        affine[:3, 3] = self.affine[:3, :3] @ lo + self.affine[:3, 3]
        return lo, tuple(int(v) for v in hi - lo), affine

    def _roi_names(self) -> list[str]:
        """ROI names numbered 1.. in the files: ROIS' keep their numbers, others (MTL) follow."""
        return list(ROIS) + sorted(set(self.roi_labels.tolist()) - set(ROIS))

    def _nifti_paths(self, folder) -> dict[str, Path]:
        folder = Path(folder)
        return {
            key: folder / f"{self.name}_{suffix}"
            for key, suffix in (
                ("betas", "betas.nii.gz"),
                ("mask", "mask.nii.gz"),
                ("rois", "rois.nii.gz"),
                ("roi_names", "rois.tsv"),
                ("trials", "trials.tsv"),
            )
        }

    def write_nifti(self, folder, overwrite: bool = False) -> dict[str, Path]:
        """Write the betas as NIfTI files with a trial table, as a real study's would be.

        Files (``<name>`` is the subject name), all in a box around the ROIs of
        the MNI152 2 mm grid:

        * ``<name>_betas.nii.gz``: 4D single-trial betas (x, y, z, trial), % signal change;
        * ``<name>_mask.nii.gz``: the voxels with data (1) and the rest (0);
        * ``<name>_rois.nii.gz``: integer ROI labels, names in ``<name>_rois.tsv``;
        * ``<name>_trials.tsv``: one row per trial: ``trial``, ``stimulus_id``, ``session``.

        Outside the mask the betas hold low-level noise, as real brain voxels
        without a visual response would.

        Parameters
        ----------
        folder : str or path
            Created if needed.
        overwrite : bool, default=False
            Replace files of the same names; without it an existing one is
            refused (:class:`~data_loaders.errors.OutputExistsError`) before
            anything is written.

        Returns
        -------
        dict of str to Path
        """
        import nibabel as nib

        from data_loaders._io import atomic_open, atomic_write_text

        overwrite = check_bool("overwrite", overwrite)
        paths = self._nifti_paths(folder)
        for p in paths.values():
            check_overwrite(p, overwrite)
        lo, shape, affine = self._crop()
        local = self.voxel_ijk - lo
        rng = np.random.default_rng(0)
        vol = rng.normal(0, 0.05, (*shape, self.betas.shape[0])).astype(np.float32)
        vol[tuple(local.T)] = self.betas.T
        mask = np.zeros(shape, dtype=np.uint8)
        mask[tuple(local.T)] = 1
        names = self._roi_names()
        labels = np.zeros(shape, dtype=np.int16)
        labels[tuple(local.T)] = [names.index(r) + 1 for r in self.roi_labels]
        for key, data in (("betas", vol), ("mask", mask), ("rois", labels)):
            img = nib.Nifti1Image(data, affine)
            with atomic_open(paths[key], "wb") as fh:
                fh.write(img.to_bytes() if not str(paths[key]).endswith(".gz") else _gzip(img))
        atomic_write_text(
            paths["roi_names"],
            "index\tname\n" + "".join(f"{i + 1}\t{n}\n" for i, n in enumerate(names)),
        )
        atomic_write_text(
            paths["trials"],
            "trial\tstimulus_id\tsession\n"
            + "".join(
                f"{t}\t{s}\t{sess}\n"
                for t, (s, sess) in enumerate(zip(self.stimulus_ids, self.session_ids, strict=True))
            ),
        )
        return paths

    def write_bids(
        self,
        root,
        task: str = "sim",
        t_r: float = 2.0,
        trials_per_run: int = 40,
        trial_spacing: float = 6.0,
        overwrite: bool = False,
    ) -> dict[str, Any]:
        """Write BOLD runs with their events as a BIDS dataset, plus the mask and ROIs.

        Each run shows ``trials_per_run`` trials, one every ``trial_spacing`` s
        (1 s long); the BOLD of each masked voxel is 100 plus the sum of its
        single-trial betas (percent signal change) times the trial's response
        under nilearn's Glover HRF, so a first-level GLM with one regressor per
        trial recovers :attr:`betas`. Voxels outside the mask hold a constant
        100 with slight noise.

        Files: ``dataset_description.json``, ``task-<task>_bold.json``
        (``RepetitionTime``), ``<name>/func/<name>_task-<task>_run-<k>_bold.nii.gz``
        and ``..._events.tsv`` (``onset``, ``duration``, ``trial_type``,
        ``stimulus_id``), and the mask and ROI files of :meth:`write_nifti`
        (without betas) under ``derivatives/simulation/<name>/``.

        Parameters
        ----------
        root : str or path
            The dataset's root folder; other subjects' files in it are kept.
        task : str, default="sim"
        t_r : float, default=2.0
            Repetition time in seconds.
        trials_per_run : int, default=40
        trial_spacing : float, default=6.0
            Seconds from one trial onset to the next.
        overwrite : bool, default=False
            Replace this subject's files; without it any of them that exists
            is refused before anything is written.

        Returns
        -------
        dict
            ``"bold"`` and ``"events"`` (lists of paths), ``"mask"``, ``"rois"``,
            ``"roi_names"``, ``"root"``.
        """
        import json

        import nibabel as nib
        import pandas as pd
        from nilearn.glm.first_level import make_first_level_design_matrix

        from data_loaders._io import atomic_open, atomic_write_text

        if not isinstance(task, str) or not task.isalnum():
            raise InputError(f"task must be a BIDS label (letters and digits); got {task!r}.")
        t_r = check_float("t_r", t_r, minimum=0.0, strict_minimum=True)
        trials_per_run = check_int("trials_per_run", trials_per_run, minimum=1)
        trial_spacing = check_float(
            "trial_spacing", trial_spacing, minimum=0.0, strict_minimum=True
        )
        overwrite = check_bool("overwrite", overwrite)
        root = Path(root)
        func = root / self.name / "func"
        n_trials = len(self.stimulus_ids)
        starts = range(0, n_trials, trials_per_run)
        stems = [func / f"{self.name}_task-{task}_run-{run}" for run in range(1, len(starts) + 1)]
        anat_folder = root / "derivatives" / "simulation" / self.name
        for p in [
            *(Path(f"{stem}{end}") for stem in stems for end in ("_bold.nii.gz", "_events.tsv")),
            *self._nifti_paths(anat_folder).values(),
        ]:
            check_overwrite(p, overwrite)
        atomic_write_text(
            root / "dataset_description.json",
            json.dumps({"Name": "neuro simulated fMRI", "BIDSVersion": "1.8.0"}) + "\n",
        )
        atomic_write_text(
            root / f"task-{task}_bold.json", json.dumps({"RepetitionTime": t_r}) + "\n"
        )
        lo, shape, affine = self._crop()
        local = tuple((self.voxel_ijk - lo).T)
        rng = np.random.default_rng(0)
        out: dict[str, Any] = {"bold": [], "events": [], "root": root}
        for stem, start in zip(stems, starts, strict=True):
            trials = np.arange(start, min(start + trials_per_run, n_trials))
            onsets = 6.0 + trial_spacing * np.arange(len(trials))
            n_vols = int(np.ceil((onsets[-1] + 24.0) / t_r))
            events = pd.DataFrame(
                {
                    "onset": onsets,
                    "duration": 1.0,
                    "trial_type": [f"t{k:03d}" for k in range(len(trials))],
                    "stimulus_id": self.stimulus_ids[trials],
                }
            )
            design = make_first_level_design_matrix(
                np.arange(n_vols) * t_r,
                events[["onset", "duration", "trial_type"]],
                hrf_model="glover",
                drift_model=None,
            )
            regressors = design[events["trial_type"]].to_numpy()  # (n_vols, n_trials_run)
            bold = np.full((*shape, n_vols), 100.0, dtype=np.float32)
            bold += rng.normal(0, 0.01, bold.shape).astype(np.float32)
            bold[local] += (regressors @ self.betas[trials]).T  # % of the 100 baseline
            with atomic_open(f"{stem}_bold.nii.gz", "wb") as fh:
                fh.write(_gzip(nib.Nifti1Image(bold, affine)))
            events["trial_type"] = "stimulus"
            atomic_write_text(f"{stem}_events.tsv", events.to_csv(sep="\t", index=False))
            out["bold"].append(Path(f"{stem}_bold.nii.gz"))
            out["events"].append(Path(f"{stem}_events.tsv"))
        anat = self.write_nifti(anat_folder, overwrite=overwrite)
        anat["betas"].unlink()
        anat["trials"].unlink()
        out.update(mask=anat["mask"], rois=anat["rois"], roi_names=anat["roi_names"])
        return out

    def write_nsd_hdf5(self, path, overwrite: bool = False) -> Path:
        """Write the betas as an NSD-style HDF5 session (int16 x 300, masked layout).

        Holds ``betas``, ``stimulus_ids``, ``voxel_ijk``, ``affine``,
        ``volume_shape`` (the MNI152 2 mm grid) and ``roi`` with its names; read
        it with :class:`data_loaders.fmri.NSDSession`.
        """
        from data_loaders.fmri.hdf5 import write_nsd_session

        names = self._roi_names()
        return write_nsd_session(
            path,
            self.betas,
            self.stimulus_ids,
            geometry=self.geometry,
            roi=[names.index(r) + 1 for r in self.roi_labels],
            roi_names={i + 1: n for i, n in enumerate(names)},
            overwrite=overwrite,
        )

    def true_noise_ceiling(self, n_average=1) -> np.ndarray:
        """Planted fraction of variance explainable in ``n_average``-trial averages.

        ``snr / (snr + mean(1/n))``, the quantity NSD's ncsnr estimates.

        Parameters
        ----------
        n_average : int or array of int, default=1
            Trials averaged per stimulus: one number, or one per evaluated stimulus.

        Returns
        -------
        ndarray of shape (n_voxels,)
        """
        n = check_array("n_average", n_average, ndim=(0, 1), dtype=np.float64)
        if np.any(n < 1):
            raise InputError(f"n_average must be >= 1; got {n_average!r}.")
        inv_n = float(np.mean(1.0 / n))
        return self.snr / (self.snr + inv_n)


@dataclass
class SimulatedFMRI:
    """A simulated experiment: stimuli shown to several subjects.

    Attributes
    ----------
    stimuli : SimulatedStimuli
    subjects : list of SimulatedSubject
    feature_maps : ndarray of shape (n_stimuli, size, size)
        The contrast-energy map early voxels integrate.
    """

    stimuli: SimulatedStimuli
    subjects: list[SimulatedSubject] = field(default_factory=list)
    feature_maps: np.ndarray | None = None


def _mni():
    from nilearn.datasets import load_mni152_brain_mask

    mask = load_mni152_brain_mask(resolution=2)
    return np.asarray(mask.get_fdata() > 0), np.asarray(mask.affine)


def _place_rois(
    rng, brain: np.ndarray, affine: np.ndarray, counts: dict, jitter_mm: float, rois=None
):
    """Choose voxels for each ROI and hemisphere: the in-brain voxels nearest a jittered centre.

    ``rois`` is a table like :data:`ROIS` (name -> (left centre in mm, kind, spec)); default ROIS.
    """
    ijk = np.argwhere(brain)
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    taken = np.zeros(len(ijk), dtype=bool)
    chosen, labels, hemis = [], [], []
    for roi, (centre, _, _) in (ROIS if rois is None else rois).items():
        for hemi, sign in (("left", 1.0), ("right", -1.0)):
            c = np.array(centre) * np.array([sign, 1.0, 1.0]) + rng.normal(0, jitter_mm, 3)
            d = np.linalg.norm(xyz - c, axis=1)
            d[taken] = np.inf
            idx = np.argsort(d)[: counts[roi]]
            taken[idx] = True
            chosen.append(idx)
            labels += [roi] * len(idx)
            hemis += [hemi] * len(idx)
    idx = np.concatenate(chosen)
    return ijk[idx], xyz[idx], np.array(labels), np.array(hemis)


def _retinotopy(rng, xyz: np.ndarray, hemis: np.ndarray, size_range, centre_mm: np.ndarray):
    """pRF centres from cortical position: contralateral field, dorsal = lower field."""
    rel = xyz - centre_mm
    # more anterior (larger y) -> more eccentric; rank-based so every ROI spans the field
    ant = rel[:, 1] + rng.normal(0, 0.5, len(rel))
    ecc = 0.05 + 0.85 * (np.argsort(np.argsort(ant)) + 0.5) / len(ant)
    up = rel[:, 2] / (np.abs(rel[:, 2]).max() + 1e-9)
    phi = 0.5 * np.pi * np.clip(up + rng.normal(0, 0.1, len(rel)), -1, 1)  # polar angle
    side = np.where(hemis == "left", 1.0, -1.0)  # left hemisphere sees the right field
    cx = side * ecc * np.cos(phi)
    cy = ecc * np.sin(phi)  # dorsal (up) voxels -> lower field (+y)
    lo, hi = size_range
    sizes = lo + (hi - lo) * ecc / 0.9 + rng.normal(0, 0.005, len(rel))
    return np.stack([cx, cy], axis=1), np.clip(sizes, 0.5 * lo, None)


def _gaussian_weights(centers: np.ndarray, sizes: np.ndarray, size: int) -> np.ndarray:
    grid = (np.arange(size) + 0.5) / size * 2 - 1
    gx = np.exp(-((grid[None, :] - centers[:, 0:1]) ** 2) / (2 * sizes[:, None] ** 2))
    gy = np.exp(-((grid[None, :] - centers[:, 1:2]) ** 2) / (2 * sizes[:, None] ** 2))
    w = gy[:, :, None] * gx[:, None, :]  # (n_voxels, y, x)
    return w / w.sum(axis=(1, 2), keepdims=True)


def _measure(rng, drive: np.ndarray, snr: float, n_repeats: int, n_sessions: int) -> dict:
    """Single-trial betas of voxels whose z-scored noise-free responses are ``drive``.

    Each voxel gets an amplitude (its response sd, % signal change), an SNR
    spread around ``snr``, a baseline, per-session offsets and trial noise;
    each stimulus is shown ``n_repeats`` times in random order. Returns the
    :class:`SimulatedSubject` fields ``betas``, ``stimulus_ids``,
    ``session_ids``, ``clean``, ``baseline``, ``snr`` and ``amplitude``.
    """
    n_stim, n_vox = drive.shape
    amplitude = rng.uniform(0.5, 2.0, n_vox)
    clean = drive * amplitude
    voxel_snr = snr * np.exp(rng.uniform(np.log(1 / 3), np.log(3), n_vox))
    noise_sd = amplitude / np.sqrt(voxel_snr)
    baseline = rng.normal(0, 0.5, n_vox)
    stimulus_ids = np.concatenate([rng.permutation(n_stim) for _ in range(n_repeats)])
    n_trials = len(stimulus_ids)
    session_ids = np.minimum(np.arange(n_trials) * n_sessions // n_trials, n_sessions - 1)
    session_offset = rng.normal(0, 0.3, (n_sessions, n_vox))
    betas = (
        clean[stimulus_ids]
        + baseline
        + session_offset[session_ids]
        + noise_sd * rng.standard_normal((n_trials, n_vox))
    )
    return {
        "betas": betas.astype(np.float32),
        "stimulus_ids": stimulus_ids.astype(np.int64),
        "session_ids": session_ids.astype(np.int64),
        "clean": clean.astype(np.float32),
        "baseline": baseline,
        "snr": voxel_snr,
        "amplitude": amplitude,
    }


def simulate_fmri(
    n_subjects: int = 2,
    n_stimuli: int = 240,
    n_repeats: int = 3,
    image_size: int = 64,
    voxels_per_roi: int = 40,
    snr: float = 1.0,
    n_sessions: int = 1,
    seed: int | None = 0,
    stimuli: SimulatedStimuli | None = None,
    category_tuning: float = 0.0,
    n_families: int | None = None,
) -> SimulatedFMRI:
    """Simulate single-trial betas of several subjects viewing the same stimuli.

    Parameters
    ----------
    n_subjects : int, default=2
    n_stimuli : int, default=240
        Distinct images (ignored when ``stimuli`` is given).
    n_repeats : int, default=3
        Trials per image per subject.
    image_size : int, default=64
        Image side in pixels.
    voxels_per_roi : int, default=40
        Typical voxels per ROI and hemisphere; each subject varies it by up
        to +-25%.
    snr : float, default=1.0
        Median single-trial SNR (signal variance over noise variance); voxels
        spread from a third to three times it.
    n_sessions : int, default=1
        Trials are split into this many sessions, each with its own
        baseline drift per voxel (z-score within sessions to remove it).
    seed : int or None, default=0
    stimuli : SimulatedStimuli, optional
        Reuse a stimulus set.
    category_tuning : float in [0, 1], default=0.0
        Fraction of each category voxel's signal variance that comes from
        the appearance of its preferred category's content
        (:meth:`SimulatedStimuli.content_appearance` times the voxel's
        ``appearance_tuning``) rather than from how much of the image that
        content covers. The appearance is read where the content lies, so it
        is a product of "what is where" and no linear map of a feature map
        computes it; attention that finds the content (the transformer
        encoder) can.
    n_families : int, optional
        Draw category voxels from this many tuning families shared by all
        subjects (off-preferred category weights and appearance tuning of a
        family prototype, plus a small per-voxel jitter), so voxels of a new
        subject resemble those of the training subjects. None: every voxel
        is drawn independently.

    Returns
    -------
    SimulatedFMRI

    Raises
    ------
    InputError
        A count below 1, an image size below 16 pixels, an SNR that is not a
        finite number > 0, ``category_tuning`` outside [0, 1].

    Notes
    -----
    The two options draw from their own random stream, so the default
    simulation is unchanged by them.
    """
    n_subjects = check_int("n_subjects", n_subjects, minimum=1)
    n_repeats = check_int("n_repeats", n_repeats, minimum=1)
    voxels_per_roi = check_int("voxels_per_roi", voxels_per_roi, minimum=1)
    n_sessions = check_int("n_sessions", n_sessions, minimum=1)
    snr = check_float("snr", snr, minimum=0.0, strict_minimum=True)
    seed = check_int("seed", seed, allow_none=True)
    category_tuning = check_float("category_tuning", category_tuning, minimum=0.0, maximum=1.0)
    n_families = check_int("n_families", n_families, minimum=1, allow_none=True)
    if stimuli is None:
        n_stimuli = check_int("n_stimuli", n_stimuli, minimum=1)
        image_size = check_int("image_size", image_size, minimum=16)
    elif not isinstance(stimuli, SimulatedStimuli):
        raise InputTypeError(
            f"stimuli must be a SimulatedStimuli (from make_stimuli) or None; got "
            f"{type(stimuli).__name__}."
        )
    rng = np.random.default_rng(seed)
    if stimuli is None:
        stimuli = make_stimuli(n_stimuli, image_size, seed=rng.integers(2**31))
    n_stim, size = len(stimuli), stimuli.images.shape[1]
    energy = contrast_energy(stimuli.images)
    coverage = stimuli.content.mean(axis=(2, 3))  # (n_stimuli, n_categories)
    look = stimuli.content_appearance() if category_tuning > 0 else None
    brain, affine = _mni()
    # tuning options draw from their own stream: the default simulation stays as it was
    rng_tuning = np.random.default_rng(None if seed is None else [seed, 1])
    n_app = len(APPEARANCE)
    if n_families is not None:
        fam_weights = rng_tuning.uniform(0.0, 0.25, (n_families, len(CATEGORIES)))
        fam_pref = rng_tuning.uniform(0.8, 1.2, n_families)
        fam_tuning = rng_tuning.standard_normal((n_families, n_app))

    subjects = []
    for s in range(n_subjects):
        counts = {roi: max(2, round(voxels_per_roi * rng.uniform(0.75, 1.25))) for roi in ROIS}
        ijk, xyz, labels, hemis = _place_rois(rng, brain, affine, counts, jitter_mm=3.0)
        n_vox = len(labels)
        centers = np.full((n_vox, 2), np.nan)
        sizes = np.full(n_vox, np.nan)
        selectivity = np.zeros((n_vox, len(CATEGORIES)))
        tuning = np.full((n_vox, n_app), np.nan)
        family = np.full(n_vox, -1, dtype=np.int64)
        preferred = np.full(n_vox, -1, dtype=np.int64)
        drive = np.zeros((n_stim, n_vox))
        for roi, (_, kind, spec) in ROIS.items():
            for hemi in ("left", "right"):
                sel = (labels == roi) & (hemis == hemi)
                if kind == "early":
                    c_mm = xyz[sel].mean(axis=0)
                    centers[sel], sizes[sel] = _retinotopy(rng, xyz[sel], hemis[sel], spec, c_mm)
                else:
                    weights = rng.uniform(0.0, 0.25, (sel.sum(), len(CATEGORIES)))
                    weights[:, CATEGORIES.index(spec)] = rng.uniform(0.8, 1.2, sel.sum())
                    t = rng_tuning.standard_normal((sel.sum(), n_app))
                    if n_families is not None:
                        f = rng_tuning.integers(n_families, size=sel.sum())
                        jitter = rng_tuning.normal(0.0, 0.03, weights.shape)
                        weights = np.clip(fam_weights[f] + jitter, 0.0, None)
                        weights[:, CATEGORIES.index(spec)] = fam_pref[f]
                        t = fam_tuning[f] + 0.15 * t
                        family[sel] = f
                    selectivity[sel] = weights
                    tuning[sel] = t / np.linalg.norm(t, axis=1, keepdims=True)
                    preferred[sel] = CATEGORIES.index(spec)
        early = ~np.isnan(sizes)
        w = _gaussian_weights(centers[early], sizes[early], size)
        drive[:, early] = energy.reshape(n_stim, -1) @ w.reshape(early.sum(), -1).T
        drive[:, ~early] = coverage @ selectivity[~early].T
        if look is not None:
            cat = np.flatnonzero(~early)
            looks = np.einsum("nva,va->nv", look[:, preferred[cat]], tuning[cat])
            both = [d - d.mean(axis=0) for d in (drive[:, cat], looks)]
            both = [d / (d.std(axis=0) + 1e-12) for d in both]
            drive[:, cat] = (
                np.sqrt(1 - category_tuning) * both[0] + np.sqrt(category_tuning) * both[1]
            )
        drive = drive - drive.mean(axis=0)
        drive /= drive.std(axis=0) + 1e-12
        measured = _measure(rng, drive, snr, n_repeats, n_sessions)
        subjects.append(
            SimulatedSubject(
                name=f"sub-{s + 1:02d}",
                geometry=VoxelGeometry(tuple(int(v) for v in brain.shape), affine, ijk),
                roi_labels=labels,
                hemisphere=hemis,
                prf_centers=centers,
                prf_sizes=sizes,
                selectivity=selectivity,
                **measured,
                appearance_tuning=tuning,
                family=family,
            )
        )
    return SimulatedFMRI(stimuli=stimuli, subjects=subjects, feature_maps=energy)
