"""The intake check's statistics: how far an image's pooled features are from the training images.

Class-conditional Mahalanobis distance with a shared (pooled within-class) covariance, as in
Lee et al., "A simple unified framework for detecting out-of-distribution samples" (NeurIPS 2018),
computed on each member's globally pooled features (the input of its final Linear layer):

    score(x) = min_c (f - mu_c)^T S^-1 (f - mu_c)

The covariance is estimated in a whitened principal subspace of `n_components` directions, and
the distance in the remaining directions is added as a scaled residual (the squared distance to
that subspace divided by its mean on training images), so nothing the subspace leaves out is
ignored and the statistics stay small enough to ship inside each member file.

`add_ood_output` appends this computation to a member's ONNX graph as a third output `ood`
(N), divided by the member's median training score so members are on one scale. The statistics
thereby travel inside the member files, covered by their checksums and the bundle signature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OOD_OUTPUT = "ood"
DEFAULT_COMPONENTS = 128


@dataclass(frozen=True)
class MahalanobisStats:
    mean: np.ndarray  # D: mean of the training features
    proj: np.ndarray  # D x k: principal directions scaled by 1 / sqrt(eigenvalue) (whitening)
    basis: np.ndarray  # D x k: the same directions, unscaled (for the residual)
    class_means: np.ndarray  # C x k: class means in the whitened subspace
    residual_weight: float  # 1 / mean squared residual on the training features (0: no residual left)
    score_scale: float  # median training score: scores are divided by it

    @property
    def n_components(self) -> int:
        return int(self.proj.shape[1])


def _raw_scores(stats_parts: tuple, features: np.ndarray) -> np.ndarray:
    mean, proj, basis, class_means, residual_weight = stats_parts
    centred = features.astype(np.float64) - mean
    z = centred @ proj
    d = ((z[:, None, :] - class_means[None, :, :]) ** 2).sum(axis=2).min(axis=1)
    residual = centred - (centred @ basis) @ basis.T
    return d + (residual**2).sum(axis=1) * residual_weight


def fit_mahalanobis(
    features: np.ndarray, labels: np.ndarray, n_components: int = DEFAULT_COMPONENTS, ridge: float = 1e-6
) -> MahalanobisStats:
    """features: N x D pooled features of training images; labels: N class labels (any hashable)."""
    x = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    classes = [c for c in np.unique(labels) if (labels == c).sum() >= 2]
    if not classes:
        raise ValueError("the intake statistics need at least two training images of one class")
    mean = x.mean(axis=0)
    centred_by_class = np.concatenate([x[labels == c] - x[labels == c].mean(axis=0) for c in classes])
    cov = centred_by_class.T @ centred_by_class / max(len(centred_by_class) - len(classes), 1)
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1][: min(n_components, x.shape[1])]
    eigval = np.maximum(eigval[order], ridge * max(float(eigval.max()), 1e-12))
    basis = eigvec[:, order]
    proj = basis / np.sqrt(eigval)[None, :]
    class_means = np.stack([(x[labels == c].mean(axis=0) - mean) @ proj for c in classes])
    # With every direction kept there is no residual; its float32 round-off must not be amplified.
    residual_weight = 0.0
    if basis.shape[1] < x.shape[1]:
        residual = (x - mean) - ((x - mean) @ basis) @ basis.T
        residual_weight = 1.0 / float(max((residual**2).sum(axis=1).mean(), 1e-12))
    parts = (mean, proj, basis, class_means, residual_weight)
    score_scale = float(max(np.median(_raw_scores(parts, x)), 1e-12))
    return MahalanobisStats(mean, proj, basis, class_means, residual_weight, score_scale)


def ood_scores(stats: MahalanobisStats, features: np.ndarray) -> np.ndarray:
    """The same score as the graph output, in numpy (fitting thresholds, tests)."""
    parts = (stats.mean, stats.proj, stats.basis, stats.class_means, stats.residual_weight)
    return _raw_scores(parts, np.asarray(features)) / stats.score_scale


def feature_tensor(model: onnx.ModelProto, logits: str = "logits") -> str:
    """The pooled features: the data input of the Gemm / MatMul that produces the logits."""
    for node in model.graph.node:
        if logits in node.output and node.op_type in ("Gemm", "MatMul"):
            return node.input[0]
    raise ValueError(f"no Gemm/MatMul produces {logits!r}: cannot find the pooled features of this member")


def add_ood_output(model: onnx.ModelProto, stats: MahalanobisStats, output: str = OOD_OUTPUT) -> onnx.ModelProto:
    """A copy of `model` with an extra output `ood` (N): the member's normalised Mahalanobis score."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    if any(o.name == output for o in g.output):
        raise ValueError(f"the model already has an output named {output!r}")
    feats = feature_tensor(out)
    p = "ood_"
    opset = next((o.version for o in out.opset_import if o.domain in ("", "ai.onnx")), 18)

    def const(name: str, value) -> str:
        g.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), p + name))
        return p + name

    mean = const("mean", stats.mean)
    proj = const("proj", stats.proj)
    basis = const("basis", stats.basis)
    basis_t = const("basis_t", stats.basis.T)
    means_t = const("class_means_t", stats.class_means.T)
    means_sq = const("class_means_sq", (stats.class_means**2).sum(axis=1))
    g.initializer.append(numpy_helper.from_array(np.array([1], dtype=np.int64), p + "axis1"))
    axis1 = p + "axis1"

    def reduce(op: str, x: str, y: str, keepdims: int):
        # Reduce* take their axes as an input from opset 18, as an attribute before (members of opset 17).
        if opset >= 18:
            return helper.make_node(op, [x, axis1], [y], keepdims=keepdims)
        return helper.make_node(op, [x], [y], axes=[1], keepdims=keepdims)

    two = const("two", 2.0)
    res_weight = const("residual_weight", stats.residual_weight)
    inv_score = const("inv_score_scale", 1.0 / stats.score_scale)
    n = [
        helper.make_node("Sub", [feats, mean], [p + "centred"]),
        helper.make_node("MatMul", [p + "centred", proj], [p + "z"]),
        reduce("ReduceSumSquare", p + "z", p + "zz", 1),
        helper.make_node("MatMul", [p + "z", means_t], [p + "zm"]),
        helper.make_node("Mul", [p + "zm", two], [p + "zm2"]),
        helper.make_node("Sub", [p + "zz", p + "zm2"], [p + "d0"]),
        helper.make_node("Add", [p + "d0", means_sq], [p + "d"]),
        reduce("ReduceMin", p + "d", p + "dmin", 0),
        helper.make_node("MatMul", [p + "centred", basis], [p + "coef"]),
        helper.make_node("MatMul", [p + "coef", basis_t], [p + "recon"]),
        helper.make_node("Sub", [p + "centred", p + "recon"], [p + "resid"]),
        reduce("ReduceSumSquare", p + "resid", p + "rr", 0),
        helper.make_node("Mul", [p + "rr", res_weight], [p + "rrs"]),
        helper.make_node("Add", [p + "dmin", p + "rrs"], [p + "raw"]),
        helper.make_node("Mul", [p + "raw", inv_score], [output]),
    ]
    g.node.extend(n)
    g.output.append(helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N"]))
    onnx.checker.check_model(out)
    return out


def strip_ood_output(model: onnx.ModelProto, output: str = OOD_OUTPUT) -> onnx.ModelProto:
    """A copy of `model` without its `ood` output and the nodes and weights only it used, so the
    intake check can be fitted afresh (other training images, another ensemble). The other outputs
    are computed by the very same nodes: logits and heat maps stay bit-identical."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    keep_outputs = [o for o in g.output if o.name != output]
    if len(keep_outputs) == len(g.output):
        return out
    needed = {o.name for o in keep_outputs}
    kept = []
    for node in reversed(list(g.node)):  # graph nodes are in topological order
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    used_inits = [t for t in g.initializer if t.name in needed]
    del g.output[:]
    g.output.extend(keep_outputs)
    del g.node[:]
    g.node.extend(reversed(kept))
    del g.initializer[:]
    g.initializer.extend(used_inits)
    onnx.checker.check_model(out)
    return out
