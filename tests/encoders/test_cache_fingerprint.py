"""The feature cache knows an image set by its files, so a cache hit reads no image."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
from PIL import Image

from data_loaders.stimuli import HDF5Images, ImageFolder, ImageSubset
from neuro.encoders.features import FeatureCacheError, GaborFeatures, cached_features


def _bank():
    return GaborFeatures(n_orientations=2, frequencies=(0.25,), map_size=4, device="cpu")


def test_a_cache_hit_on_an_hdf5_brick_reads_no_pixels(tmp_path, monkeypatch):
    brick = tmp_path / "stimuli.hdf5"
    rng = np.random.default_rng(0)
    with h5py.File(brick, "w") as f:
        f["imgBrick"] = rng.integers(0, 255, (10, 20, 20, 3), dtype=np.uint8)
    images = ImageSubset(HDF5Images(brick), [7, 2, 5])
    first = cached_features(_bank(), images, tmp_path / "cache.h5")

    def no_reading(self, positions):
        raise AssertionError("a cache hit must not read images")

    monkeypatch.setattr(HDF5Images, "_iter_raw", no_reading)
    np.testing.assert_array_equal(cached_features(_bank(), images, tmp_path / "cache.h5"), first)
    # other ids of the same brick are another image set
    with pytest.raises(FeatureCacheError):
        cached_features(_bank(), ImageSubset(HDF5Images(brick), [7, 2]), tmp_path / "cache.h5")


def test_an_edited_image_file_invalidates_the_cache(tmp_path):
    folder = tmp_path / "stimuli"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    cached_features(_bank(), ImageFolder(folder), tmp_path / "cache.h5")
    cached_features(_bank(), ImageFolder(folder), tmp_path / "cache.h5")  # a hit
    edited = folder / "1.png"
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(edited)
    stat = edited.stat()
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    with pytest.raises(FeatureCacheError):
        cached_features(_bank(), ImageFolder(folder), tmp_path / "cache.h5")
