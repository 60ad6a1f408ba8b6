"""Tests for data_loaders.stimuli: folders, arrays and HDF5 bricks of images."""

from __future__ import annotations

import hashlib
import pickle

import h5py
import numpy as np
import pytest
from PIL import Image

from data_loaders import stimuli
from data_loaders.errors import InputError
from data_loaders.stimuli import (
    ArrayImages,
    HDF5Images,
    ImageFolder,
    ImageReadError,
    ImageSet,
    open_images,
)

N, H, W = 5, 9, 7  # unequal on purpose: a transposed image changes shape


@pytest.fixture
def pixels(rng) -> np.ndarray:
    """Five 9 x 7 RGB uint8 images."""
    return rng.integers(0, 256, size=(N, H, W, 3), dtype=np.uint8)


@pytest.fixture
def folder(tmp_path, pixels):
    d = tmp_path / "imgs"
    d.mkdir()
    for i, img in enumerate(pixels):
        Image.fromarray(img).save(d / f"img{i:02d}.png")
    (d / "notes.txt").write_text("not an image")
    (d / ".hidden.png").write_bytes(b"junk")  # hidden files are skipped
    return d


@pytest.fixture
def h5_path(tmp_path, pixels):
    p = tmp_path / "brick.hdf5"
    with h5py.File(p, "w") as f:
        f.create_dataset("imgBrick", data=pixels)
        f.create_dataset("meta/ids", data=np.arange(N))
    return p


@pytest.fixture
def sets(folder, h5_path, pixels):
    """The same pixels as a folder, a uint8 array, a float array and an HDF5 brick."""
    return {
        "folder": ImageFolder(folder),
        "array": ArrayImages(pixels),
        "float": ArrayImages(pixels.astype(np.float32) / np.float32(255)),
        "channel_first": ArrayImages(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))),
        "hdf5": HDF5Images(h5_path),
    }


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- one interface, same pixels -------------------------------------------------------


def test_all_sources_return_identical_images(sets, pixels):
    expected = pixels.astype(np.float32) / 255
    idx = [3, 0, -1, 3]
    for name, s in sets.items():
        assert isinstance(s, ImageSet)
        assert len(s) == N, name
        img = s[1]
        assert img.shape == (H, W, 3) and img.dtype == np.float32, name
        np.testing.assert_array_equal(img, expected[1], err_msg=name)
        x = s.load(idx)
        assert x.shape == (4, 3, H, W) and x.dtype == np.float32, name
        np.testing.assert_array_equal(x, expected[[3, 0, 4, 3]].transpose(0, 3, 1, 2), name)
        np.testing.assert_array_equal(s.load(idx, layout="NHWC"), expected[[3, 0, 4, 3]])
    ref = sets["folder"].load(range(N), size=(4, 6))
    for name, s in sets.items():
        np.testing.assert_array_equal(s.load(range(N), size=(4, 6)), ref, err_msg=name)


def test_names(sets):
    assert sets["folder"].names == [f"img{i:02d}.png" for i in range(N)]
    assert sets["hdf5"].names == [str(i) for i in range(N)]


def test_grayscale_and_rgba_become_rgb(tmp_path, rng):
    gray = rng.integers(0, 256, size=(N, H, W), dtype=np.uint8)
    rgba = rng.integers(0, 256, size=(N, H, W, 4), dtype=np.uint8)
    g = ArrayImages(gray).load([2], layout="NHWC")[0]
    np.testing.assert_array_equal(g, np.repeat(gray[2, :, :, None], 3, axis=2) / np.float32(255))
    np.testing.assert_array_equal(ArrayImages(rgba)[2], rgba[2, :, :, :3] / np.float32(255))
    # the same from files: an "L" png and an "RGBA" png
    d = tmp_path / "modes"
    d.mkdir()
    Image.fromarray(gray[2]).save(d / "a_gray.png")
    Image.fromarray(rgba[2]).save(d / "b_rgba.png")
    s = ImageFolder(d)
    np.testing.assert_array_equal(s[0], g)
    np.testing.assert_array_equal(s[1], rgba[2, :, :, :3] / np.float32(255))


