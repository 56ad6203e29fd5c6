import pytest

timm = pytest.importorskip("timm")
torch = pytest.importorskip("torch", reason="training tests need the train extra (torch, timm)")

from training.models import (  # noqa: E402
    LITE0,
    LITE0_TENSORS,
    Units,
    WeightsError,
    backbone_units,
    build_model,
    lite0_weights_path,
    map_lite0_state_dict,
    model_mean_std,
)


@pytest.fixture(scope="module")
def lite0_source():
    return torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)


def test_lite0_package_weights_map_onto_timm_strictly(lite0_source):
    model = timm.create_model(LITE0, pretrained=False)
    mapped = map_lite0_state_dict(lite0_source, model.state_dict())
    assert len(mapped) == len(lite0_source) == LITE0_TENSORS
    # Every source tensor is used exactly once, and the result loads with strict=True.
    assert {id(t) for t in mapped.values()} == {id(t) for t in lite0_source.values()}
    model.load_state_dict(mapped, strict=True)
    torch.testing.assert_close(model.conv_stem.weight, lite0_source["_conv_stem.weight"])
    torch.testing.assert_close(model.classifier.bias, lite0_source["_fc.bias"])


def test_lite0_mapping_fails_loudly_on_a_shape_mismatch(lite0_source):
    target = timm.create_model(LITE0, pretrained=False).state_dict()
    broken = dict(lite0_source)
    broken["_bn0.weight"] = torch.zeros(5)
    with pytest.raises(WeightsError, match="_bn0.weight"):
        map_lite0_state_dict(broken, target)
    with pytest.raises(WeightsError, match="296"):
        map_lite0_state_dict(dict(list(lite0_source.items())[:-2]), target)


def test_build_model_uses_the_package_weights_and_a_new_head(lite0_source):
    model = build_model(LITE0, 7)
    torch.testing.assert_close(model.blocks[3][0].conv_pw.weight, lite0_source["_blocks.5._expand_conv.weight"])
    assert model.classifier.out_features == 7
    assert model_mean_std(LITE0) == ((0.5,) * 3, (0.5,) * 3)


def test_missing_weights_file_is_a_clear_error_and_nothing_downloads(tmp_path):
    with pytest.raises(WeightsError, match="not found.*nothing is downloaded"):
        build_model("convnext_atto", 7, str(tmp_path / "absent.pth"))
    with pytest.raises(WeightsError, match="pretrained_path"):
        build_model("convnext_atto", 7)


def test_local_timm_weights_load_without_their_head(tmp_path):
    source = timm.create_model("convnext_atto", pretrained=False)
    torch.save(source.state_dict(), tmp_path / "atto.pth")
    model = build_model("convnext_atto", 7, str(tmp_path / "atto.pth"))
    torch.testing.assert_close(model.stem[0].weight, source.stem[0].weight)
    assert model.head.fc.out_features == 7


@pytest.mark.parametrize("arch", [LITE0, "convnext_atto"])
def test_units_reproduce_the_forward_pass(arch):
    model = build_model(arch, 7, "none").eval()
    units = backbone_units(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_head(Units.run(units.modules, x)), model(x))
    start = units.tail_start(3)
    assert 0 < start < len(units.modules)
