"""Contract tests for every registered model, plus pretrained-weight loading and size rules."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from darklens.models import (
    DEFAULT_ARCHITECTURE,
    create_model,
    list_models,
    load_pretrained,
    model_entry,
    model_inputs,
    resolve_model_name,
)
from darklens.models.cbam import ChannelAttention, SpatialAttention
from darklens.models.timm_zoo import (
    SWIN_STRIDES,
    swin_window_size,
    valid_swin_sizes,
    vit_patch_size,
)

SIZE = 64
NUM_CLASSES = 5
EXTRA_SHAPES = {"light_curves": (15, 4)}  # per-example shapes of the extra inputs models take


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _build(name: str, seed: int = 0, **kwargs) -> torch.nn.Module:
    """The model with NUM_CLASSES outputs (image models: as many output as input channels)."""
    torch.manual_seed(seed)
    kwargs = {"in_chans": 1, "img_size": SIZE, **kwargs}
    outputs = kwargs["in_chans"] if model_entry(name).output == "image" else NUM_CLASSES
    kwargs.setdefault("num_classes", outputs)
    return create_model(name, input_shapes=EXTRA_SHAPES, **kwargs)


def _inputs(name: str, batch: int, in_chans: int = 1) -> tuple[torch.Tensor, ...]:
    """Random inputs for every input the model takes (images first)."""
    extras = (torch.rand(batch, *EXTRA_SHAPES[n]) for n in model_inputs(name)[1:])
    return (torch.randn(batch, in_chans, SIZE, SIZE), *extras)


def _save(model: torch.nn.Module, path) -> None:
    save_file({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}, path)


# ---------------------------------------------------------------- the contract, for every model


@pytest.mark.parametrize("name", list_models())
def test_registry_entry_describes_the_model(name):
    """The entry's first_conv sees the image, its classifier gives the logits, its sizes hold,
    and the fit kind matches whether backprop can train the model."""
    entry = model_entry(name)
    model = _build(name, in_chans=3)
    modules = dict(model.named_modules())
    if entry.first_conv is not None:
        conv = modules[entry.first_conv]
        assert isinstance(conv, torch.nn.Conv2d) and conv.in_channels == 3
        first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        assert conv is first, f"{name}: first_conv is not the first convolution"
    if entry.output == "image":
        assert entry.classifier is None
    if entry.classifier is not None:
        head = modules[entry.classifier]
        linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)] or [head]
        assert linears[-1].out_features == NUM_CLASSES
    trainable = any(p.requires_grad for p in model.parameters())
    assert (entry.fit == "backprop") == trainable
    assert entry.inputs == model_inputs(name)
    too_small = entry.min_img_size - 1
    with pytest.raises(ValueError, match="img_size"):
        _build(name, img_size=too_small)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("in_chans", [1, 3])
def test_forward_backward_finite(name, in_chans):
    model = _build(name, in_chans=in_chans).train()
    inputs = _inputs(name, 2, in_chans)
    logits = model(*inputs)
    image_output = model_entry(name).output == "image"
    assert logits.shape == ((2, in_chans, SIZE, SIZE) if image_output else (2, NUM_CLASSES))
    assert torch.isfinite(logits).all()
    if not any(p.requires_grad for p in model.parameters()):
        # stacks of separately trained members (deepgravilens) are not trained by backprop
        assert not logits.requires_grad
        return
    if image_output:
        F.mse_loss(logits, torch.zeros_like(logits)).backward()
    else:
        F.cross_entropy(logits, torch.tensor([0, NUM_CLASSES - 1])).backward()
    for param_name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, f"{name}: no gradient for {param_name}"
            assert torch.isfinite(param.grad).all(), f"{name}: non-finite gradient in {param_name}"


REGRESSION_MODELS = [
    n
    for n in list_models()
    if model_entry(n).output == "logits" and model_entry(n).fit == "backprop"
]


@pytest.mark.parametrize("name", REGRESSION_MODELS)
def test_every_image_model_trains_one_step_with_a_regression_head(name):
    """A Gaussian-NLL head for two targets: the registry's classifier gives 2·2 outputs, and one
    optimiser step on the (finite) regression loss moves the head's weights."""
    from darklens.train.targets import RegressionLoss

    n_targets = 2
    model = _build(name, num_classes=2 * n_targets).train()
    head = dict(model.named_modules())[model_entry(name).classifier]
    linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)] or [head]
    assert linears[-1].out_features == 2 * n_targets
    torch.manual_seed(1)
    inputs, targets = _inputs(name, 4), torch.randn(4, n_targets)
    loss_fn = RegressionLoss("gaussian_nll", n_targets)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    before = {k: v.detach().clone() for k, v in head.state_dict().items()}
    loss = loss_fn(model(*inputs), targets)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(before[k], v) for k, v in head.state_dict().items())