@pytest.mark.parametrize(
    ("name", "array", "expected"),
    [
        ("gray16.png", np.arange(H * W, dtype=np.uint16).reshape(H, W) * 1000, 1 / 65535),
        ("float.tif", np.linspace(0, 1, H * W, dtype=np.float32).reshape(H, W), 1.0),
    ],
)
def test_high_bit_depth_files(tmp_path, name, array, expected):
    Image.fromarray(array).save(tmp_path / name)
    img = ImageFolder(tmp_path)[0]
    assert img.shape == (H, W, 3)
    np.testing.assert_allclose(img, np.repeat(array[:, :, None] * expected, 3, axis=2), rtol=1e-6)


def test_array_channel_axis_detection(pixels):
    last = ArrayImages(pixels)
    first = ArrayImages(pixels.transpose(0, 3, 1, 2))
    assert last.channels_last and not first.channels_last
    assert last.image_shape == first.image_shape == (H, W)
    # (n, 3, 3, 3) is ambiguous: channel-last unless told
    cube = np.arange(2 * 27, dtype=np.uint8).reshape(2, 3, 3, 3)
    assert ArrayImages(cube).channels_last
    told = ArrayImages(cube, channel_axis="first")
    np.testing.assert_array_equal(told[0], cube[0].transpose(1, 2, 0) / np.float32(255))


# ---- resizing, batching, laziness -----------------------------------------------------


@pytest.mark.parametrize("size", [(4, 6), (20, 13), (H, W)])
def test_resize_size_and_constant_value(size):
    const = np.full((2, H, W, 3), 0.3, dtype=np.float32)
    x = ArrayImages(const).load([0, 1], size=size)
    assert x.shape == (2, 3, *size)
    np.testing.assert_allclose(x, 0.3, atol=1e-6)
    assert x.min() >= 0 and x.max() <= 1


def test_resize_values_stay_in_unit_interval(pixels):
    x = ArrayImages(pixels).load(range(N), size=(17, 3))  # upsampling overshoots, then clips
    assert x.shape == (N, 3, 17, 3)
    assert x.min() >= 0 and x.max() <= 1


@pytest.mark.parametrize("batch_size", [1, 2, 5, 8])
def test_batches_cover_all_indices_in_order(sets, batch_size):
    s = sets["hdf5"]
    seen = []
    for ids, x in s.batches(batch_size, size=(4, 6)):
        assert ids.dtype == np.int64 and 1 <= len(ids) <= batch_size
        assert x.shape == (len(ids), 3, 4, 6)
        np.testing.assert_array_equal(x, s.load(ids, size=(4, 6)))
        seen.extend(ids.tolist())
    assert seen == list(range(N))


def test_batches_with_indices_and_negative_ids(sets):
    out = list(sets["array"].batches(2, indices=[4, -5, 2], layout="NHWC"))
    assert [ids.tolist() for ids, _ in out] == [[4, 0], [2]]
    assert out[0][1].shape == (2, H, W, 3)


def test_folder_opens_only_requested_files(folder, monkeypatch):
    opened = []
    real_open = Image.open

    def counting_open(fp, *args, **kwargs):
        opened.append(fp.name)
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    s = ImageFolder(folder)
    assert opened == []  # listing the folder reads no image
    s.load([3, 1, 3])
    assert sorted(opened) == ["img01.png", "img03.png"]  # a repeated id is read once
    opened.clear()
    s[-1]
    assert opened == ["img04.png"]


