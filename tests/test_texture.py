"""The texture start's random phase noise against numpy float64 references."""

import numpy as np
import pytest

from tfstyle.core import texture


def _periodic_reference(image):
    """Moisan's periodic component in numpy float64, written from the paper's formula."""
    u = image.astype(np.float64)
    height, width, _ = u.shape
    jumps = np.zeros_like(u)
    jumps[0] += u[-1] - u[0]
    jumps[-1] += u[0] - u[-1]
    jumps[:, 0] += u[:, -1] - u[:, 0]
    jumps[:, -1] += u[:, 0] - u[:, -1]
    q, r = np.mgrid[0:height, 0:width]
    laplacian = 2 * np.cos(2 * np.pi * q / height) + 2 * np.cos(2 * np.pi * r / width) - 4
    laplacian[0, 0] = 1.0
    smooth = np.empty_like(u)
    for c in range(u.shape[-1]):
        spectrum = np.fft.fft2(jumps[..., c]) / laplacian
        spectrum[0, 0] = 0.0
        smooth[..., c] = np.real(np.fft.ifft2(spectrum))
    return u - smooth


def _mid_range_image(seed, height=37, width=52):
    """Smooth random colours in [60, 195]: random phase keeps them inside [0, 255], so
    no clipping hides a wrong spectrum."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(height, width, 3))
    kernel = np.ones(5) / 5
    for axis in (0, 1):
        noise = np.apply_along_axis(lambda v: np.convolve(v, kernel, "same"), axis, noise)
    noise = (noise - noise.mean()) / noise.std()
    return (127.5 + 20 * noise).clip(60, 195).astype(np.float32)


@pytest.mark.parametrize("shape", [(37, 52), (16, 16), (1, 9)])
def test_periodic_component_matches_numpy_float64(shape):
    image = _mid_range_image(0, *shape)
    got = texture.periodic_component(image).numpy()
    np.testing.assert_allclose(got, _periodic_reference(image), atol=2e-3)


def test_periodic_component_of_a_ramp_has_no_jump_across_its_borders():
    # A horizontal ramp of step a jumps by 39a from its right border back to its left.
    # Its periodic component (whose periodic Laplacian is the ramp's own, a at the left
    # border and −a at the right) is a gentler ramp of step a/40: it climbs a − a/40
    # from its left border to its right, and falls back by that, about one step of the
    # image itself, across the wrap. The mean stays.
    step = 255.0 / 39
    image = np.repeat(np.linspace(0, 255, 40, dtype=np.float32)[None, :, None], 30, 0)
    image = np.repeat(image, 3, -1)
    periodic = texture.periodic_component(image).numpy()
    np.testing.assert_allclose(np.diff(periodic, axis=1), step / 40, atol=1e-3)
    np.testing.assert_allclose(periodic[:, -1] - periodic[:, 0], step - step / 40, atol=1e-3)
    assert abs(periodic.mean() - image.mean()) < 1e-2


def _cycles_across(height, width):
    """Each DFT frequency's number of cycles across the longest side, numpy float64."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    return np.hypot(fy, fx) * max(height, width)


@pytest.mark.parametrize("cycles", [0.0, texture.LAYOUT_CYCLES])
def test_random_phase_keeps_the_mean_and_the_amplitude_spectrum(cycles):
    # cycles 0: the whole amplitude; else weighed by 1 − exp(−(n / cycles)²).
    image = _mid_range_image(1)
    result = texture.random_phase(image, 5, cycles).numpy().astype(np.float64)
    assert result.min() > 0 and result.max() < 255  # nothing clipped
    np.testing.assert_allclose(result.mean((0, 1)), image.mean((0, 1)), atol=1e-2)
    periodic = _periodic_reference(image)
    weight = 1.0
    if cycles:
        weight = 1.0 - np.exp(-(_cycles_across(*image.shape[:2]) / cycles) ** 2)
    for c in range(3):
        want = weight * np.abs(np.fft.fft2(periodic[..., c] - periodic[..., c].mean()))
        got = np.abs(np.fft.fft2(result[..., c] - result[..., c].mean()))
        np.testing.assert_allclose(got, want, atol=1e-2 * want.max())
    if not cycles:
        # One phase for all channels: the colour correlations of the painting stay.
        np.testing.assert_allclose(np.corrcoef(result.reshape(-1, 3).T),
                                   np.corrcoef(periodic.reshape(-1, 3).T), atol=0.02)


def test_random_phase_is_stateless_in_the_seed_and_scrambles_the_layout():
    image = _mid_range_image(2)
    a = texture.random_phase(image, 3, cycles=0.0).numpy()
    np.testing.assert_array_equal(a, texture.random_phase(image, 3, cycles=0.0).numpy())
    b = texture.random_phase(image, 4, cycles=0.0).numpy()
    assert np.abs(a - b).mean() > 5
    # The layout is gone: the result no more resembles the image than another draw.
    corr = np.corrcoef(a[..., 0].ravel(), image[..., 0].ravel())[0, 1]
    assert abs(corr) < 0.3