@pytest.mark.parametrize("name", list_models())
def test_safetensors_round_trip_and_seeding(name, tmp_path):
    model = _build(name)
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            model.state_dict().values(), _build(name).state_dict().values(), strict=True
        )
    ), "same seed must give the same weights"
    model.train()
    model(*_inputs(name, 4))  # move batch-norm statistics away from their init
    model.eval()
    path = tmp_path / "weights.safetensors"
    _save(model, path)

    fresh = _build(name, seed=1).eval()
    x = _inputs(name, 2)
    with torch.no_grad():
        assert not torch.equal(model(*x), fresh(*x)), "another seed should give another model"
        report = load_pretrained(fresh, path)
        assert torch.equal(model(*x), fresh(*x))
    assert len(report.loaded) == len(model.state_dict())
    assert not (report.missing or report.unexpected or report.skipped_head or report.adapted)


def test_unknown_name_raises_key_error_with_close_matches():
    with pytest.raises(KeyError, match="Did you mean.*'resnet18'"):
        create_model("resnet19")


def test_default_is_a_registered_alias():
    assert "default" in list_models()
    assert resolve_model_name("default") == DEFAULT_ARCHITECTURE != "default"
    assert DEFAULT_ARCHITECTURE in list_models()
    alias, target = _build("default"), _build(DEFAULT_ARCHITECTURE)
    assert type(alias) is type(target)
    assert {k: v.shape for k, v in alias.state_dict().items()} == {
        k: v.shape for k, v in target.state_dict().items()
    }


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="in_chans"):
        create_model("deeplense_cnn", in_chans=0)
    with pytest.raises(ValueError, match="img_size >= 32"):
        create_model("convnextv2_atto", img_size=16)


# ---------------------------------------------------------------- pretrained weights