def test_hdf5_reads_sorted_unique_and_holds_no_file(h5_path, pixels, monkeypatch):
    s = HDF5Images(h5_path)
    selections = []
    real = stimuli._h5_reader

    def spy(ds):
        read = real(ds)

        def wrapped(sel):
            selections.append(sel)
            return read(sel)

        return wrapped

    monkeypatch.setattr(stimuli, "_h5_reader", spy)
    x = s.load([4, 1, 1, 2], layout="NHWC")
    np.testing.assert_array_equal(x, pixels[[4, 1, 1, 2]] / np.float32(255))
    assert [list(sel) for sel in selections] == [[1, 2, 4]]
    x = s.load([2, 1, 3])
    assert selections[-1] == slice(1, 4)  # contiguous ids are read as one slice
    pickle.loads(pickle.dumps(s))  # no open file handle inside


def test_open_images_dispatch(folder, h5_path, tmp_path, pixels):
    npy = tmp_path / "stim.npy"
    np.save(npy, pixels)
    assert isinstance(open_images(folder), ImageFolder)
    assert isinstance(open_images(str(h5_path)), HDF5Images)
    a = open_images(npy)
    assert isinstance(a, ArrayImages) and isinstance(a.array, np.memmap)
    assert isinstance(open_images(pixels), ArrayImages)
    s = ImageFolder(folder)
    assert open_images(s) is s
    np.testing.assert_array_equal(a.load([0, 4]), s.load([0, 4]))


def test_input_files_are_not_modified(folder, h5_path, tmp_path, pixels):
    npy = tmp_path / "stim.npy"
    np.save(npy, pixels)
    files = [*sorted(folder.iterdir()), h5_path, npy]
    before = {f: _digest(f) for f in files}
    mtimes = {f: f.stat().st_mtime_ns for f in files}
    for src in (folder, h5_path, npy):
        s = open_images(src)
        s.load(range(N), size=(3, 3))
        list(s.batches(2))
    assert {f: _digest(f) for f in files} == before
    assert {f: f.stat().st_mtime_ns for f in files} == mtimes


# ---- bad input --------------------------------------------------------------------


