"""Export timm members to ONNX and hold them to torch eager and to pytorch-grad-cam (tolerance 1e-4)."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch", reason="export tests need the train extra (torch, timm, grad-cam)")
timm = pytest.importorskip("timm")

from export.heads import UnsupportedHeadError, cam_classifier, inspect_head  # noqa: E402
from export.onnx_export import MemberInfo, export_member, read_member_metadata, round_to_fp16  # noqa: E402
from export.parity import TOLERANCE, ParityError, check_parity  # noqa: E402

pytestmark = pytest.mark.torch

CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
PARITY_CLASSES = (0, 4)  # a few classes keep the grad-cam runs short


def randomised(arch: str, seed: int = 0) -> torch.nn.Module:
    """A random-init timm model whose norm statistics and scales are not the trivial defaults."""
    torch.manual_seed(seed)
    model = timm.create_model(arch, pretrained=False, num_classes=len(CLASSES))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                c = module.num_features
                module.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                module.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
                module.weight.copy_(torch.rand(c, generator=g) + 0.5)
                module.bias.copy_(torch.randn(c, generator=g) * 0.1)
            elif isinstance(module, torch.nn.LayerNorm):
                c = module.weight.shape[0]
                module.weight.copy_(torch.rand(c, generator=g) + 0.5)
                module.bias.copy_(torch.randn(c, generator=g) * 0.1)
        for name, p in model.named_parameters():
            if name.endswith("gamma"):  # ConvNeXt layer scale starts at 1e-6: blocks would be identities
                p.copy_(torch.rand(p.shape, generator=g) * 0.3 + 0.1)
    return model.eval()


def info(arch: str, size: int) -> MemberInfo:
    return MemberInfo(arch, 7, size, CLASSES, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), extra={"note": "test"})


def inputs(size: int, n: int = 3, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


@pytest.fixture(scope="module")
def convnext(tmp_path_factory):
    model = randomised("convnext_atto")
    return model, export_member(model, tmp_path_factory.mktemp("cx") / "member.onnx", info("convnext_atto", 96))


@pytest.fixture(scope="module")
def lite0(tmp_path_factory):
    return randomised("tf_efficientnet_lite0", seed=3)


@pytest.fixture(scope="module")
def lite0_fp32(lite0, tmp_path_factory):
    return export_member(lite0, tmp_path_factory.mktemp("l32") / "member.onnx", info("tf_efficientnet_lite0", 64))


@pytest.fixture(scope="module")
def lite0_fp16(lite0, tmp_path_factory):
    return export_member(
        lite0,
        tmp_path_factory.mktemp("l16") / "member.onnx",
        info("tf_efficientnet_lite0", 64),
        weights_dtype="float16",
    )


def test_convnext_member_matches_torch_and_gradcam(convnext):
    model, exported = convnext
    assert inspect_head(model).kind == "avgpool_layernorm_linear"
    report = check_parity(exported.path, exported.reference, inputs(96), classes=(0, 4, 6))
    assert report.logits_max_abs <= TOLERANCE and report.cam_max_abs <= TOLERANCE
    # A 96 px input gives a 3 x 3 map: the comparison covers real spatial structure.
    cam = ort.InferenceSession(str(exported.path)).run(["cam"], {"image": inputs(96, 1)})[0]
    assert cam.shape == (1, len(CLASSES), 3, 3) and cam.min() >= 0 and cam.max() > 0


def test_lite0_member_matches_torch_and_gradcam(lite0, lite0_fp32):
    assert inspect_head(lite0).kind == "avgpool_linear"
    report = check_parity(lite0_fp32.path, lite0_fp32.reference, inputs(64), classes=PARITY_CLASSES)
    assert report.logits_max_abs <= TOLERANCE and report.cam_max_abs <= TOLERANCE
    assert report.cam_raw_max_abs <= TOLERANCE * 10  # raw maps agree too, before normalisation


def test_fp16_weights_halve_the_file_and_match_the_rounded_model(lite0, lite0_fp32, lite0_fp16):
    report = check_parity(lite0_fp16.path, lite0_fp16.reference, inputs(64), classes=PARITY_CLASSES)
    assert report.logits_max_abs <= TOLERANCE and report.cam_max_abs <= TOLERANCE
    assert lite0_fp16.size_bytes < 0.65 * lite0_fp32.size_bytes
    proto = onnx.load(str(lite0_fp16.path))
    big = [i for i in proto.graph.initializer if np.prod(i.dims) >= 64]
    assert big and all(i.data_type == onnx.TensorProto.FLOAT16 for i in big)
    assert lite0_fp16.fp32_initializers == 0
    # The reference really is the rounded model, not the original.
    ref_w = lite0_fp16.reference.model.classifier.weight
    assert torch.equal(ref_w, ref_w.half().float())
    assert not torch.equal(ref_w, lite0.classifier.weight)


def test_member_file_has_contract_metadata_and_dynamic_batch(lite0_fp16):
    meta = read_member_metadata(lite0_fp16.path)
    assert meta["arch"] == "tf_efficientnet_lite0" and meta["seed"] == 7 and meta["input_size"] == 64
    assert meta["class_names"] == list(CLASSES) and meta["weights_dtype"] == "float16"
    proto = onnx.load(str(lite0_fp16.path))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    session = ort.InferenceSession(str(lite0_fp16.path))
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == ["logits", "cam"]
    for n in (1, 3):
        logits, cam = session.run(None, {"image": inputs(64, n)})
        assert logits.shape == (n, len(CLASSES)) and cam.shape == (n, len(CLASSES), 2, 2)


def test_parity_catches_a_file_that_does_not_match(convnext):
    # A file checked against another model's weights must fail, with the figures in the error.
    _, exported = convnext
    other = cam_classifier(randomised("convnext_atto", seed=9))
    with pytest.raises(ParityError) as err:
        check_parity(exported.path, other, inputs(96, 2), classes=(4,))
    assert err.value.report.logits_max_abs > TOLERANCE
    assert "logits differ" in str(err.value)


def test_rounding_keeps_the_original_untouched(lite0):
    before = lite0.conv_stem.weight.clone()
    rounded = round_to_fp16(lite0)
    assert torch.equal(lite0.conv_stem.weight, before)
    assert torch.equal(rounded.conv_stem.weight, before.half().float())


@pytest.mark.parametrize(
    "kwargs, module",
    [
        ({"global_pool": "max"}, "head.global_pool"),
        ({"global_pool": "avgmax"}, "head.global_pool"),
        ({"head_hidden_size": 32}, "head.pre_logits"),
    ],
)
def test_unsupported_convnext_heads_are_refused(kwargs, module):
    model = timm.create_model("convnext_atto", pretrained=False, num_classes=3, **kwargs).eval()
    with pytest.raises(UnsupportedHeadError) as err:
        cam_classifier(model)
    assert err.value.module == module and module in str(err.value)


def test_max_pooled_efficientnet_is_refused():
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=3, global_pool="max").eval()
    with pytest.raises(UnsupportedHeadError, match="global_pool"):
        cam_classifier(model)


def test_a_hidden_head_step_is_caught_by_the_self_check():
    model = timm.create_model("convnext_atto", pretrained=False, num_classes=3).eval()
    original = model.forward_head
    model.forward_head = lambda x, pre_logits=False: torch.tanh(original(x))  # not pool -> LN -> Linear
    with pytest.raises(UnsupportedHeadError, match="forward_head"):
        cam_classifier(model)


def test_attention_pooled_vit_is_refused():
    model = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, num_classes=3, img_size=32, patch_size=16, depth=1
    ).eval()
    with pytest.raises(UnsupportedHeadError):
        cam_classifier(model)


def test_wrapper_stays_in_eval_mode(convnext):
    _, exported = convnext
    exported.reference.train()  # dropout on or BatchNorm batch statistics would break the closed form
    assert not exported.reference.training and not exported.reference.model.training


def test_export_errors_are_melascreen_errors():
    from core.common.errors import MelaScreenError
    from export.onnx_export import ExportError
    from export.package import PackagingError
    from training.models import WeightsError

    for error in (ExportError, PackagingError, ParityError, UnsupportedHeadError, WeightsError):
        assert issubclass(error, MelaScreenError), error