@pytest.mark.parametrize("name", ["deeplense_cnn", "resnet18", "vit_tiny"])
def test_rgb_weights_adapted_to_one_channel(name, tmp_path):
    rgb = _build(name, in_chans=3).eval()
    path = tmp_path / "rgb.safetensors"
    _save(rgb, path)
    grey = _build(name, seed=1, in_chans=1).eval()
    report = load_pretrained(grey, path)

    assert len(report.adapted) == 1
    key = report.adapted[0]
    expected = rgb.state_dict()[key].sum(dim=1, keepdim=True)
    torch.testing.assert_close(grey.state_dict()[key], expected)
    # a grey image through the adapted model answers like (x, x, x) through the RGB model
    x = torch.randn(2, 1, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(grey(x), rgb(x.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-4)


def test_rgb_weights_repeated_and_scaled_for_more_channels(tmp_path):
    rgb = _build("deeplense_cnn", in_chans=3)
    path = tmp_path / "rgb.safetensors"
    _save(rgb, path)
    five = _build("deeplense_cnn", in_chans=5)
    report = load_pretrained(five, path)
    key = report.adapted[0]
    source = rgb.state_dict()[key]
    expected = torch.stack([source[:, c % 3] * 3 / 5 for c in range(5)], dim=1)
    torch.testing.assert_close(five.state_dict()[key], expected)


def test_head_of_another_shape_is_skipped_and_reported(tmp_path):
    ten = _build("resnet18_cbam", num_classes=10)
    path = tmp_path / "ten.safetensors"
    _save(ten, path)
    three = _build("resnet18_cbam", seed=1, num_classes=3)
    head_before = three.fc.weight.detach().clone()
    report = load_pretrained(three, path)

    assert sorted(report.skipped_head) == ["fc.bias", "fc.weight"]
    assert torch.equal(three.fc.weight, head_before)
    assert torch.equal(three.stem[0].weight, ten.stem[0].weight)
    with pytest.raises(ValueError, match="fc.weight"):
        load_pretrained(_build("resnet18_cbam", num_classes=3), path, strict_head=True)


def test_body_shape_mismatch_is_an_error(tmp_path):
    path = tmp_path / "other.safetensors"
    _save(_build("convnextv2_femto"), path)
    with pytest.raises(ValueError, match="shapes differ"):
        load_pretrained(_build("convnextv2_atto"), path)
    _save(_build("resnet34"), path)  # only the head keys (fc.*) coincide with resnet18_cbam's
    with pytest.raises(ValueError, match="no tensor"):
        load_pretrained(_build("resnet18_cbam"), path)


def test_wrapped_torch_checkpoint_is_unwrapped(tmp_path):
    source = _build("deeplense_cnn")
    wrapped = {f"module.{k}": v for k, v in source.state_dict().items()}
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "state_dict": wrapped}, path)
    target = _build("deeplense_cnn", seed=1)
    report = load_pretrained(target, path)
    assert len(report.loaded) == len(source.state_dict())
    assert all(torch.equal(v, target.state_dict()[k]) for k, v in source.state_dict().items())