def test_folder_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"path=.*nope.*does not exist"):
        ImageFolder(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_images(tmp_path / "nope")


def test_folder_is_a_file(h5_path):
    with pytest.raises(InputError, match=r"is a file, not a folder.*open_images"):
        ImageFolder(h5_path)


def test_folder_without_images(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp_path / "sub" / "x.png")
    with pytest.raises(ValueError, match=r"no images.*\.png, \.jpg.*recursive=True"):
        ImageFolder(tmp_path)
    assert ImageFolder(tmp_path, recursive=True).names == ["sub/x.png"]


def test_corrupt_and_truncated_image_files_are_named(folder):
    (folder / "img02.png").write_bytes(b"this is not a png")
    good = (folder / "img01.png").read_bytes()
    (folder / "img03.png").write_bytes(good[: len(good) // 2])
    s = ImageFolder(folder)
    s.load([0, 1, 4])  # the others still read
    for bad in ("img02.png", "img03.png"):
        with pytest.raises(ImageReadError, match=rf"{bad}.*corrupt or truncated"):
            s.load([0, int(bad[4])])


def test_different_sizes_need_size(tmp_path):
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((W, H, 3), 255, np.uint8)).save(tmp_path / "b.png")
    s = ImageFolder(tmp_path)
    assert s[0].shape == (H, W, 3) and s[1].shape == (W, H, 3)
    with pytest.raises(ValueError, match=r"a\.png.*9x7.*b\.png.*7x9.*size=\(h, w\)"):
        s.load([0, 1])
    x = s.load([0, 1], size=(5, 5))
    assert x.shape == (2, 3, 5, 5)
    np.testing.assert_allclose(x[1], 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="size=.*"):
        list(s.batches(2))


@pytest.mark.parametrize("bad", [[5], [-6], [0, 99]])
def test_index_out_of_range(sets, bad):
    for s in sets.values():
        with pytest.raises(IndexError, match=r"valid indices are 0\.\.4 \(or -5\.\.-1"):
            s.load(bad)
    with pytest.raises(IndexError, match="0..4") as err:
        sets["folder"][bad[-1]]
    assert isinstance(err.value, InputError)  # a user's mistake: the CLI prints it in one line


def test_negative_indices_count_from_end(sets):
    s = sets["array"]
    np.testing.assert_array_equal(s[-1], s[4])
    np.testing.assert_array_equal(s.load([-2, 3]), s.load([3, 3]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"indices": []}, "empty"),
        ({"indices": [0.0, 1.0]}, "integers"),
        ({"indices": [[0, 1]]}, "one-dimensional"),
        ({"indices": 3}, r"s\[i\]"),
        ({"indices": [0], "size": (0, 4)}, r"size must be.*\(224, 224\)"),
        ({"indices": [0], "size": 5}, "size must be"),
        ({"indices": [0], "layout": "CHW"}, "layout must be"),
    ],
)
def test_bad_load_arguments(sets, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sets["array"].load(**kwargs)


def test_bad_batch_size(sets):
    with pytest.raises(ValueError, match="batch_size"):
        sets["array"].batches(0)  # raised on the call, not on first iteration
    with pytest.raises(TypeError, match="one integer"):
        sets["array"][1.0]


def test_hdf5_missing_dataset_lists_available(h5_path):
    with pytest.raises(
        InputError, match=r"dataset='images' does not exist.*imgBrick \(5, 9, 7, 3\)"
    ):
        HDF5Images(h5_path, dataset="images")
    with pytest.raises(InputError, match=r"'meta' is a group.*meta/ids"):
        HDF5Images(h5_path, dataset="meta")


def test_hdf5_truncated_or_not_hdf5(h5_path, tmp_path):
    data = h5_path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 3])
    junk = tmp_path / "junk.hdf5"
    junk.write_bytes(b"\x00" * 100)
    for p in (cut, junk):
        with pytest.raises(ImageReadError, match=rf"{p.name}.*truncated"):
            open_images(p)
    with pytest.raises(FileNotFoundError):
        HDF5Images(tmp_path / "missing.h5")


def test_corrupt_npy_and_unknown_suffix(tmp_path):
    bad = tmp_path / "x.npy"
    bad.write_bytes(b"not numpy")
    with pytest.raises(ImageReadError, match=r"x\.npy"):
        open_images(bad)
    other = tmp_path / "x.mat"
    other.write_bytes(b"")
    with pytest.raises(ValueError, match=r"'\.mat'.*\.npy"):
        open_images(other)


@pytest.mark.parametrize(
    "shape",
    [(H, W), (N, H, W, 2), (N, 5, H, W), (N, H, W, 3, 1), (0, H, W, 3)],
)
def test_array_unsupported_shape(shape):
    with pytest.raises(ValueError, match=rf"shape \({shape[0]}, .*expected \(n, H, W\)"):
        ArrayImages(np.zeros(shape, dtype=np.uint8))


def test_array_unsupported_dtype():
    with pytest.raises(ValueError, match="dtype int64.*uint8"):
        ArrayImages(np.zeros((N, H, W), dtype=np.int64))


@pytest.mark.parametrize("bad_value", [255.0, -0.1, np.nan])
def test_float_array_outside_unit_interval(pixels, bad_value):
    x = pixels.astype(np.float32) / 255
    x[2, 3, 4, 1] = bad_value
    with pytest.raises(ValueError, match=r"\[0, 1\].*x / 255"):
        ArrayImages(x)


def test_float_memmap_checked_when_read(tmp_path, pixels):
    npy = tmp_path / "f.npy"
    np.save(npy, pixels.astype(np.float32))  # 0..255 floats, forgot to scale
    s = open_images(npy)  # not scanned up front: it may be large
    with pytest.raises(ValueError, match=r"array image 2.*\[0, 1\]"):
        s.load([2])
