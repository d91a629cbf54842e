"""Data sets a week's kernel may read, prepared once into a local cache.

A week lists the data sets its notebook needs in ``week.toml`` (``data = ["cifar10"]``).
``prepare(name)`` fills the cache (``$AML_DATA_DIR``, default ``~/.cache/aml-autograder``):

* from the offline copies in ``$AML_DATASETS`` (default ``../shared/datasets`` beside the
  repository, when it exists), checked against their published sha256, or else
* through Keras' own download path (``keras.datasets.cifar10.load_data()``, and
  ``keras.utils.get_file`` for the Stanford IMDB archive).

The cache holds decoded data in pickle-free files, train and test apart::

    cifar10/train.npz  x: uint8 (50000, 32, 32, 3), y: uint8 (50000,)  (labels 0..9)
    cifar10/test.npz   the same for the 10,000 test images
    imdb/train.json    {"texts": [...25,000 reviews...], "labels": [0 = negative, 1 = positive]}
    imdb/test.json     the same for the 25,000 test reviews

so a second run only reads them. Only the *train* files are made readable (read-only)
inside the sandbox (``readable_paths``); the test split stays on the grader's side, where
hidden tests read it with ``load(name, "test")``. The kernel finds the cache through the
same ``AML_DATA_DIR`` variable (``kernel_env``).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autograder.errors import AutograderError
from autograder.grading.results import write_atomically, write_atomically_with

SPLITS = ("train", "test")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")  # alphabetical = label ids 0..9
IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


@dataclass(frozen=True)
class DataSet:
    name: str
    suffix: str  # of each split's cache file
    offline_copy: str  # file name in $AML_DATASETS
    sha256: str  # of that file (from ../shared/datasets/README.md)
    sizes: tuple[int, int]  # train, test


DATA_SETS = {
    "cifar10": DataSet("cifar10", ".npz", "cifar10-jpeg.tar.gz",
                       "fef92d4c8fb39b9cf464f7367362a3516b1ac6a2dae7e0251d0600a82d7bcbe0",
                       (50_000, 10_000)),
    "imdb": DataSet("imdb", ".json", "aclImdb.tar.gz",
                    "514b1d8977d11ee5c853b593c1d0d3bd4e81ba52b00a135ddcd93a414015c3d8",
                    (25_000, 25_000)),
}


class DataError(AutograderError):
    """A data set cannot be prepared (bad copy, no network...); the message says why."""


# -- settings ------------------------------------------------------------------------
def cache_dir() -> Path:
    return Path(os.environ.get("AML_DATA_DIR", Path.home() / ".cache" / "aml-autograder"))


def offline_dir() -> Path | None:
    """Where offline copies are: $AML_DATASETS, else ../shared/datasets beside the repository."""
    if os.environ.get("AML_DATASETS"):
        return Path(os.environ["AML_DATASETS"])
    beside = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
    return beside if beside.is_dir() else None


def split_path(name: str, split: str) -> Path:
    data_set = _data_set(name)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {SPLITS}")
    return cache_dir() / name / f"{split}{data_set.suffix}"


# -- what the sandbox and the grader use ---------------------------------------------
def readable_paths(names: tuple[str, ...]) -> tuple[Path, ...]:
    """The files a week's kernel may read: each data set's train split (prepared first)."""
    prepare_for(names)
    return tuple(split_path(name, "train") for name in names)


def kernel_env(names: tuple[str, ...]) -> dict[str, str]:
    return {"AML_DATA_DIR": str(cache_dir())} if names else {}


def prepare_for(names) -> None:
    for name in names:
        prepare(name)


def is_prepared(name: str) -> bool:
    return all(split_path(name, split).is_file() for split in SPLITS)


def prepare(name: str, *, log=None) -> Path:
    """Fill the cache for ``name`` unless it is complete; returns its folder.

    Safe to call from several gradings at once (a lock file per data set).
    """
    data_set = _data_set(name)
    folder = cache_dir() / name
    if is_prepared(name):
        return folder
    say = log or (lambda text: print(text, file=sys.stderr))
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder.with_name(f".{name}.lock")):
        if is_prepared(name):  # another process finished it while we waited
            return folder
        started = time.monotonic()
        copy = offline_dir() / data_set.offline_copy if offline_dir() else None
        if copy is not None and copy.is_file():
            say(f"preparing {name} from the offline copy {copy} ...")
            _verify(copy, data_set.sha256)
            splits = _READ_OFFLINE[name](copy)
        else:
            say(f"preparing {name}: downloading through Keras (no offline copy"
                f"{' in ' + str(offline_dir()) if offline_dir() else ''}) ...")
            splits = _DOWNLOAD[name]()
        for split, size in zip(SPLITS, data_set.sizes):
            found = _count(splits[split])
            if found != size:
                raise DataError(f"{name} {split} has {found} examples; expected {size}")
        # Test first: "train present" must imply the whole set is (see is_prepared).
        for split in reversed(SPLITS):
            _WRITE[data_set.suffix](split_path(name, split), splits[split])
        say(f"prepared {name} in {time.monotonic() - started:.0f} s -> {folder}")
    return folder


def load(name: str, split: str):
    """A prepared split: (x uint8 array, y int array) for cifar10, (texts, labels) for imdb."""
    prepare(name)
    path = split_path(name, split)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as files:
            return files["x"], files["y"].astype(np.int64)
    content = json.loads(path.read_text(encoding="utf-8"))
    return list(content["texts"]), np.asarray(content["labels"], dtype=np.int64)


# -- reading the offline copies --------------------------------------------------------
def _cifar10_from_jpeg_archive(archive: Path) -> dict:
    """cifar10/{train,test}/<class>/NNNN.jpg -> uint8 arrays, read straight from the tar."""
    from PIL import Image

    found = {split: [] for split in SPLITS}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4 or not parts[3].endswith(".jpg"):
                continue
            _, split, label, filename = parts
            if split not in found or label not in CIFAR10_CLASSES:
                continue
            with Image.open(io.BytesIO(tar.extractfile(member).read())) as image:
                pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
            found[split].append((CIFAR10_CLASSES.index(label), filename, pixels))
    splits = {}
    for split, items in found.items():
        items.sort(key=lambda item: item[:2])  # by class, then file: the same order everywhere
        splits[split] = (np.stack([pixels for _, _, pixels in items]),
                         np.asarray([label for label, _, _ in items], dtype=np.uint8))
    return splits


def _imdb_from_archive(archive: Path) -> dict:
    """aclImdb/{train,test}/{neg,pos}/<id>_<rating>.txt -> texts and labels (unsup skipped)."""
    found = {split: [] for split in SPLITS}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4 or not parts[3].endswith(".txt"):
                continue
            _, split, polarity, filename = parts
            if split not in found or polarity not in ("neg", "pos"):
                continue
            text = tar.extractfile(member).read().decode("utf-8", errors="replace")
            found[split].append((polarity == "pos", filename, clean_review(text)))
    splits = {}
    for split, items in found.items():
        items.sort()
        splits[split] = ([text for _, _, text in items], [int(label) for label, _, _ in items])
    return splits


def clean_review(text: str) -> str:
    """The reviews' HTML line breaks (``<br />``) become spaces."""
    return _LINE_BREAK.sub(" ", text)


