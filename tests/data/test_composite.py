"""Colour composites of multi-band cutouts (Lupton et al. 2004 arcsinh stretch)."""

import numpy as np
import pytest

from darklens.data.composite import colour_composite


def test_colour_composite_puts_the_reddest_band_in_red():
    image = np.zeros((4, 8, 8))
    image[3, 4, 4] = 10.0  # only the i band has light
    rgb = colour_composite(image, zero_points=[23.8, 25.7, 25.6, 25.1])
    assert rgb.shape == (8, 8, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert rgb[4, 4, 0] > 0 and rgb[4, 4, 1] == rgb[4, 4, 2] == 0
    # equal AB flux in every band (counts scaled by each zero point) looks grey
    zp = np.array([23.0, 24.0, 25.0])
    grey = colour_composite(np.ones((3, 4, 4)) * 10 ** (0.4 * (zp - 25.0))[:, None, None], zp)
    np.testing.assert_allclose(grey[..., 0], grey[..., 2])
    with pytest.raises(ValueError, match="zero point"):
        colour_composite(image, zero_points=[25.0])
