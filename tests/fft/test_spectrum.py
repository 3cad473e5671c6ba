"""The token-FFT definition on synthetic id sequences whose spectrum is known."""

from __future__ import annotations

import numpy as np
import pytest

from rs_dagster.fft.spectrum import FREQUENCY_GRID, band_energies, magnitude_spectrum, summarize_point


def cosine(length: int, period: float, mean: float = 1000.0, amplitude: float = 100.0) -> list[float]:
    return (mean + amplitude * np.cos(2 * np.pi * np.arange(length) / period)).tolist()


def grid_index(frequency: float) -> int:
    return int(np.argmin(np.abs(FREQUENCY_GRID - frequency)))


def test_grid_spans_zero_to_nyquist():
    assert FREQUENCY_GRID[0] == 0.0 and FREQUENCY_GRID[-1] == 0.5 and len(FREQUENCY_GRID) == 129
    assert np.all(np.diff(FREQUENCY_GRID) > 0)


@pytest.mark.parametrize("period", [2, 3.2, 4, 8, 16])
def test_periodic_sequence_peaks_at_its_frequency(period):
    spectrum = magnitude_spectrum(cosine(640, period))
    assert int(np.argmax(spectrum[1:])) + 1 == grid_index(1 / period)
    # a cosine of amplitude A puts A/2 in its bin after dividing by n (A at Nyquist, where the bin is unpaired)
    expected = 100.0 if period == 2 else 50.0
    assert spectrum[grid_index(1 / period)] == pytest.approx(expected, rel=0.02)


def test_constant_has_only_dc():
    spectrum = magnitude_spectrum([4242] * 97)
    assert spectrum[0] == pytest.approx(4242)
    assert np.allclose(spectrum[1:], 0.0, atol=1e-9)


def test_dc_is_the_mean_token_id():
    ids = np.random.default_rng(7).integers(0, 150_000, size=333).tolist()
    assert magnitude_spectrum(ids)[0] == pytest.approx(np.mean(ids))


def test_ac_grid_interpolates_the_ac_bins_and_dc_stays_apart():
    rng = np.random.default_rng(3)
    for length in (2, 3, 10, 63, 64, 300, 1001):
        ids = rng.integers(0, 50_000, size=length)
        magnitudes = np.abs(np.fft.rfft(ids.astype(float))) / length
        bins = np.arange(len(magnitudes)) / length
        expected_ac = np.interp(FREQUENCY_GRID[1:], bins[1:], magnitudes[1:])
        spectrum = magnitude_spectrum(ids.tolist())
        assert spectrum[0] == pytest.approx(magnitudes[0]), length
        assert np.allclose(spectrum[1:], expected_ac), length


def test_one_token_has_only_dc():
    assert np.array_equal(magnitude_spectrum([7]), np.r_[7.0, np.zeros(len(FREQUENCY_GRID) - 1)])


def test_resampling_makes_spectra_length_independent():
    pattern = [151644, 872, 198, 17, 220, 10, 220, 24]  # a token-like period of 8: harmonics on the grid
    short, *long = [magnitude_spectrum(pattern * (length // 8)) for length in (64, 256, 400, 512, 1000)]
    for spectrum in long[1:]:  # from 256 tokens on, every grid point is sampled exactly
        assert np.allclose(spectrum, long[0], rtol=1e-9, atol=1e-6)
    harmonics = [grid_index(k / 8) for k in range(5)]  # shorter prompts agree at their bins
    assert np.allclose(short[harmonics], long[0][harmonics])


def test_band_energies_follow_the_signal():
    slow, middle, fast = (band_energies(magnitude_spectrum(cosine(640, p))) for p in (16, 4, 2))
    assert max(slow, key=lambda band: slow[band] if band != "dc" else -1) == "low"
    assert max(middle, key=lambda band: middle[band] if band != "dc" else -1) == "mid"
    assert max(fast, key=lambda band: fast[band] if band != "dc" else -1) == "high"
    assert slow["dc"] == pytest.approx(1000.0**2)
    assert fast["low"] == pytest.approx(0.0, abs=1e-12) and fast["mid"] == pytest.approx(0.0, abs=1e-12)


def test_band_energy_is_the_mean_squared_magnitude_of_the_band():
    spectrum = np.linspace(1.0, 2.0, len(FREQUENCY_GRID))
    energies = band_energies(spectrum)
    high = (FREQUENCY_GRID > 0.3) & (FREQUENCY_GRID <= 0.5)
    assert energies["high"] == pytest.approx(np.mean(spectrum[high] ** 2))
    assert energies["dc"] == 1.0
    with pytest.raises(ValueError, match="FREQUENCY_GRID"):
        band_energies(np.ones(10))


def test_summarize_point_averages_items():
    sequences = [cosine(64, 4, mean=500.0), cosine(96, 4, mean=700.0), [3] * 50]
    point = summarize_point(sequences)
    spectra = np.array([magnitude_spectrum(s) for s in sequences])
    assert point.n_items == 3 and point.mean_tokens == pytest.approx((64 + 96 + 50) / 3)
    assert np.allclose(point.mean_magnitude, spectra.mean(axis=0))
    assert np.allclose(point.std_magnitude, spectra.std(axis=0))
    per_item = [band_energies(s) for s in spectra]
    for band in ("dc", "low", "mid", "high"):
        assert getattr(point, band) == pytest.approx(np.mean([e[band] for e in per_item]))


def test_single_item_point_has_zero_std():
    point = summarize_point([[5, 9, 5, 9]])
    assert point.n_items == 1 and np.allclose(point.std_magnitude, 0.0)


def test_empty_inputs_are_refused():
    with pytest.raises(ValueError, match="at least one"):
        summarize_point([])
    with pytest.raises(ValueError, match="sequence 1 is empty"):
        summarize_point([[1, 2], []])
