"""The data layer: CIFAR-10 and IMDB prepared from the offline copies into a cache that a
second run only reads, and a sandbox that sees the train splits but never the test splits.

Needs the offline copies ($AML_DATASETS, else ../shared/datasets beside the repository).
"""

from __future__ import annotations

import subprocess
import sys
import time

import nbformat
import numpy as np
import pytest
from conftest import ROOT
from nbformat.v4 import new_code_cell, new_notebook

from autograder import data
from autograder.grading.oracle import Oracle, ProbeClient
from autograder.sandbox.isolation import detect
from autograder.sandbox.limits import Limits
from autograder.sandbox.session import KernelSession

pytestmark = pytest.mark.skipif(
    data.offline_dir() is None or not all(
        (data.offline_dir() / d.offline_copy).is_file() for d in data.DATA_SETS.values()),
    reason="the offline copies of the data sets are not here (set AML_DATASETS)")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """Both data sets prepared into an empty cache (about 30 s: the JPEGs are decoded)."""
    folder = tmp_path_factory.mktemp("aml-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AML_DATA_DIR", str(folder))
        started = time.monotonic()
        data.prepare_for(("cifar10", "imdb"))
        yield folder, time.monotonic() - started


@pytest.fixture
def use_cache(cache, monkeypatch):
    monkeypatch.setenv("AML_DATA_DIR", str(cache[0]))
    return cache[0]


def test_cifar10_has_every_image_once_balanced(use_cache):
    x_train, y_train = data.load("cifar10", "train")
    x_test, y_test = data.load("cifar10", "test")
    assert x_train.shape == (50_000, 32, 32, 3) and x_test.shape == (10_000, 32, 32, 3)
    assert x_train.dtype == x_test.dtype == np.uint8
    assert np.bincount(y_train).tolist() == [5000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    # Real photos, not blank decodes: pixels use the whole range and differ between classes.
    assert x_train.min() == 0 and x_train.max() == 255
    means = [x_train[y_train == label].mean() for label in range(10)]
    assert max(means) - min(means) > 5


def test_imdb_has_every_review_once_balanced_without_html_breaks(use_cache):
    train_texts, train_labels = data.load("imdb", "train")
    test_texts, test_labels = data.load("imdb", "test")
    assert len(train_texts) == len(test_texts) == 25_000
    assert np.bincount(train_labels).tolist() == np.bincount(test_labels).tolist() == [12500] * 2
    assert all(isinstance(text, str) and text for text in train_texts)
    assert not any("<br" in text for text in train_texts + test_texts)
    # The splits are apart; upstream repeats about 120 reviews in both (0.5 %).
    assert len(set(train_texts) & set(test_texts)) < 250


def test_cache_files_are_split_and_plain(use_cache):
    names = sorted(p.relative_to(use_cache).as_posix() for p in use_cache.rglob("*")
                   if p.is_file() and not p.name.startswith("."))
    assert names == ["cifar10/test.npz", "cifar10/train.npz", "imdb/test.json", "imdb/train.json"]
    with np.load(use_cache / "cifar10" / "train.npz", allow_pickle=False) as files:
        assert sorted(files.files) == ["x", "y"]
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in use_cache.rglob("*.*")
               if not p.name.startswith("."))  # the sandbox uid reads them


def test_a_second_prepare_reads_nothing_again(use_cache, monkeypatch):
    def decode_again(*_):
        raise AssertionError("prepare decoded the data set a second time")

    monkeypatch.setitem(data._READ_OFFLINE, "cifar10", decode_again)
    monkeypatch.setitem(data._DOWNLOAD, "cifar10", decode_again)
    started = time.monotonic()
    data.prepare("cifar10")
    assert time.monotonic() - started < 1


