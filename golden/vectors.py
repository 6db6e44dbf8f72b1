"""Reference-vector files: ``vectors.npz`` plus ``manifest.json`` in one directory.

The manifest records the format version, the block name, its spec (as a dict),
the seed, and for every array its shape, dtype and the sha256 of its raw
C-order bytes. ``load_vectors`` recomputes every hash and checks the version,
the shapes and the dtypes, and raises ``VectorFileError`` with a message that
names the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_NAME = "spikeforge-vectors"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = "vectors.npz"


class VectorFileError(ValueError):
    """A reference-vector directory is missing, corrupt, or of another version."""


@dataclass
class VectorSet:
    block: str
    spec: dict[str, Any]
    seed: int
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.arrays[name]
        except KeyError:
            raise VectorFileError(f"vector set for {self.block!r} has no array {name!r}; "
                                  f"it has {', '.join(sorted(self.arrays))}") from None


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def save_vectors(directory, block: str, spec: dict[str, Any], seed: int,
                 arrays: dict[str, Any], meta: dict[str, Any] | None = None, *, compressed: bool = False) -> Path:
    """Write ``arrays`` (name -> array-like) and their manifest into ``directory``.

    ``compressed=True`` deflates the .npz (for vector files committed to the repository);
    ``load_vectors`` reads both forms, and the hashes are of the arrays, not the file.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    np_arrays = {}
    for name, value in arrays.items():
        a = np.ascontiguousarray(value.numpy() if hasattr(value, "numpy") else np.asarray(value))
        if a.dtype.kind not in "iub":
            raise VectorFileError(f"array {name!r} has dtype {a.dtype}; reference vectors are integers")
        np_arrays[name] = a
    (np.savez_compressed if compressed else np.savez)(directory / ARRAYS, **np_arrays)
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "block": block,
        "spec": spec,
        "seed": int(seed),
        "meta": meta or {},
        "arrays": {name: {"shape": list(a.shape), "dtype": a.dtype.str, "sha256": _sha256(a)}
                   for name, a in np_arrays.items()},
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return directory


def load_vectors(directory, block: str | None = None) -> VectorSet:
    """Read and verify a vector directory written by ``save_vectors``.

    Parameters
    ----------
    block : if given, the manifest's block must equal it.
    """
    directory = Path(directory)
    manifest_path, arrays_path = directory / MANIFEST, directory / ARRAYS
    if directory.is_file():
        raise VectorFileError(f"{directory} is a file; give the vector directory (it holds {MANIFEST} and {ARRAYS})")
    if not directory.is_dir():
        raise VectorFileError(f"{directory}: no such vector directory")
    if not manifest_path.is_file():
        raise VectorFileError(f"{manifest_path}: missing; a vector directory holds {MANIFEST} and {ARRAYS}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VectorFileError(f"{manifest_path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise VectorFileError(f"{manifest_path}: not a {FORMAT_NAME} manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise VectorFileError(f"{manifest_path}: format version {manifest.get('version')!r} is not "
                              f"supported; this Spikeforge reads version {FORMAT_VERSION}")
    for key in ("block", "spec", "seed", "arrays"):
        if key not in manifest:
            raise VectorFileError(f"{manifest_path}: missing field {key!r}")
    if block is not None and manifest["block"] != block:
        raise VectorFileError(f"{directory}: holds vectors for block {manifest['block']!r}, "
                              f"expected {block!r}")
    if not arrays_path.is_file():
        raise VectorFileError(f"{arrays_path}: missing")
    try:
        with np.load(arrays_path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise VectorFileError(f"{arrays_path}: corrupt or truncated ({exc})") from None
    expected = manifest["arrays"]
    if set(arrays) != set(expected):
        raise VectorFileError(f"{arrays_path}: holds arrays {sorted(arrays)}, the manifest lists "
                              f"{sorted(expected)}")
    for name, info in expected.items():
        a = arrays[name]
        if list(a.shape) != info["shape"] or a.dtype.str != info["dtype"]:
            raise VectorFileError(f"{arrays_path}: array {name!r} is {a.dtype.str}{list(a.shape)}, "
                                  f"the manifest says {info['dtype']}{info['shape']}")
        if _sha256(a) != info["sha256"]:
            raise VectorFileError(f"{arrays_path}: array {name!r} fails its sha256 check (file corrupt "
                                  f"or edited)")
    return VectorSet(manifest["block"], manifest["spec"], manifest["seed"], arrays, manifest["meta"])