class _Exploit:
    """Unpickling this object would create a directory: the load must refuse before that."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_with_python_objects_is_refused(tmp_path):
    marker = tmp_path / "code-was-run"
    path = tmp_path / "evil.pth"
    torch.save(
        {"state_dict": _build("deeplense_cnn").state_dict(), "x": _Exploit(str(marker))}, path
    )
    with pytest.raises(ValueError, match="weights_only=True"):
        load_pretrained(_build("deeplense_cnn"), path)
    assert not marker.exists()


def test_missing_unmatched_and_unsupported_files(tmp_path):
    model = _build("deeplense_cnn")
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        load_pretrained(model, tmp_path / "nothing.safetensors")
    path = tmp_path / "unrelated.safetensors"
    save_file({"encoder.weight": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="no tensor"):
        load_pretrained(model, path)
    path = tmp_path / "weights.npz"
    path.write_bytes(b"\0")
    with pytest.raises(ValueError, match="unsupported"):
        load_pretrained(model, path)


def test_create_model_pretrained_path_and_hub_refusal(tmp_path):
    source = _build("lastro_cnn").eval()
    path = tmp_path / "lastro.safetensors"
    _save(source, path)
    loaded = _build("lastro_cnn", seed=1, pretrained=path).eval()
    x = torch.randn(2, 1, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(loaded(x), source(x))
    with pytest.raises(ValueError, match="hub"):
        create_model("resnet18", pretrained=True)


# ---------------------------------------------------------------- architecture details


def test_lastro_cnn_has_the_papers_parameter_count():
    # Schaefer et al. 2018 quote about 5.7 million parameters
    count = sum(p.numel() for p in _build("lastro_cnn", num_classes=1).parameters())
    assert 5.6e6 < count < 5.8e6
    for size in (32, 150):
        assert _build("lastro_cnn", img_size=size).eval()(torch.randn(2, 1, size, size)).shape == (
            2,
            NUM_CLASSES,
        )


def test_cmu_deeplens_stages_downsample_to_512_channels():
    model = _build("cmu_deeplens")
    assert len(model.units) == 15
    features = model.units(model.stem(torch.randn(2, 1, SIZE, SIZE)))
    assert features.shape == (2, 512, SIZE // 16, SIZE // 16)
    assert [u.residual[0].out_channels for u in model.units[::3]] == [8, 16, 32, 64, 128]


def test_cbam_attention_matches_the_paper_equations():
    torch.manual_seed(0)
    x = torch.randn(2, 32, 5, 5)
    channel = ChannelAttention(32, reduction=16)
    w1, b1, w2, b2 = (p.detach() for p in channel.mlp.parameters())

    def mlp(v):
        return torch.relu(v @ w1.T + b1) @ w2.T + b2

    gate = torch.sigmoid(mlp(x.mean(dim=(2, 3))) + mlp(x.flatten(2).max(dim=2).values))
    torch.testing.assert_close(channel(x), x * gate[:, :, None, None])

    spatial = SpatialAttention()
    stacked = torch.stack([x.mean(dim=1), x.max(dim=1).values], dim=1)
    gate = torch.sigmoid(F.conv2d(stacked, spatial.conv.weight.detach(), padding=3))
    torch.testing.assert_close(spatial(x), x * gate)


@pytest.mark.parametrize("img_size", [32, 64, 96, 128, 160, 224, 288])
def test_swin_window_tiles_every_stage(img_size):
    window = swin_window_size(img_size)
    maps = [img_size // s for s in SWIN_STRIDES]
    assert all(m <= window or m % window == 0 for m in maps)
    larger = range(window + 1, 8)
    assert not any(all(m <= w or m % w == 0 for m in maps) for w in larger)


def test_swin_rejects_untileable_sizes_naming_valid_ones():
    with pytest.raises(ValueError, match=r"nearby valid sizes: \[") as info:
        create_model("swin_tiny", img_size=150)
    assert all(size % 32 == 0 for size in valid_swin_sizes(150))
    for size in valid_swin_sizes(150):
        assert str(size) in str(info.value)
        swin_window_size(size)
    with pytest.raises(ValueError, match="window_size 5"):
        create_model("swin_tiny", img_size=64, window_size=5)


def test_swin_and_vit_at_other_sizes():
    swin = _build("swin_tiny", img_size=96).eval()
    assert swin(torch.randn(1, 1, 96, 96)).shape == (1, NUM_CLASSES)
    assert vit_patch_size(64) == 8  # the documented small-image choice
    vit = _build("vit_tiny", img_size=150).eval()
    patch = vit.patch_embed.proj.kernel_size[0]
    assert 150 % patch == 0 and 4 <= patch <= 16
    assert vit(torch.randn(1, 1, 150, 150)).shape == (1, NUM_CLASSES)
    with pytest.raises(ValueError, match="divisor"):
        create_model("vit_tiny", img_size=101)
    with pytest.raises(ValueError, match="must divide"):
        create_model("vit_tiny", img_size=64, patch_size=7)


# ---------------------------------------------------------------- U-Net


@pytest.mark.parametrize("size", [(33, 47), (40, 40), (7, 9)])
@pytest.mark.parametrize("variant", ["small", "base"])
def test_unet_keeps_odd_and_even_shapes(size, variant):
    model = create_model("unet", in_chans=2, num_classes=2, img_size=64, size=variant).eval()
    x = torch.randn(3, 2, *size)
    with torch.no_grad():
        assert model(x).shape == x.shape


def test_unet_is_residual_and_its_skips_carry_detail():
    """An untrained residual U-Net starts at the identity plus a learned correction; one that
    learns to output zeros must cancel its input through the skip path."""
    model = create_model("unet", in_chans=1, num_classes=1, img_size=32, size="small").eval()
    torch.nn.init.zeros_(model.out.weight)
    torch.nn.init.zeros_(model.out.bias)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), x)
    with pytest.raises(ValueError, match="residual"):
        create_model("unet", in_chans=1, num_classes=3, img_size=32)
    counts = {
        v: sum(p.numel() for p in create_model("unet", 1, 1, 32, size=v).parameters())
        for v in ("small", "base")
    }
    assert counts["small"] < 1e6 < counts["base"]
