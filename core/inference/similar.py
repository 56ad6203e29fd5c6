"""Similar training images: the 6 nearest neighbours of a case in the members' pooled-feature space.

A bundle may carry `similar-encoder.onnx` (member 0's graph up to its pooled pre-logit features) and
`similar-index.npz` (PCA of the L2-normalised features of training images, their labels, ids and
small JPEG thumbnails), both signed with it. Both are read through `Bundle.read_file`, so the bytes
that run are the bytes that were verified; the index is checked strictly before use.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from core.common.errors import BundleError
from core.inference.bundle import Bundle

ENCODER = "similar-encoder.onnx"
INDEX = "similar-index.npz"
NEIGHBOURS = 6
MAX_ITEMS = 100_000
MAX_THUMB_BYTES = 64 << 10
LICENCE = "HAM10000 training images, CC BY-NC 4.0"


@dataclass(frozen=True)
class Neighbour:
    thumbnail: bytes  # JPEG
    diagnosis: str  # a class code of the bundle (core.decision.vocabulary.class_name gives the words)
    image_id: str
    similarity: float  # cosine in the index's PCA space, -1..1


@dataclass(frozen=True)
class SimilarIndex:
    mean: np.ndarray  # (D,) float32: PCA mean of the L2-normalised features
    components: np.ndarray  # (P, D) float32
    vectors: np.ndarray  # (N, P) float32, each row L2-normalised
    labels: tuple[str, ...]
    image_ids: tuple[str, ...]
    thumbnails: tuple[bytes, ...]


def has_index(bundle: Bundle) -> bool:
    return bundle.has_file(ENCODER) and bundle.has_file(INDEX)


def _refuse(problem: str, bundle: Bundle) -> BundleError:
    return BundleError(f"similar-cases index: {problem}; refused", str(bundle.root / INDEX))


def parse_index(data: bytes, bundle: Bundle) -> SimilarIndex:
    """The index file's bytes -> a checked SimilarIndex (shapes, dtypes, counts, finite values, labels)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("mean", "components", "vectors", "labels", "image_ids", "thumb_offsets")}
            blob = z["thumb_blob"]
    except (KeyError, ValueError, OSError) as exc:
        raise _refuse(f"unreadable ({exc})", bundle) from None
    mean, comps, vecs = arrays["mean"], arrays["components"], arrays["vectors"]
    labels, ids, offsets = arrays["labels"], arrays["image_ids"], arrays["thumb_offsets"]
    for name, a, ndim in (("mean", mean, 1), ("components", comps, 2), ("vectors", vecs, 2)):
        if a.dtype != np.float32 or a.ndim != ndim or not np.isfinite(a).all():
            raise _refuse(f"{name} must be finite float32 with {ndim} dimension(s)", bundle)
    n, p = vecs.shape
    if not 1 <= n <= MAX_ITEMS or comps.shape != (p, mean.shape[0]):
        raise _refuse(f"shapes do not fit (vectors {vecs.shape}, components {comps.shape}, mean {mean.shape})", bundle)
    if labels.shape != (n,) or ids.shape != (n,) or labels.dtype.kind != "U" or ids.dtype.kind != "U":
        raise _refuse("labels and image_ids must be one string per vector", bundle)
    if offsets.dtype != np.int64 or offsets.shape != (n + 1,) or blob.dtype != np.uint8 or blob.ndim != 1:
        raise _refuse("thumbnail offsets or blob malformed", bundle)
    sizes = np.diff(offsets)
    if offsets[0] != 0 or offsets[-1] != blob.shape[0] or (sizes <= 0).any() or (sizes > MAX_THUMB_BYTES).any():
        raise _refuse("thumbnail offsets do not cover the blob", bundle)
    unknown = sorted(set(labels.tolist()) - set(bundle.manifest.class_names))
    if unknown:
        raise _refuse(f"labels {unknown} are not among the bundle's classes", bundle)
    norms = np.linalg.norm(vecs, axis=1)
    if (np.abs(norms - 1.0) > 1e-3).any():
        raise _refuse("vectors are not unit length", bundle)
    raw = blob.tobytes()
    thumbs = tuple(raw[int(a) : int(b)] for a, b in zip(offsets[:-1], offsets[1:], strict=True))
    return SimilarIndex(mean, comps, vecs, tuple(labels.tolist()), tuple(ids.tolist()), thumbs)


def project(index: SimilarIndex, features: np.ndarray) -> np.ndarray:
    """Pooled features (D,) -> unit vector in the index's PCA space (as the index was built)."""
    f = np.asarray(features, dtype=np.float32).reshape(-1)
    if f.shape[0] != index.mean.shape[0] or not np.isfinite(f).all():
        raise ValueError(f"features of size {f.shape[0]} do not fit the index's {index.mean.shape[0]}")
    f = f / max(float(np.linalg.norm(f)), 1e-12)
    z = index.components @ (f - index.mean)
    return z / max(float(np.linalg.norm(z)), 1e-12)


def nearest(index: SimilarIndex, features: np.ndarray, k: int = NEIGHBOURS) -> tuple[Neighbour, ...]:
    sims = index.vectors @ project(index, features)
    order = np.argsort(-sims, kind="stable")[:k]
    return tuple(
        Neighbour(index.thumbnails[i], index.labels[i], index.image_ids[i], float(sims[i])) for i in order.tolist()
    )


class SimilarCases:
    """The encoder and index of one bundle; `query(model_input)` -> the nearest training images."""

    def __init__(self, bundle: Bundle, threads: int = 1):
        if not has_index(bundle):
            raise BundleError("this bundle carries no similar-cases index", str(bundle.root))
        self.manifest = bundle.manifest
        self.index = parse_index(bundle.read_file(INDEX), bundle)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(
                bundle.read_file(ENCODER), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for a bad graph
            raise BundleError(f"similar-cases encoder cannot be loaded ({exc})", str(bundle.root / ENCODER)) from None
        self._input = self._session.get_inputs()[0].name

    def features(self, x: np.ndarray) -> np.ndarray:
        """float32 (3, S, S) or (B, 3, S, S) model input -> pooled features (B, D)."""
        batch = x[None] if x.ndim == 3 else x
        (out,) = self._session.run(["features"], {self._input: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.asarray(out, dtype=np.float32).reshape(batch.shape[0], -1)

    def query(self, x: np.ndarray, k: int = NEIGHBOURS) -> tuple[Neighbour, ...]:
        return nearest(self.index, self.features(x)[0], k)
