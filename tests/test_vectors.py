"""Reference-vector files: round trip, and every kind of damage reported clearly."""

import json
import zipfile

import numpy as np
import pytest

from golden.vectors import FORMAT_VERSION, VectorFileError, load_vectors, save_vectors


@pytest.fixture
def vec_dir(tmp_path):
    arrays = {"a": np.arange(12, dtype=np.int64).reshape(3, 4), "b": np.array([1, 0, 1], dtype=np.uint8)}
    return save_vectors(tmp_path / "v", "lif", {"n_neurons": 4}, 7, arrays)


def test_round_trip(vec_dir):
    v = load_vectors(vec_dir, block="lif")
    assert v.seed == 7 and v.spec == {"n_neurons": 4}
    assert v["a"].tolist() == np.arange(12).reshape(3, 4).tolist() and v["b"].dtype == np.uint8


def test_wrong_block(vec_dir):
    with pytest.raises(VectorFileError, match="expected 'topk'"):
        load_vectors(vec_dir, block="topk")


def test_edited_array_fails_hash(vec_dir):
    with np.load(vec_dir / "vectors.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["a"][0, 0] = 99
    np.savez(vec_dir / "vectors.npz", **arrays)
    with pytest.raises(VectorFileError, match="sha256"):
        load_vectors(vec_dir)


def test_truncated_file(vec_dir):
    data = (vec_dir / "vectors.npz").read_bytes()
    (vec_dir / "vectors.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(VectorFileError, match="corrupt or truncated"):
        load_vectors(vec_dir)


def test_wrong_version(vec_dir):
    manifest = json.loads((vec_dir / "manifest.json").read_text())
    manifest["version"] = FORMAT_VERSION + 1
    (vec_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(VectorFileError, match="version"):
        load_vectors(vec_dir)


def test_garbage_manifest_and_missing_dir(vec_dir, tmp_path):
    (vec_dir / "manifest.json").write_text("{not json")
    with pytest.raises(VectorFileError, match="not valid JSON"):
        load_vectors(vec_dir)
    with pytest.raises(VectorFileError, match="no such vector directory"):
        load_vectors(tmp_path / "nowhere")


def test_shape_disagreeing_with_manifest(vec_dir):
    manifest = json.loads((vec_dir / "manifest.json").read_text())
    manifest["arrays"]["a"]["shape"] = [4, 3]
    (vec_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(VectorFileError, match="manifest says"):
        load_vectors(vec_dir)


def test_float_arrays_are_refused(tmp_path):
    with pytest.raises(VectorFileError, match="integers"):
        save_vectors(tmp_path, "lif", {}, 0, {"x": np.zeros(3)})


def test_not_a_zip(vec_dir):
    (vec_dir / "vectors.npz").write_bytes(b"garbage" * 10)
    with pytest.raises(VectorFileError):
        load_vectors(vec_dir)
    assert not zipfile.is_zipfile(vec_dir / "vectors.npz")
