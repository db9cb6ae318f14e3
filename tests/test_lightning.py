"""darklens.lightning: the DataModule's batches (shapes, dtypes, extra inputs, the same order for
the same seed) and the LightningModule (fast_dev_run on CPU, deterministic per seed, darklens
checkpoints that the Predictor reads back to the same probabilities)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from darklens.config import ConfigError
from darklens.lightning import LensClassifier, LensDataModule
from darklens.predict import Predictor
from darklens.simulate.api import simulate

logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


def _trainer(**kwargs):
    import lightning.pytorch as pl  # after darklens.lightning, which imports torchvision safely

    options = {
        "accelerator": "cpu",
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
    }
    return pl.Trainer(**{**options, **kwargs})


@pytest.fixture(scope="module")
def substructure():
    """3 classes x 8 images of 1 x 32 x 32 (12 train, 6 val, 6 test)."""
    return simulate(
        "model_ii", n_per_class=8, seed=1, split=(0.5, 0.25, 0.25),
        overrides={"instrument.num_pix": 32},
    )  # fmt: skip


@pytest.fixture(scope="module")
def transients():
    return simulate("transients_des_deep", n=16, seed=2, split=(0.5, 0.25, 0.25))


def _batches(dm: LensDataModule, epochs: int = 2) -> list[torch.Tensor]:
    loader = dm.train_dataloader()
    return [images for _ in range(epochs) for images, _ in loader]


def test_datamodule_batches_shapes_dtypes_and_seeded_order(substructure):
    dm = LensDataModule(substructure, batch_size=5, seed=3)
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (5, 1, 32, 32) and images.dtype == torch.float32
    assert labels.dtype == torch.int64
    # 12 training images in batches of 5: the trailing batch of 2 is kept
    assert [len(x) for x, _ in dm.train_dataloader()] == [5, 5, 2]
    same = LensDataModule(substructure, batch_size=5, seed=3)
    other = LensDataModule(substructure, batch_size=5, seed=4)
    first, again, different = _batches(dm), _batches(same), _batches(other)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, different, strict=True))
    assert not torch.equal(first[0], first[3])  # a new order each epoch
    val = torch.cat([x for x, _ in dm.val_dataloader()])
    np.testing.assert_array_equal(val.numpy(), substructure.split("val").images)
    assert dm.class_names == ["no_sub", "cdm", "axion"] and dm.image_shape == (1, 32, 32)


def test_datamodule_drops_a_trailing_training_batch_of_one(substructure):
    dm = LensDataModule(substructure, batch_size=11)
    assert [len(x) for x, _ in dm.train_dataloader()] == [11]


def test_datamodule_yields_extra_inputs(transients, tmp_path):
    path = transients.save(tmp_path / "tr.h5")
    dm = LensDataModule(path, batch_size=4)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 4, 45, 45)
    assert batch["light_curves"].shape == (4, *transients.inputs["light_curves"].shape[1:])
    assert batch["light_curves"].dtype == torch.float32 and batch["label"].dtype == torch.int64


def test_fast_dev_run_on_cpu_logs_darklens_metrics(substructure):
    dm = LensDataModule(substructure, batch_size=6)
    module = LensClassifier.for_data(dm, model="deeplense_cnn", normalization="dataset")
    assert module.preprocessing.mean is not None and module.preprocessing.img_size == 32
    trainer = _trainer(fast_dev_run=1)
    trainer.fit(module, datamodule=dm)
    metrics = trainer.callback_metrics
    assert {"train_loss", "val_loss", "val_acc", "val_auc"} <= set(metrics)
    assert np.isfinite(float(metrics["val_loss"])) and 0 <= float(metrics["val_acc"]) <= 1
    trainer.test(module, datamodule=dm, verbose=False)
    assert 0 <= float(trainer.callback_metrics["test_auc"]) <= 1


def test_multi_input_model_trains_on_light_curves(transients):
    dm = LensDataModule(transients, batch_size=4)
    module = LensClassifier.for_data(dm, model="lonet", normalization="channel_minmax")
    assert module.preprocessing.extras == ("light_curves",)
    trainer = _trainer(fast_dev_run=1)
    trainer.fit(module, datamodule=dm)
    assert np.isfinite(float(trainer.callback_metrics["val_loss"]))
    without = LensDataModule(transients, batch_size=4, extras=[])
    with pytest.raises(ValueError, match=r"lonet takes the extra input\(s\) \['light_curves'\]"):
        LensClassifier.for_data(without, model="lonet")


def _fit_weights(substructure, seed: int) -> dict[str, torch.Tensor]:
    dm = LensDataModule(substructure, batch_size=6, seed=seed)
    augment = {"dihedral": True, "shift_px": 0.5}
    module = LensClassifier.for_data(dm, model="deeplense_cnn", seed=seed, augment=augment)
    _trainer(max_steps=3, num_sanity_val_steps=0, limit_val_batches=0).fit(module, datamodule=dm)
    return {k: v.clone() for k, v in module.model.state_dict().items()}


def test_training_is_deterministic_per_seed(substructure):
    a, b, c = (_fit_weights(substructure, seed) for seed in (0, 0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize(
    "settings", [{}, {"normalization": "asinh", "crop": 24}], ids=["minmax", "asinh-crop"]
)
def test_darklens_checkpoint_predicts_what_the_module_predicts(tmp_path, settings):
    data = simulate(
        "lensfind_space", n=24, lens_fraction=(0.5, 0.5, 0.5), seed=0,
        split=(0.5, 0.25, 0.25), overrides={"instrument.num_pix": 32},
    )  # fmt: skip
    dm = LensDataModule(data, batch_size=4)
    module = LensClassifier.for_data(
        dm, model="deeplense_cnn", class_weighting="balanced", **settings
    )
    assert module.loss_fn.weight is not None
    trainer = _trainer(max_epochs=1)
    trainer.fit(module, datamodule=dm)
    json_path = module.save_darklens_checkpoint(tmp_path / "run" / "best")
    predictor = Predictor.from_checkpoint(json_path)
    assert list(predictor.classes_) == ["non_lens", "lens"] and predictor.threshold_ is not None
    test_images = data.split("test").images
    expected = torch.cat(trainer.predict(module, datamodule=dm)).numpy()
    np.testing.assert_allclose(predictor.predict_proba(test_images), expected, atol=1e-5)


def test_plateau_schedule_is_refused_clearly(substructure):
    dm = LensDataModule(substructure, batch_size=6)
    with pytest.raises(ConfigError, match="cosine or none"):
        LensClassifier.for_data(dm, model="deeplense_cnn", schedule="plateau")


def test_balanced_sampling_draws_classes_evenly_and_is_asked_of_the_data_module():
    data = simulate(
        "lensfind_space", n=200, lens_fraction=(0.1, 0.5, 0.5), seed=0,
        split=(0.8, 0.1, 0.1), overrides={"instrument.num_pix": 16},
    )  # fmt: skip
    plain = LensDataModule(data, batch_size=32, seed=1)
    balanced = LensDataModule(data, batch_size=32, seed=1, balanced_sampling=True)
    lens_share = [
        float(torch.cat([y for _, y in dm.train_dataloader()]).float().mean())
        for dm in (plain, balanced)
    ]
    assert lens_share[0] == pytest.approx(0.1, abs=0.01)  # every image once
    assert 0.4 < lens_share[1] < 0.6  # drawn with replacement, classes equally likely
    again = LensDataModule(data, batch_size=32, seed=1, balanced_sampling=True)
    first, second = (torch.cat([x for x, _ in dm.train_dataloader()]) for dm in (balanced, again))
    assert torch.equal(first, second)
    with pytest.raises(ConfigError, match="balanced_sampling=True"):
        LensClassifier.for_data(plain, model="deeplense_cnn", balanced_sampling=True)


def test_pretrained_weights_are_loaded_like_darklens_train_does(substructure, tmp_path):
    dm = LensDataModule(substructure, batch_size=6)
    first = LensClassifier.for_data(dm, model="deeplense_cnn", seed=0)
    first.save_darklens_checkpoint(tmp_path / "run" / "best")
    fresh = LensClassifier.for_data(dm, model="deeplense_cnn", seed=5)
    tuned = LensClassifier.for_data(
        dm, model="deeplense_cnn", seed=5, pretrained=str(tmp_path / "run")
    )
    state, fresh_state = first.model.state_dict(), fresh.model.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in tuned.model.state_dict().items())
    assert not all(torch.equal(v, state[k]) for k, v in fresh_state.items())
    with pytest.raises(FileNotFoundError, match="no pretrained weights"):
        LensClassifier.for_data(dm, model="deeplense_cnn", pretrained=str(tmp_path / "nowhere"))