# -- Keras' download path (online) -------------------------------------------------------
def _cifar10_from_keras() -> dict:
    import keras

    (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    return {"train": (x_train, y_train.reshape(-1).astype(np.uint8)),
            "test": (x_test, y_test.reshape(-1).astype(np.uint8))}


def _imdb_from_keras() -> dict:
    import keras

    try:
        archive = keras.utils.get_file("aclImdb_v1.tar.gz", IMDB_URL)
    except Exception as error:
        raise DataError(f"could not download {IMDB_URL} ({error}); put aclImdb.tar.gz in "
                        "a folder and point AML_DATASETS at it") from None
    return _imdb_from_archive(Path(archive))


_READ_OFFLINE = {"cifar10": _cifar10_from_jpeg_archive, "imdb": _imdb_from_archive}
_DOWNLOAD = {"cifar10": _cifar10_from_keras, "imdb": _imdb_from_keras}


# -- writing the cache ----------------------------------------------------------------------
def _write_npz(path: Path, split) -> None:
    x, y = split
    write_atomically_with(path, lambda handle: np.savez(handle, x=x, y=y))


def _write_json(path: Path, split) -> None:
    texts, labels = split
    text = json.dumps({"texts": list(texts), "labels": [int(v) for v in labels]},
                      ensure_ascii=False)
    write_atomically(path, text)


_WRITE = {".npz": _write_npz, ".json": _write_json}


# -- helpers --------------------------------------------------------------------------------
def _data_set(name: str) -> DataSet:
    if name not in DATA_SETS:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(DATA_SETS)}")
    return DATA_SETS[name]


def _verify(path: Path, expected: str) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise DataError(f"{path} has sha256 {digest.hexdigest()}, not the published "
                        f"{expected}: the copy is damaged or a different file")


def _count(split) -> int:
    first, labels = split
    if len(first) != len(labels):
        raise DataError(f"{len(first)} examples but {len(labels)} labels")
    return len(labels)


@contextmanager
def _locked(path: Path):
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
