"""The intake statistics: the in-graph score equals the numpy reference, and it separates data
that is far from the training features."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.ood import OOD_OUTPUT, add_ood_output, feature_tensor, fit_mahalanobis, ood_scores


def _toy_member(d: int = 16, k: int = 3) -> onnx.ModelProto:
    """image (N x d) -> Relu -> Gemm -> logits: the pooled features are the Relu output."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(k, d)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(k, np.float32), "b")
    nodes = [
        helper.make_node("Relu", ["image"], ["pooled"]),
        helper.make_node("Gemm", ["pooled", "w", "b"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "toy",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", d])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", k])],
        [w, b],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _training_features(n: int = 400, d: int = 16):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, n)
    centres = rng.normal(3.0, 1.0, (3, d))
    feats = np.abs(centres[labels] + rng.normal(0, 0.5, (n, d)))
    return feats.astype(np.float32), labels


@pytest.mark.parametrize("components", [4, 16])
def test_graph_score_equals_numpy_reference(components):
    feats, labels = _training_features()
    stats = fit_mahalanobis(feats, labels, n_components=components)
    model = add_ood_output(_toy_member(), stats)
    assert feature_tensor(model) == "pooled"
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    probe = np.abs(np.random.default_rng(2).normal(2.0, 2.0, (10, 16))).astype(np.float32)
    logits, ood = sess.run(["logits", OOD_OUTPUT], {"image": probe})
    assert logits.shape == (10, 3) and ood.shape == (10,)
    np.testing.assert_allclose(ood, ood_scores(stats, probe), rtol=1e-3, atol=1e-3)


def test_score_is_about_one_in_distribution_and_large_far_from_it():
    feats, labels = _training_features()
    stats = fit_mahalanobis(feats, labels, n_components=8)
    inside = ood_scores(stats, feats)
    assert 0.5 < float(np.median(inside)) < 1.5  # normalised by the training median
    far = feats + 10.0
    assert ood_scores(stats, far).min() > np.quantile(inside, 0.99) * 5


def test_a_model_with_an_ood_output_is_refused_a_second_one():
    feats, labels = _training_features()
    stats = fit_mahalanobis(feats, labels, n_components=4)
    with pytest.raises(ValueError, match="already has an output"):
        add_ood_output(add_ood_output(_toy_member(), stats), stats)
