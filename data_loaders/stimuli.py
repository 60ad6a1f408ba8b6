"""Image stimulus sets for fMRI encoders, read lazily and resized on demand.

Stimuli come as a folder of image files, an in-memory (or memory-mapped)
array, or an HDF5 "brick" of images (NSD ships its 73k images as one dataset
``imgBrick`` of shape ``(n, 425, 425, 3)`` uint8). Each is wrapped in an
:class:`ImageSet`, which reads only the images asked for and hands them back
as float32 RGB arrays in ``[0, 1]``:

- ``s[i]`` is one image of shape ``(H, W, 3)``;
- ``s.load(indices, size=(h, w))`` is a stack of shape ``(n, 3, h, w)``;
- ``s.batches(batch_size, size=(h, w))`` yields ``(indices, stack)`` pairs, so
  memory stays bounded by ``batch_size`` images.

Grayscale images are repeated to three channels and an alpha channel is
dropped (not composited). Indices follow Python: ``-1`` is the last image.
Source files are only ever opened read-only.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import operator
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from data_loaders._validation import check_bool, check_file, check_int
from data_loaders.errors import (
    InputError,
    InputTypeError,
    MissingFileError,
    UnreadableFileError,
    one_line,
)

__all__ = [
    "DEFAULT_EXTENSIONS",
    "ArrayImages",
    "HDF5Images",
    "ImageFolder",
    "ImageIndexError",
    "ImageReadError",
    "ImageSet",
    "ImageSubset",
    "open_images",
]

DEFAULT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_LAYOUTS = ("NCHW", "NHWC")
_READ_BLOCK = 64  # images read from an array or HDF5 dataset at a time


class ImageReadError(UnreadableFileError, OSError):
    """A file could not be read as an image, an HDF5 file or a ``.npy`` array; the message names it.

    An :class:`~data_loaders.errors.UnreadableFileError` (so an
    :class:`~data_loaders.errors.InputError`), and an ``OSError`` as before.
    """


class ImageIndexError(InputError, IndexError):
    """A stimulus id outside the image set (an :class:`~data_loaders.errors.InputError` and an ``IndexError``)."""


class ImageSet(abc.ABC):
    """A set of images addressed by stimulus id ``0 .. len(s) - 1``.

    Subclasses read images only when asked for them. All images come back as
    float32 RGB in ``[0, 1]``: grayscale is repeated to three channels, alpha
    is dropped, uint8 is divided by 255 and uint16 by 65535.

    Indices may be negative and count from the end, as in Python (``-1`` is
    the last image); anything outside ``-len(s) .. len(s) - 1`` raises
    :class:`IndexError`.

    Examples
    --------
    >>> import numpy as np
    >>> from data_loaders.stimuli import ArrayImages
    >>> pixels = np.zeros((5, 9, 7, 3), dtype=np.uint8)  # 5 images, 9 x 7 pixels, RGB
    >>> s = ArrayImages(pixels)
    >>> len(s), s[0].shape
    (5, (9, 7, 3))
    >>> s.load([4, 0], size=(4, 6)).shape
    (2, 3, 4, 6)
    >>> [ids.tolist() for ids, x in s.batches(2)]
    [[0, 1], [2, 3], [4]]
    """

    # ---- what a subclass provides -------------------------------------------------

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of images in the set."""

    @abc.abstractmethod
    def _iter_raw(self, positions: np.ndarray) -> Iterator[tuple[np.ndarray, str]]:
        """Generator of ``(pixels, where)`` for each of ``positions`` (sorted, unique, >= 0).

        ``pixels`` has shape (H, W) or (H, W, C) with C in (1, 3, 4) and dtype
        uint8, uint16 or float; ``where`` names the image in error messages.
        """

    @property
    def names(self) -> list[str]:
        """One name per image, in stimulus-id order (the index as a string by default)."""
        return [str(i) for i in range(len(self))]

    def fingerprint(self) -> str:
        """A SHA-1 that changes when the images do, for feature caches.

        By default every image's stored pixels are hashed (read, not resized);
        sets read from files hash each file's path, size and modification
        time instead, which is instant however many images there are.
        """
        h = hashlib.sha1(type(self).__name__.encode())
        positions = np.arange(len(self))
        for start in range(0, len(self), _READ_BLOCK):
            for pixels, _ in self._iter_raw(positions[start : start + _READ_BLOCK]):
                arr = np.ascontiguousarray(pixels)
                h.update(f"{arr.dtype.str}{arr.shape}".encode())
                h.update(arr.tobytes())
        return h.hexdigest()

    # ---- the shared interface -----------------------------------------------------

    def __getitem__(self, index: int) -> np.ndarray:
        """One image as a float32 array of shape (H, W, 3) in [0, 1]."""
        try:
            i = operator.index(index)
        except TypeError:
            raise InputTypeError(
                f"An ImageSet is indexed by one integer; got {type(index).__name__}. "
                "For several images use load(indices) or batches(batch_size)."
            ) from None
        return self._load_positions(self._positions([i]), None, "NHWC")[0]

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    def load(
        self,
        indices: Sequence[int] | np.ndarray,
        size: tuple[int, int] | None = None,
        layout: str = "NCHW",
    ) -> np.ndarray:
        """Read the images ``indices`` (only those) into one float32 array.

        Parameters
        ----------
        indices : sequence of int, shape (n,)
            Stimulus ids, in the order wanted; repeats and negative ids are
            allowed. Must not be empty.
        size : (h, w) tuple of int, optional
            Resize every image to ``h`` rows by ``w`` columns (pixels) with
            anti-aliased bicubic interpolation (Pillow), computed in float and
            clipped to [0, 1]. Required when the images differ in size.
        layout : {"NCHW", "NHWC"}, default="NCHW"
            Axis order of the result.

        Returns
        -------
        images : float32 array of shape (n, 3, h, w) or (n, h, w, 3)
            Values in [0, 1]; ``images[k]`` is image ``indices[k]``.

        Raises
        ------
        ImageIndexError
            An index is out of range (an ``IndexError`` and an ``InputError``).
        InputError
            Bad ``indices``, ``size`` or ``layout``, or images of different
            sizes without ``size``.
        ImageReadError
            A file could not be read (an ``UnreadableFileError``).
        """
        size = _check_size(size)
        layout = _check_layout(layout)
        return self._load_positions(self._positions(indices), size, layout)

    def batches(
        self,
        batch_size: int,
        size: tuple[int, int] | None = None,
        indices: Sequence[int] | np.ndarray | None = None,
        layout: str = "NCHW",
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Iterate over the images ``batch_size`` at a time.

        Parameters
        ----------
        batch_size : int
            Images per batch; at most this many are held in memory at once.
        size : (h, w) tuple of int, optional
            Resize every image to this size (see :meth:`load`).
        indices : sequence of int, shape (n,), optional
            Which images, in which order; default all, in stimulus-id order.
        layout : {"NCHW", "NHWC"}, default="NCHW"

        Yields
        ------
        ids : int64 array of shape (b,)
            The stimulus ids of the batch, made non-negative (``-1`` becomes
            ``len(s) - 1``).
        images : float32 array of shape (b, 3, h, w) or (b, h, w, 3)
            As returned by :meth:`load`.
        """
        batch_size = check_int("batch_size", batch_size, minimum=1)
        size = _check_size(size)
        layout = _check_layout(layout)
        positions = np.arange(len(self)) if indices is None else self._positions(indices)
        # Arguments are checked above, when batches() is called; reading starts on iteration.
        return self._iter_batches(positions, int(batch_size), size, layout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_images={len(self)})"

    # ---- internals ----------------------------------------------------------------

    def _iter_batches(self, positions, batch_size, size, layout):
        for start in range(0, len(positions), batch_size):
            ids = positions[start : start + batch_size]
            yield ids, self._load_positions(ids, size, layout)

    def _positions(self, indices: Any) -> np.ndarray:
        """Validate ``indices`` and return them as non-negative int64 positions."""
        idx = np.arange(len(self))[indices] if isinstance(indices, slice) else np.asarray(indices)
        if idx.ndim != 1:
            hint = " For one image use s[i]." if idx.ndim == 0 else ""
            raise InputError(
                f"indices must be a one-dimensional sequence of ints; got shape {idx.shape}.{hint}"
            )
        if idx.size == 0:
            raise InputError("indices is empty; give at least one stimulus id.")
        if not np.issubdtype(idx.dtype, np.integer):
            raise InputError(
                f"indices must be integers (stimulus ids); got dtype {idx.dtype}. "
                "Convert them with np.asarray(indices, dtype=int); for a boolean mask use "
                "np.flatnonzero(mask)."
            )
        n = len(self)
        idx = idx.astype(np.int64)
        bad = (idx < -n) | (idx >= n)
        if bad.any():
            raise ImageIndexError(
                f"{int(bad.sum())} of {idx.size} indices are out of range (first: "
                f"{int(idx[bad][0])}); this set holds {n} images, so valid indices are "
                f"0..{n - 1} (or -{n}..-1 counting from the end)."
            )
        return np.where(idx < 0, idx + n, idx)

    def _load_positions(
        self, positions: np.ndarray, size: tuple[int, int] | None, layout: str
    ) -> np.ndarray:
        unique, inverse, counts = np.unique(positions, return_inverse=True, return_counts=True)
        # rows[k] are the output rows that show unique[k] (several when an id repeats)
        rows = np.split(np.argsort(inverse.reshape(-1), kind="stable"), np.cumsum(counts)[:-1])
        out = None
        first = None  # (where, shape) of the first image, for the size-mismatch message
        with contextlib.closing(self._iter_raw(unique)) as raw:  # closes files on errors too
            for k, (pixels, where) in enumerate(raw):
                out, first = self._place(out, first, rows[k], pixels, where, len(positions), size)
        assert out is not None  # positions is never empty
        if layout == "NCHW":
            out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
        return out

    @staticmethod
    def _place(out, first, rows, pixels, where, n, size):
        img = _to_float_rgb(pixels, where)
        if size is not None:
            img = _resize(img, size)
        elif first is None:
            first = (where, img.shape[:2])
        elif img.shape[:2] != first[1]:
            (h0, w0), (h1, w1) = first[1], img.shape[:2]
            raise InputError(
                f"The images requested differ in size: {first[0]} is {h0}x{w0} but {where} "
                f"is {h1}x{w1} (height x width). Pass size=(h, w) to load() or batches() "
                "to resize them all to one size."
            )
        if out is None:
            out = np.empty((n, *img.shape), dtype=np.float32)
        out[rows] = img
        return out, first


# ---- implementations --------------------------------------------------------------


class ImageFolder(ImageSet):
    """Image files in a folder; stimulus id ``i`` is the ``i``-th file in sorted order.

    Files are sorted by name as plain strings (so ``img10.png`` comes before
    ``img2.png``; zero-pad numbers to keep numeric order). Hidden files (name
    starting with ``.``) are skipped. Each file is opened with Pillow only
    when its image is read, and closed straight after.

    Parameters
    ----------
    path : str or path-like
        The folder.
    extensions : tuple of str, default=(".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
        File name endings that count as images (case-insensitive).
    recursive : bool, default=False
        Also look in sub-folders; files are then sorted by their path relative
        to ``path`` (``/``-separated), which is also their name.

    Attributes
    ----------
    path : Path
    files : list of Path, length n_images
        The image files, in stimulus-id order.

    Raises
    ------
    MissingFileError
        ``path`` does not exist.
    InputError
        ``path`` is a file, or the folder holds no file with one of
        ``extensions``.
    ImageReadError
        (when images are read) a file is empty, truncated or not an image.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        extensions: Sequence[str] = DEFAULT_EXTENSIONS,
        recursive: bool = False,
    ) -> None:
        self.path = Path(path).expanduser()
        if isinstance(extensions, str):
            extensions = (extensions,)
        exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
        if not exts:
            raise InputError(f"extensions must name at least one file ending; got {extensions!r}.")
        self.extensions = exts
        self.recursive = check_bool("recursive", recursive)
        if not self.path.exists():
            raise MissingFileError(
                f"ImageFolder: path={str(self.path)!r} does not exist; check the path to the "
                "folder of stimulus images."
            )
        if not self.path.is_dir():
            raise InputError(
                f"ImageFolder: path={str(self.path)!r} is a file, not a folder. For an HDF5 "
                "brick or a .npy array use open_images(path)."
            )
        candidates = self.path.rglob("*") if self.recursive else self.path.iterdir()
        found = []
        for f in candidates:
            rel = f.relative_to(self.path).as_posix()
            if any(part.startswith(".") for part in rel.split("/")):
                continue
            if f.suffix.lower() in exts and f.is_file():
                found.append((rel, f))
        if not found:
            where = "or its sub-folders " if self.recursive else ""
            raise InputError(
                f"ImageFolder: no images in {str(self.path)!r} {where}(looked for files ending in "
                f"{', '.join(exts)}). Point path at the folder holding the images, pass "
                "extensions=... for other file types"
                + ("" if self.recursive else ", or recursive=True if they are in sub-folders")
                + "."
            )
        found.sort(key=lambda t: t[0])
        self._names = [rel for rel, _ in found]
        self.files = [f for _, f in found]

    def __len__(self) -> int:
        return len(self.files)

    @property
    def names(self) -> list[str]:
        """File names (paths relative to the folder), in stimulus-id order."""
        return list(self._names)

    def fingerprint(self) -> str:
        """SHA-1 of each file's path, size and modification time (no pixel is read)."""
        return _stat_fingerprint(type(self).__name__, self.files)

    def __repr__(self) -> str:
        return f"ImageFolder({str(self.path)!r}, n_images={len(self)})"

    def _iter_raw(self, positions):
        for p in positions:
            yield _read_image_file(self.files[p]), repr(str(self.files[p]))


class ArrayImages(ImageSet):
    """Images held in an array (in memory or memory-mapped).

    Parameters
    ----------
    array : array-like
        One of these shapes (``n`` images of ``H`` x ``W`` pixels):

        - ``(n, H, W)``: grayscale;
        - ``(n, H, W, C)`` with C in (1, 3, 4): channel-last (gray, RGB, RGBA);
        - ``(n, C, H, W)`` with C in (1, 3, 4): channel-first.

        With ``channel_axis="auto"`` a 4-D array is channel-last when its last
        axis has 1, 3 or 4 entries, else channel-first when its second axis
        does; pass ``channel_axis`` to settle an ambiguous shape such as
        ``(n, 3, 3, 3)``. dtype uint8 is scaled by 1/255 and uint16 by
        1/65535; float values must already lie in [0, 1].
    channel_axis : {"auto", "last", "first"}, default="auto"

    Attributes
    ----------
    array : ndarray
        The array as given (not copied).
    channels_last : bool
        Whether the colour axis is the last one (True also for 3-D arrays).
    image_shape : (H, W)

    Raises
    ------
    InputError
        Unsupported shape or dtype, or (for an in-memory float array) values
        outside [0, 1]. A memory-mapped float array is checked image by image
        as it is read.
    """

    def __init__(self, array: Any, channel_axis: str = "auto") -> None:
        arr = array if isinstance(array, np.ndarray) else np.asarray(array)
        self.array = arr
        self.channels_last, self.image_shape = _image_axes(
            arr.shape, arr.dtype, channel_axis, "ArrayImages: array"
        )
        if np.issubdtype(arr.dtype, np.floating) and not isinstance(arr, np.memmap):
            _check_float_range(arr, "ArrayImages: array")

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def __repr__(self) -> str:
        h, w = self.image_shape
        return (
            f"ArrayImages(n_images={len(self)}, image_shape=({h}, {w}), dtype={self.array.dtype})"
        )

    def _iter_raw(self, positions):
        yield from _iter_blocks(
            lambda sel: self.array[sel], positions, self.channels_last, "array image"
        )


class ImageSubset(ImageSet):
    """Some images of another set, renumbered ``0 .. len(ids) - 1`` in increasing id order.

    For work on the images a subject saw out of a much larger set (NSD's
    subjects saw 10,000 of its 73,000): features and caches then cover only
    those. Nothing is read until asked for.

    Parameters
    ----------
    parent : ImageSet
    ids : array of int
        Distinct ids into ``parent``; sorted here.

    Attributes
    ----------
    parent : ImageSet
    ids : ndarray of int64
        ``ids[i]`` is the parent's id of this set's image ``i``.

    Examples
    --------
    >>> import numpy as np
    >>> s = ImageSubset(ArrayImages(np.arange(5 * 4).reshape(5, 2, 2).astype(np.uint8)), [3, 1])
    >>> len(s), s.ids.tolist(), float(s[1][0, 0, 0] * 255)
    (2, [1, 3], 12.0)
    """

    def __init__(self, parent: ImageSet, ids: Any) -> None:
        if not isinstance(parent, ImageSet):
            raise InputTypeError(f"parent must be an ImageSet; got {type(parent).__name__}.")
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        if ids.size == 0 or ids[0] < 0 or ids[-1] >= len(parent):
            raise InputError(
                f"ids must be ids of parent's {len(parent)} images (0 .. {len(parent) - 1}); "
                f"got {ids.size} ids from {ids.min() if ids.size else '-'} to "
                f"{ids.max() if ids.size else '-'}."
            )
        self.parent = parent
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"ImageSubset({self.parent!r}, n_images={len(self)})"

    @property
    def names(self) -> list[str]:
        """The parent's names of these images."""
        names = self.parent.names
        return [names[i] for i in self.ids]

    def fingerprint(self) -> str:
        """SHA-1 of the parent's fingerprint and the ids."""
        h = hashlib.sha1(self.parent.fingerprint().encode())
        h.update(self.ids.tobytes())
        return h.hexdigest()

    def _iter_raw(self, positions):
        yield from self.parent._iter_raw(self.ids[positions])


class HDF5Images(ImageSet):
    """Images stored as one dataset (a "brick") in an HDF5 file, such as NSD's.

    The file is opened read-only only while images are read, so the object
    holds no open file handle and can be pickled (e.g. into data-loader
    workers). Reads are done with sorted unique indices, as h5py requires,
    and put back into the requested order.

    Parameters
    ----------
    path : str or path-like
        The HDF5 file (``.h5`` / ``.hdf5``).
    dataset : str, default="imgBrick"
        Name of the dataset inside the file (may be a path such as
        ``"stimuli/images"``). Its shape is one of those accepted by
        :class:`ArrayImages`, e.g. ``(n, 425, 425, 3)`` uint8 for NSD.
    channel_axis : {"auto", "last", "first"}, default="auto"
        See :class:`ArrayImages`.

    Attributes
    ----------
    path : Path
    dataset : str
    shape : tuple of int
        Shape of the dataset.
    dtype : numpy dtype
    channels_last : bool
    image_shape : (H, W)

    Raises
    ------
    MissingFileError
        ``path`` does not exist.
    ImageReadError
        ``path`` is empty or not a readable HDF5 file (e.g. truncated).
    InputError
        The file holds no dataset ``dataset`` (the message lists those it
        holds), or the dataset's shape or dtype is not one of an image stack.
    """

    def __init__(
        self, path: str | os.PathLike, dataset: str = "imgBrick", channel_axis: str = "auto"
    ) -> None:
        self.path = Path(path).expanduser()
        if not isinstance(dataset, str):
            raise InputTypeError(f"dataset must be a name (str); got {type(dataset).__name__}.")
        self.dataset = dataset
        if not self.path.is_file():
            raise MissingFileError(
                f"HDF5Images: path={str(self.path)!r} does not exist or is not a file; check the "
                "path to the HDF5 file of stimulus images."
            )
        if self.path.stat().st_size == 0:
            raise ImageReadError(
                f"HDF5Images: {str(self.path)!r} is empty (0 bytes), not an HDF5 file; the file "
                "may be truncated (an interrupted download): download it again."
            )
        with self._open() as f:
            obj = f.get(dataset)
            import h5py

            if not isinstance(obj, h5py.Dataset):
                found = _list_datasets(f)
                listing = ", ".join(found) if found else "none"
                what = "is a group, not a dataset" if obj is not None else "does not exist"
                raise InputError(
                    f"HDF5Images: dataset={dataset!r} {what} in {str(self.path)!r}. Datasets in "
                    f"the file: {listing}. Pass dataset=<one of these>."
                )
            self.shape = tuple(obj.shape)
            self.dtype = obj.dtype
        self.channels_last, self.image_shape = _image_axes(
            self.shape, self.dtype, channel_axis, f"HDF5Images: dataset {dataset!r}"
        )

    def fingerprint(self) -> str:
        """SHA-1 of the file's path, size and modification time and the dataset's name and shape."""
        return _stat_fingerprint(
            f"HDF5Images {self.dataset} {self.shape} {self.dtype}", [self.path]
        )

    def __len__(self) -> int:
        return int(self.shape[0])

    def __repr__(self) -> str:
        return f"HDF5Images({str(self.path)!r}, dataset={self.dataset!r}, n_images={len(self)})"

    def _open(self):
        import h5py

        try:
            return h5py.File(self.path, "r")
        except OSError as err:
            raise ImageReadError(
                f"HDF5Images: cannot read {str(self.path)!r} as an HDF5 file ({one_line(err)}). The file "
                "may be truncated (an interrupted download) or not HDF5; download it again or "
                "check the path."
            ) from err

    def _iter_raw(self, positions):
        with self._open() as f:
            ds = f[self.dataset]
            label = f"{self.path.name}:{self.dataset} image"
            reader = _h5_reader(ds)

            def read(sel):
                try:
                    return reader(sel)
                except OSError as err:  # a damaged chunk (truncated or corrupt file)
                    raise ImageReadError(
                        f"HDF5Images: cannot read images from {str(self.path)!r} "
                        f"({one_line(err)}); the file may be truncated or corrupt. Download "
                        "it again."
                    ) from None

            yield from _iter_blocks(read, positions, self.channels_last, label)


def open_images(source: Any, **kwargs: Any) -> ImageSet:
    """Wrap ``source`` in the right :class:`ImageSet`.

    Parameters
    ----------
    source : path, array or ImageSet
        - a folder: :class:`ImageFolder`;
        - a ``.h5`` / ``.hdf5`` file: :class:`HDF5Images`;
        - a ``.npy`` file: :class:`ArrayImages` over ``np.load(path, mmap_mode="r",
          allow_pickle=False)`` (memory-mapped, read-only);
        - an array (numpy, or anything ``np.asarray`` accepts): :class:`ArrayImages`;
        - an :class:`ImageSet`: returned as is.
    **kwargs
        Passed to the class chosen (e.g. ``dataset=``, ``recursive=``).

    Returns
    -------
    ImageSet

    Raises
    ------
    MissingFileError
        No such file or folder.
    ImageReadError
        The file is empty, truncated or not of the format its ending says.
    InputError
        A file ending that is none of these.
    """
    if isinstance(source, ImageSet):
        if kwargs:
            raise InputTypeError(
                f"open_images: source is already an ImageSet; keyword arguments "
                f"{sorted(kwargs)} cannot be applied to it."
            )
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if path.is_dir():
            return ImageFolder(path, **kwargs)
        if not path.exists():
            raise MissingFileError(
                f"open_images: source={str(path)!r} does not exist; give a folder of images, an "
                ".h5/.hdf5 file or a .npy file."
            )
        suffix = path.suffix.lower()
        if suffix in (".h5", ".hdf5"):
            return HDF5Images(path, **kwargs)
        if suffix == ".npy":
            try:
                check_file("source", path)
                arr = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as err:
                raise ImageReadError(
                    f"open_images: cannot read {str(path)!r} as a .npy array ({one_line(err)}); the file "
                    "may be truncated or hold Python objects. Save images with np.save(path, "
                    "uint8_array)."
                ) from err
            return ArrayImages(arr, **kwargs)
        raise InputError(
            f"open_images: cannot tell how to read {str(path)!r} (ending {suffix!r}); expected a "
            "folder of images, a .h5/.hdf5 file or a .npy file. For a single image file, put it "
            "in a folder."
        )
    if isinstance(source, bytes):
        raise InputTypeError("open_images: source is bytes; give a path, an array or an ImageSet.")
    return ArrayImages(source, **kwargs)


# ---- helpers ----------------------------------------------------------------------


def _check_size(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    try:
        h, w = size
        ok = all(not isinstance(v, bool) and operator.index(v) > 0 for v in (h, w))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(
            f"size must be None or a (height, width) pair of positive ints in pixels; got "
            f"{size!r}. For example size=(224, 224)."
        )
    return operator.index(h), operator.index(w)


def _check_layout(layout: Any) -> str:
    if layout not in _LAYOUTS:
        raise InputError(
            f"layout must be 'NCHW' (torch: images, channels, height, width) or 'NHWC'; "
            f"got {layout!r}."
        )
    return layout


def _image_axes(
    shape: tuple[int, ...], dtype: np.dtype, channel_axis: str, what: str
) -> tuple[bool, tuple[int, int]]:
    """Return (channels_last, (H, W)) for an image stack of ``shape``, or raise."""
    if channel_axis not in ("auto", "last", "first"):
        raise InputError(f"channel_axis must be 'auto', 'last' or 'first'; got {channel_axis!r}.")
    dtype = np.dtype(dtype)
    if not (dtype in (np.uint8, np.uint16) or np.issubdtype(dtype, np.floating)):
        raise InputError(
            f"{what} has dtype {dtype}; expected uint8 (0..255), uint16 (0..65535) or float in "
            "[0, 1]. Convert it, e.g. (x / x.max()).astype(np.float32) for other ranges."
        )
    expected = (
        "(n, H, W) grayscale, (n, H, W, C) channel-last or (n, C, H, W) channel-first, "
        "with C in (1, 3, 4)"
    )
    if len(shape) == 3:  # grayscale, whatever channel_axis says
        last = True
    elif len(shape) == 4:
        last_ok, first_ok = shape[3] in (1, 3, 4), shape[1] in (1, 3, 4)
        if channel_axis == "auto":
            last = last_ok or not first_ok
            if not (last_ok or first_ok):
                last = None
        else:
            last = channel_axis == "last"
            if not (last_ok if last else first_ok):
                last = None
    else:
        last = None
    if last is None or shape[0] == 0:
        hint = f" (channel_axis={channel_axis!r} was asked for)" if channel_axis != "auto" else ""
        raise InputError(
            f"{what} has shape {tuple(shape)}{hint}; expected {expected}, with n >= 1. "
            "Reshape it, e.g. add the image axis with x[None] for a single image."
        )
    hw = tuple(shape[1:3]) if last else tuple(shape[2:4])
    if min(hw) < 1:
        raise InputError(f"{what} has shape {tuple(shape)}: images with no pixels.")
    return last, (int(hw[0]), int(hw[1]))


def _check_float_range(arr: np.ndarray, where: str) -> None:
    # NaN fails both comparisons, so it is caught too.
    if arr.size and not (np.all(arr >= 0) and np.all(arr <= 1)):
        lo, hi = np.nanmin(arr), np.nanmax(arr)
        nan = " and NaN" if np.isnan(arr).any() else ""
        raise InputError(
            f"{where} holds float values from {lo:g} to {hi:g}{nan}; float images must lie in "
            "[0, 1]. Scale them first, e.g. x / 255 for 0..255 values, or pass uint8."
        )


def _to_float_rgb(pixels: np.ndarray, where: str) -> np.ndarray:
    """(H, W) or (H, W, C) array, C in (1, 3, 4) -> float32 (H, W, 3) in [0, 1]."""
    if pixels.dtype == np.uint8:
        img = pixels.astype(np.float32) / np.float32(255)
    elif pixels.dtype == np.uint16:
        img = pixels.astype(np.float32) / np.float32(65535)
    else:
        img = np.asarray(pixels, dtype=np.float32)
        _check_float_range(img, where)
    if img.ndim == 2:
        img = img[:, :, None]
    c = img.shape[2]
    if c == 1:
        img = np.repeat(img, 3, axis=2)
    elif c == 4:
        img = img[:, :, :3]
    return np.ascontiguousarray(img)


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Anti-aliased bicubic resize of a float32 (H, W, 3) image to (h, w, 3), clipped to [0, 1]."""
    h, w = size
    if img.shape[:2] == (h, w):
        return img
    out = np.empty((h, w, 3), dtype=np.float32)
    for c in range(3):
        channel = Image.fromarray(np.ascontiguousarray(img[:, :, c]))  # mode "F"
        out[:, :, c] = np.asarray(channel.resize((w, h), Image.Resampling.BICUBIC))
    return np.clip(out, 0.0, 1.0, out=out)


def _read_image_file(path: Path) -> np.ndarray:
    """Pixels of one image file as (H, W) or (H, W, 3) uint8/uint16/float32."""
    try:
        empty = path.stat().st_size == 0
    except OSError:  # gone since the folder was listed: Pillow's error below names it
        empty = False
    if empty:
        raise ImageReadError(
            f"Cannot read image file {str(path)!r}: it is empty (0 bytes). Replace it, or remove "
            "it from the folder."
        )
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("L", "RGB", "F") or mode.startswith("I;16"):
                arr = np.array(im)
            elif mode == "I":  # 32-bit integer; in practice 16-bit grayscale
                arr = np.array(im)
                if arr.min() < 0 or arr.max() > 65535:
                    raise InputError(
                        f"32-bit integer pixels from {arr.min()} to {arr.max()} (expected 16-bit)"
                    )
                arr = arr.astype(np.uint16)
            else:  # 1, P, LA, RGBA, CMYK, YCbCr, ...: alpha is dropped, not composited
                arr = np.array(
                    im.convert("RGBA").convert("RGB") if mode == "P" else im.convert("RGB")
                )
    except Exception as err:  # Pillow raises many types for bad files
        raise ImageReadError(
            f"Cannot read image file {str(path)!r}: {type(err).__name__}: {one_line(err)}. The file may be "
            "corrupt or truncated; replace it, or remove it from the folder."
        ) from err
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _iter_blocks(read, positions, channels_last: bool, label: str):
    """Read ``positions`` (sorted, unique) ``_READ_BLOCK`` at a time via ``read(selection)``."""
    for start in range(0, len(positions), _READ_BLOCK):
        block_pos = positions[start : start + _READ_BLOCK]
        lo, hi = int(block_pos[0]), int(block_pos[-1])
        sel = slice(lo, hi + 1) if hi - lo + 1 == len(block_pos) else block_pos
        block = np.asarray(read(sel))
        if not channels_last:
            block = np.moveaxis(block, 1, -1)
        for p, pixels in zip(block_pos, block, strict=True):
            yield pixels, f"{label} {int(p)}"


def _h5_reader(ds):
    # h5py fancy indexing needs increasing unique indices: _iter_blocks passes sorted unique ones.
    return lambda sel: ds[sel] if isinstance(sel, slice) else ds[sel.tolist()]


def _list_datasets(f) -> list[str]:
    import h5py

    found: list[str] = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            found.append(f"{name} {tuple(obj.shape)} {obj.dtype}")

    f.visititems(visit)
    return found


def _stat_fingerprint(what: str, files) -> str:
    """SHA-1 of ``what`` and each file's resolved path, size and modification time."""
    h = hashlib.sha1(what.encode())
    for f in files:
        st = os.stat(f)
        h.update(f"{Path(f).resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
