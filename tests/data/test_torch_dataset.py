"""Contract of TorchLensDataset: the same tensors from a file and from memory, shapes and dtypes,
extra inputs and truth on request, batching, worker processes, transforms and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from darklens.data.h5 import LensDataset
from darklens.data.memory import InMemoryDataset
from darklens.data.preprocessing import Preprocessing
from darklens.data.torch_dataset import ImagePreprocess, TorchLensDataset
from darklens.data.transforms import preprocess
from darklens.simulate.api import simulate


@pytest.fixture(scope="module")
def transients(tmp_path_factory) -> tuple[InMemoryDataset, object]:
    """16 lensed-transient objects (4 x 45 x 45 coadds + light curves), in memory and on disk."""
    memory = simulate("transients_des_deep", n=16, seed=2, split=(0.5, 0.25, 0.25))
    path = memory.save(tmp_path_factory.mktemp("tr") / "tr.h5")
    return memory, path


def test_items_are_tensors_of_the_promised_shapes_and_dtypes(transients):
    memory, _ = transients
    ds = TorchLensDataset(memory, split="train", truth=["z_lens", "object_kind"])
    assert len(ds) == 8 and ds.class_names == memory.class_names
    item = ds[1]
    row = int(memory.split_indices("train")[1])
    assert int(item["index"]) == row
    assert item["image"].shape == (4, 45, 45) and item["image"].dtype == torch.float32
    assert item["label"].dtype == torch.int64 and int(item["label"]) == memory.labels[row]
    curves = item["light_curves"]
    assert curves.dtype == torch.float32 and tuple(curves.shape) == ds.input_shapes["light_curves"]
    assert item["truth"]["z_lens"].dtype == torch.float64
    assert item["truth"]["object_kind"].dtype == torch.from_numpy(memory.truth["object_kind"]).dtype
    np.testing.assert_array_equal(item["image"].numpy(), memory.images[row])
    np.testing.assert_array_equal(curves.numpy(), memory.inputs["light_curves"][row])
    # no extras and no truth: plain (image, label) pairs
    image, label = TorchLensDataset(memory, split="train", extras=[])[1]
    assert torch.equal(image, item["image"]) and torch.equal(label, item["label"])


def test_file_and_memory_give_the_same_batches_also_from_worker_processes(transients):
    memory, path = transients
    in_memory = DataLoader(TorchLensDataset(memory, split="all", truth=["z_lens"]), batch_size=3)
    on_disk = DataLoader(
        TorchLensDataset(path, split="all", truth=["z_lens"]), batch_size=3, num_workers=1
    )
    batches = list(zip(in_memory, on_disk, strict=True))
    assert len(batches) == 6
    for a, b in batches:
        assert a["image"].shape[1:] == (4, 45, 45) and a["light_curves"].ndim == 3
        for key in ("image", "label", "index", "light_curves"):
            assert torch.equal(a[key], b[key]), key
        assert torch.equal(a["truth"]["z_lens"].nan_to_num(-1), b["truth"]["z_lens"].nan_to_num(-1))


def test_transform_is_darklens_preprocessing_of_one_image(transients):
    memory, _ = transients
    scale = ImagePreprocess("channel_minmax", img_size=32)
    ds = TorchLensDataset(memory, split="val", transform=scale, extras=[])
    image, _ = ds[0]
    row = memory.split_indices("val")[0]
    expected = preprocess(torch.from_numpy(memory.images[row : row + 1]), "channel_minmax", 32)
    assert image.shape == (4, 32, 32)
    torch.testing.assert_close(image, expected[0])
    with pytest.raises(ValueError, match=r"one image \[C, H, W\]"):
        scale(torch.zeros(2, 4, 8, 8))


def test_lens_dataset_objects_are_accepted(transients):
    _, path = transients
    with LensDataset(path) as opened:
        assert len(TorchLensDataset(opened, split="test")) == 4


def test_bad_requests_fail_with_what_is_available(transients, tmp_path):
    memory, path = transients
    with pytest.raises(KeyError, match="no extra input 'spectra'; it has: light_curves"):
        TorchLensDataset(memory, extras=["spectra"])
    with pytest.raises(KeyError, match=f"{path} has no truth column 'mass'"):
        TorchLensDataset(path, truth=["mass"])
    with pytest.raises(KeyError, match="unknown split 'holdout'"):
        TorchLensDataset(memory, split="holdout")
    one_split = memory.subset(memory.split_indices("train"))
    with pytest.raises(ValueError, match="split 'val' of the in-memory dataset is empty"):
        TorchLensDataset(one_split, split="val")
    ds = TorchLensDataset(memory, split="test")
    with pytest.raises(IndexError, match="outside this split of 4 images"):
        ds[4]
    with pytest.raises(FileNotFoundError):
        TorchLensDataset(tmp_path / "missing.h5")


def test_asinh_preprocessing_from_a_checkpoint_uses_its_softening(transients):
    memory, _ = transients
    prep = Preprocessing(normalization="asinh", img_size=45, in_chans=4, softening=(2.0,) * 4)
    scale = ImagePreprocess.from_preprocessing(prep)
    row = memory.split_indices("val")[0]
    raw = torch.from_numpy(memory.images[row])
    torch.testing.assert_close(scale(raw), torch.asinh(raw.float() / 2.0))


def test_cropping_preprocessing_from_a_checkpoint_matches_the_batch_path(transients):
    """One image through ImagePreprocess equals the batch preprocessing a Predictor applies."""
    memory, _ = transients
    prep = Preprocessing(normalization="channel_minmax", img_size=16, in_chans=4, crop=32)
    row = memory.split_indices("val")[0]
    raw = torch.from_numpy(memory.images[row]).float()
    one = ImagePreprocess.from_preprocessing(prep)(raw)
    assert one.shape == (4, 16, 16)
    torch.testing.assert_close(one, prep.apply(raw[None])[0], rtol=0, atol=0)
    side = raw.shape[-1]
    top = (side - 32) // 2
    expected = prep.apply(raw[None, :, top : top + 32, top : top + 32])[0]
    torch.testing.assert_close(one, expected, rtol=0, atol=0)
