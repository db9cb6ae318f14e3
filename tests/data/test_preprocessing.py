"""The typed preprocessing record of checkpoints: reads every darklens version's entry."""

import pytest

from darklens.data.preprocessing import Preprocessing, PreprocessingError

# As written by darklens before multi-input models (session 1) and with them (session 2).
IMAGE_ONLY = {
    "normalization": "minmax",
    "mean": None,
    "std": None,
    "img_size": 64,
    "in_chans": 1,
    "data_image_shape": [64, 64],
}
MULTI_INPUT = {
    "normalization": "channel_minmax",
    "mean": None,
    "std": None,
    "img_size": 45,
    "in_chans": 4,
    "data_image_shape": [45, 45],
    "inputs": ["images", "light_curves"],
    "input_shapes": {"light_curves": [15, 4]},
    "series_normalization": ["series_minmax"],
}


@pytest.mark.parametrize("entry", [IMAGE_ONLY, MULTI_INPUT])
def test_old_entries_read_and_write_back_the_same_json(entry):
    prep = Preprocessing.from_dict(entry)
    assert prep.to_dict() == entry
    assert Preprocessing.from_dict(prep.to_dict()) == prep


def test_fields_and_extras():
    prep = Preprocessing.from_dict(MULTI_INPUT)
    assert prep.extras == ("light_curves",) and prep.input_shapes["light_curves"] == (15, 4)
    assert prep.series_normalization_for("light_curves") == "series_minmax"
    plain = Preprocessing.from_dict(IMAGE_ONLY)
    assert plain.extras == () and plain.data_image_shape == (64, 64)
    dataset = Preprocessing.from_dict({**IMAGE_ONLY, "normalization": "dataset", "mean": [1.5],
                                       "std": [2]})  # fmt: skip
    assert dataset.mean == (1.5,) and dataset.std == (2.0,)
    asinh = Preprocessing.from_dict({**IMAGE_ONLY, "normalization": "asinh", "softening": [0.02]})
    assert asinh.softening == (0.02,) and asinh.to_dict()["softening"] == [0.02]
    assert "softening" not in plain.to_dict()  # older readers see the keys they know
    cropped = Preprocessing.from_dict({**IMAGE_ONLY, "crop": 48, "data_image_shape": [101, 101]})
    assert cropped.crop == 48 and cropped.to_dict()["crop"] == 48 and plain.crop is None
    assert "crop" not in plain.to_dict()
    assert cropped.accepts_shape((101, 101)) and cropped.accepts_shape((48, 48))
    assert not cropped.accepts_shape((64, 64)) and plain.accepts_shape((64, 64))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"normalization": "log"}, "normalization"),
        ({"img_size": None}, "img_size"),
        ({"normalization": "dataset"}, "mean and std"),
        ({"normalization": "asinh"}, "softening"),
        ({"normalization": "asinh", "softening": [0.1, 0.2]}, "softening per channel"),
        ({"normalization": "asinh", "softening": [0.0]}, "positive softening"),
        ({"inputs": ["light_curves"]}, "start with 'images'"),
        ({"inputs": ["images", "light_curves"]}, "input_shapes"),
        ({"band_order": ["r"]}, "unknown to this darklens"),
        ({"img_size": "big"}, "malformed"),
        ({"crop": 0}, "crop must be >= 1"),
    ],
)
def test_bad_entries_are_refused_with_the_entry_named(change, message):
    with pytest.raises(PreprocessingError, match=message):
        Preprocessing.from_dict({**IMAGE_ONLY, **change})