def test_a_damaged_offline_copy_is_refused(tmp_path, monkeypatch):
    copies = tmp_path / "datasets"
    copies.mkdir()
    (copies / "aclImdb.tar.gz").write_bytes(b"not the archive")
    monkeypatch.setenv("AML_DATASETS", str(copies))
    monkeypatch.setenv("AML_DATA_DIR", str(tmp_path / "cache"))
    with pytest.raises(data.DataError, match="sha256"):
        data.prepare("imdb")
    assert not data.is_prepared("imdb")
    assert not list((tmp_path / "cache" / "imdb").iterdir())


def test_offline_copies_default_to_shared_datasets_beside_the_repository(monkeypatch):
    monkeypatch.delenv("AML_DATASETS", raising=False)
    beside = ROOT.parent / "shared" / "datasets"
    assert data.offline_dir() == (beside if beside.is_dir() else None)


def test_unknown_data_set_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("AML_DATA_DIR", str(tmp_path))
    with pytest.raises(data.DataError, match="unknown data set 'mnist'; known: cifar10, imdb"):
        data.prepare("mnist")


def test_cli_prepares_and_reports(use_cache):
    run = subprocess.run([sys.executable, "-m", "autograder.cli", "data", "prepare"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert f"cifar10: ready in {use_cache / 'cifar10'}" in run.stdout
    assert f"imdb: ready in {use_cache / 'imdb'}" in run.stdout
    run = subprocess.run([sys.executable, "-m", "autograder.cli", "data", "prepare", "mnist"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1 and "unknown data set 'mnist'" in run.stderr


SANDBOX_CELLS = [
    """
import os
import numpy as np
root = os.environ["AML_DATA_DIR"]
with np.load(os.path.join(root, "cifar10", "train.npz")) as files:
    train_shape = list(files["x"].shape)
with open(os.path.join(root, "imdb", "train.json"), encoding="utf-8") as handle:
    imdb_train_bytes = len(handle.read())
visible = sorted(os.path.join(folder, name) for folder, _, names in os.walk(root)
                 for name in names)
def can_read(path):
    try:
        with open(path, "rb") as handle:
            handle.read(1)
        return True
    except OSError:
        return False
test_readable = [can_read(os.path.join(root, name)) for name in
                 ("cifar10/test.npz", "imdb/test.json")]
""",
    """
import keras, tensorflow as tf
class TextLength(keras.Model):
    def call(self, texts):
        return tf.cast(tf.strings.length(texts, unit="UTF8_CHAR"), "float32")[:, None]
length_model = TextLength()
""",
]


@pytest.mark.grading
@pytest.mark.skipif(not detect().private_filesystem,
                    reason="needs the sandbox's private file system (bubblewrap, root)")
def test_the_sandbox_reads_train_splits_only_and_predicts_on_texts(use_cache):
    names = ("cifar10", "imdb")
    nb = new_notebook(cells=[new_code_cell(source.strip()) for source in SANDBOX_CELLS])
    nbformat.validate(nb)
    session = KernelSession(nb, detect(), Limits(cell_timeout=120, total_time=300),
                            question_of_cell={}, readable=data.readable_paths(names),
                            env=data.kernel_env(names))
    try:
        report = session.execute()
        assert not report.problems(None), report.to_json()
        oracle = ProbeClient(session)
        assert oracle.value("train_shape") == [50_000, 32, 32, 3]
        assert oracle.value("imdb_train_bytes") > 30_000_000
        assert oracle.value("visible") == [str(use_cache / "cifar10" / "train.npz"),
                                           str(use_cache / "imdb" / "train.json")]
        assert oracle.value("test_readable") == [False, False]
        texts = ["short", "ünïcödé ✓", "", "a review\nwith lines " * 50]
        lengths = oracle.predict_texts("length_model", texts, outputs=1)
        assert lengths[:, 0].tolist() == [len(text) for text in texts]
    finally:
        session.close()


def test_predict_texts_refuses_what_is_not_a_list_of_strings():
    oracle = Oracle(export=None, rooms=None)
    with pytest.raises(TypeError, match="list of strings"):
        oracle.predict_texts("imdb_model", ["fine", 3])
