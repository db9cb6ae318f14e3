"""Lensed-transient models (images + light curves) and the DeepGraviLens SVM stack."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import SVC

from darklens.models import create_model, model_inputs
from darklens.models.stacking import (
    DeepGraviLensStack,
    SVMHead,
    build_stack,
    fit_svm_head,
    resolve_gamma,
    stack_features,
    stack_kwargs,
)
from darklens.models.transients import band_statistics

MODELS = ["cnn_lstm", "lonet", "munet", "glonet"]
SMALL_GLONET = {"widths": [32, 16]}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _build(name, in_chans=4, num_classes=4, img_size=45, epochs=15, bands=4, seed=0, **kw):
    torch.manual_seed(seed)
    shapes = {"light_curves": (epochs, bands)}
    return create_model(name, in_chans, num_classes, img_size, input_shapes=shapes, **kw)


def _inputs(batch, in_chans=4, img_size=45, epochs=15, bands=4, seed=1):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, in_chans, img_size, img_size, generator=generator)
    return images, torch.rand(batch, epochs, bands, generator=generator)


# ---------------------------------------------------------------- the four networks

CONFIGS = [  # in_chans, img_size, epochs, bands
    (4, 45, 15, 4),  # DeepGraviLens data
    (1, 16, 2, 1),  # the smallest sizes allowed
    (3, 64, 7, 3),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("name", MODELS)
def test_shapes_finite_outputs_and_gradients(name, config):
    in_chans, img_size, epochs, bands = config
    assert model_inputs(name) == ("images", "light_curves")
    model = _build(name, in_chans, 5, img_size, epochs, bands).train()
    images, curves = _inputs(3, in_chans, img_size, epochs, bands)
    logits = model(images, curves)
    assert logits.shape == (3, 5) and torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.tensor([0, 4, 2])).backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, f"{name}: no gradient for {param_name}"
        assert torch.isfinite(param.grad).all(), f"{name}: non-finite gradient in {param_name}"
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(images, curves), model(images, curves))


@pytest.mark.parametrize("name", MODELS)
def test_seeded_construction(name):
    a, b, c = (_build(name, img_size=16, seed=s).eval() for s in (0, 0, 1))
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
    images, curves = _inputs(2, img_size=16)
    with torch.no_grad():
        assert torch.equal(a(images, curves), b(images, curves))
        assert not torch.equal(a(images, curves), c(images, curves))


@pytest.mark.parametrize("name", MODELS)
def test_wrong_input_shapes_name_the_expected_shape(name):
    model = _build(name, in_chans=2, img_size=16, epochs=6, bands=3).eval()
    images, curves = _inputs(2, in_chans=2, img_size=16, epochs=6, bands=3)
    bad = {
        r"light curves of shape \[B, 6 epochs, 3 bands\]; got \[2, 5, 3\]": (images, curves[:, :5]),
        r"\[B, 6 epochs, 3 bands\]; got \[2, 6, 2\]": (images, curves[..., :2]),
        r"\[B, 6 epochs, 3 bands\]; got \[6, 3\]": (images, curves[0]),
        r"images of shape \[B, 2, 16, 16\]; got \[2, 1, 16, 16\]": (images[:, :1], curves),
        r"images of shape \[B, 2, 16, 16\]; got \[2, 2, 15, 15\]": (images[..., 1:, 1:], curves),
        r"2 images but 1 light curves": (images, curves[:1]),
    }
    for message, (x, lc) in bad.items():
        with pytest.raises(ValueError, match=message):
            model(x, lc)


def test_bad_construction_arguments_are_refused():
    with pytest.raises(ValueError, match=r"epochs >= 2.*\(1, 4\)"):
        _build("lonet", epochs=1)
    with pytest.raises(ValueError, match=r"bands >= 1.*\(5, 0\)"):
        _build("munet", epochs=5, bands=0)
    with pytest.raises(ValueError, match="light_curves in input_shapes"):
        create_model("cnn_lstm", 4, 4, 45)
    with pytest.raises(ValueError, match="img_size >= 16"):
        _build("glonet", img_size=12, **SMALL_GLONET)
    with pytest.raises(ValueError, match="positive widths"):
        _build("glonet", widths=[])


def test_band_statistics_match_numpy():
    curves = torch.rand(3, 7, 4, dtype=torch.float64)
    expected = np.concatenate([curves.numpy().mean(1), curves.numpy().std(1, ddof=1)], axis=1)
    np.testing.assert_allclose(band_statistics(curves).numpy(), expected, rtol=1e-12)


def _rising_or_declining(n: int, epochs: int, bands: int, generator) -> tuple:
    """Class 1 light curves rise, class 0 decline; min–max scaled per example and band."""
    labels = torch.randint(0, 2, (n,), generator=generator)
    ramp = torch.linspace(0, 1, epochs).view(1, epochs, 1)
    slope = torch.where(labels.view(n, 1, 1) == 1, ramp, 1 - ramp)
    curves = slope + 0.3 * torch.randn(n, epochs, bands, generator=generator)
    low, high = curves.amin(1, keepdim=True), curves.amax(1, keepdim=True)
    return (curves - low) / (high - low), labels


@pytest.mark.parametrize("name", MODELS)
def test_learns_rising_versus_declining_light_curves(name):
    kwargs = SMALL_GLONET if name == "glonet" else {}
    model = _build(name, in_chans=1, num_classes=2, img_size=16, epochs=10, bands=2, **kwargs)
    generator = torch.Generator().manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(50):
        curves, labels = _rising_or_declining(32, 10, 2, generator)
        images = torch.randn(32, 1, 16, 16, generator=generator)  # no information in the image
        optimiser.zero_grad()
        F.cross_entropy(model(images, curves), labels).backward()
        optimiser.step()
    curves, labels = _rising_or_declining(200, 10, 2, generator)
    with torch.no_grad():
        predicted = model.eval()(torch.randn(200, 1, 16, 16, generator=generator), curves)
    accuracy = (predicted.argmax(1) == labels).float().mean().item()
    assert accuracy > 0.85, f"{name}: accuracy {accuracy:.2f} after 50 steps (chance: 0.5)"


# ---------------------------------------------------------------- the SVM head


def _blobs(n: int, classes: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    x = rng.random((n, features))
    x[np.arange(n), labels] += 0.6  # class k is brighter in feature k
    return x.astype(np.float32).astype(np.float64), labels  # values exact in float32


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_svm_head_reproduces_sklearn_decision_function(kernel):
    x, y = _blobs(240, 4, 12, seed=0)
    x_val, y_val = _blobs(80, 4, 12, seed=1)
    head, report = fit_svm_head(x, y, x_val, y_val, C_grid=[1.0], kernels=[kernel])
    assert (report["kernel"], report["C"]) == (kernel, 1.0)
    reference = OneVsRestClassifier(SVC(kernel=kernel, C=1.0, gamma="scale")).fit(x, y)
    expected = reference.decision_function(x_val)
    got = head(torch.tensor(x_val, dtype=torch.float32))
    assert got.dtype == torch.float32 and got.shape == (80, 4)
    np.testing.assert_allclose(got.double().numpy(), expected, atol=1e-5, rtol=1e-5)
    assert report["val_accuracy"] == np.mean(reference.predict(x_val) == y_val)
    assert head.support_per_class == [len(e.support_) for e in reference.estimators_]


def test_gamma_scale_is_resolved_like_sklearn():
    x, y = _blobs(100, 3, 6, seed=2)
    svc = SVC(kernel="rbf", gamma="scale").fit(x, y)
    assert resolve_gamma(x) == pytest.approx(svc._gamma, rel=1e-12)
    assert resolve_gamma(np.ones((4, 3))) == 1.0
    assert resolve_gamma(x, 0.25) == 0.25
    with pytest.raises(ValueError, match="positive"):
        resolve_gamma(x, -1.0)


def test_model_selection_picks_the_best_validation_candidate():
    rng = np.random.default_rng(3)

    def rings(n):  # class = which ring around the centre: separable by rbf, not by a line
        radius = rng.uniform(0, 3, n)
        angle = rng.uniform(0, 2 * np.pi, n)
        x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        return x, np.minimum(radius.astype(int), 2)

    (x, y), (x_val, y_val) = rings(300), rings(150)
    grid = [1e-3, 1.0, 10.0]
    head, report = fit_svm_head(x, y, x_val, y_val, C_grid=grid, seed=0)

    accuracies = []
    for kernel in ["linear", "rbf"]:
        for c in grid:
            svc = SVC(kernel=kernel, C=c, gamma=report["gamma"])
            accuracies.append(np.mean(OneVsRestClassifier(svc).fit(x, y).predict(x_val) == y_val))
    assert [c["val_accuracy"] for c in report["candidates"]] == pytest.approx(accuracies)
    best = int(np.argmax(accuracies))
    assert (report["kernel"], report["C"]) == (["linear", "rbf"][best // 3], grid[best % 3])
    assert report["kernel"] == "rbf" and report["val_accuracy"] > max(accuracies[:3]) + 0.1
    predicted = head(torch.tensor(x_val, dtype=torch.float32)).argmax(1).numpy()
    assert np.mean(predicted == y_val) == pytest.approx(report["val_accuracy"])
    json.dumps(report)


def test_fit_svm_head_rejects_bad_labels():
    x, y = _blobs(60, 3, 4, seed=4)
    with pytest.raises(ValueError, match="missing \\[1\\]"):
        fit_svm_head(x[y != 1], y[y != 1], x, y, num_classes=3)
    with pytest.raises(ValueError, match="labels \\[N\\]"):
        fit_svm_head(x, y[:-1], x, y)
    with pytest.raises(ValueError, match="integer class indices"):
        fit_svm_head(x, y.astype(float), x, y)
    with pytest.raises(ValueError, match="kernels among"):
        fit_svm_head(x, y, x, y, kernels=["poly"])


def test_empty_svm_head_shapes_and_errors():
    head = SVMHead(6, 3)
    assert not head.fitted and head.support_per_class == [0, 0, 0]
    assert torch.equal(head(torch.rand(2, 6)), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"\[B, 6\]"):
        head(torch.rand(2, 5))
    with pytest.raises(ValueError, match="kernel"):
        SVMHead(6, 3, kernel="poly")
    with pytest.raises(ValueError, match="support_per_class"):
        SVMHead(6, 3, support_per_class=[1, 2])


# ---------------------------------------------------------------- the stack

STACK = {"in_chans": 2, "num_classes": 3, "img_size": 16}
CURVES = {"light_curves": (5, 2)}
MEMBER_KWARGS = {"glonet": SMALL_GLONET}


def _members(seed: int) -> list[torch.nn.Module]:
    members = []
    for offset, name in enumerate(["lonet", "munet", "glonet"]):
        torch.manual_seed(seed + offset)
        kwargs = MEMBER_KWARGS.get(name, {})
        members.append(create_model(name, **STACK, input_shapes=CURVES, **kwargs).eval())
    return members


def test_stack_round_trips_through_safetensors_and_json(tmp_path):
    members = _members(seed=0)
    images, curves = _inputs(60, 2, 16, 5, 2)
    labels = np.arange(60) % 3
    with torch.no_grad():
        features = stack_features(members, images, curves)
    head, _ = fit_svm_head(features[:40], labels[:40], features[40:], labels[40:], C_grid=[1.0])
    stack = build_stack(
        members,
        ["lonet", "munet", "glonet"],
        head,
        **STACK,
        input_shapes=CURVES,
        member_kwargs=MEMBER_KWARGS,
    )
    assert isinstance(stack, DeepGraviLensStack)
    assert not any(p.requires_grad for p in stack.parameters())
    assert not any(m.training for m in stack.train().modules()), "the stack stays in eval mode"
    with torch.no_grad():
        logits = stack(images, curves)
        assert torch.equal(logits, head(stack_features(members, images, curves)))

    path = tmp_path / "stack.safetensors"
    save_file({k: v.contiguous() for k, v in stack.state_dict().items()}, path)
    kwargs = json.loads(json.dumps(stack_kwargs(stack)))
    torch.manual_seed(5)
    rebuilt = create_model("deepgravilens", **STACK, input_shapes=CURVES, **kwargs)
    with torch.no_grad():
        assert not torch.equal(rebuilt(images, curves), logits)
        rebuilt.load_state_dict(load_file(path))
        assert torch.equal(rebuilt(images, curves), logits)


def test_unfitted_stack_is_a_soft_vote_of_its_members():
    torch.manual_seed(0)
    stack = create_model("deepgravilens", **STACK, input_shapes=CURVES, member_kwargs=MEMBER_KWARGS)
    images, curves = _inputs(4, 2, 16, 5, 2)
    with torch.no_grad():
        probabilities = stack(images, curves).softmax(1)
        votes = [m(images, curves).softmax(1) for m in stack.members.values()]
    torch.testing.assert_close(probabilities, torch.stack(votes).mean(0))
    with pytest.raises(ValueError, match=r"deepgravilens.*\[B, 5 epochs, 2 bands\]"):
        stack(images, curves[:, :4])


def test_stack_refuses_mismatched_members_and_bad_names():
    members = _members(seed=0)
    head = SVMHead(9, 3)
    with pytest.raises(ValueError, match="member 'glonet' does not match"):
        build_stack(members, ["lonet", "munet", "glonet"], head, **STACK, input_shapes=CURVES)
    with pytest.raises(ValueError, match="'resnet18' takes"):
        create_model("deepgravilens", **STACK, input_shapes=CURVES, members=["lonet", "resnet18"])
    with pytest.raises(ValueError, match="distinct"):
        create_model("deepgravilens", **STACK, input_shapes=CURVES, members=["lonet", "lonet"])
    with pytest.raises(ValueError, match="9 features"):
        build_stack(
            members, ["lonet", "munet", "glonet"], SVMHead(6, 3), **STACK, input_shapes=CURVES
        )
