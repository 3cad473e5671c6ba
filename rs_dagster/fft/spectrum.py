"""Token-FFT: the magnitude spectrum of a prompt's token-id sequence (DESIGN §8).

Definition, per item:
  1. x = the token ids of the exact prompt the model receives (see `rs_dagster.fft.tokenizers`), as floats.
  2. X = rfft(x); the magnitude |X_k| / n (n = len(x)) sits at normalized frequency k / n cycles/token,
     k = 0 .. n // 2. Dividing by n makes bin 0 (DC) the mean token id and keeps prompts of different
     lengths comparable.
  3. The magnitudes are resampled onto FREQUENCY_GRID (129 points, 0 .. 0.5 cycles/token, step 1/256),
     so spectra of different lengths can be averaged point by point. Grid point 0 is DC (bin 0) as is;
     every other grid point linearly interpolates the AC bins 1 .. n//2 and holds the nearest one outside
     them (below 1/n; above (n//2)/n for odd n). DC is kept out of the interpolation because the mean
     id dwarfs the AC magnitudes: interpolating from it would leak the mean id into the low band of
     every short prompt (a constant sequence would not have zero AC). A one-token sequence has AC 0.
     The step 1/256 is finer than the bin spacing 1/n of prompts up to 256 tokens, so their spectra are
     interpolated, never decimated; a longer prompt's spectrum is only sampled at the grid points, and
     a narrow peak of it between two grid points can be missed.

Band energies of one spectrum s on the grid: the mean of s**2 over the grid points of each band:
  dc = s[0]**2 (the squared mean token id), low = f in (0, 0.1], mid = f in (0.1, 0.3], high = f in (0.3, 0.5].
Per grid point of a task (a group of items): mean and population std (ddof=0, defined for one item) of
the items' grid spectra, and each band energy averaged over the items' own energies (the mean per-item
energy, which unlike the energy of the mean spectrum keeps item-to-item variation).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

GRID_POINTS = 129
FREQUENCY_GRID: np.ndarray = np.linspace(0.0, 0.5, GRID_POINTS)
FREQUENCY_GRID.flags.writeable = False

BANDS: dict[str, tuple[float, float]] = {"low": (0.0, 0.1), "mid": (0.1, 0.3), "high": (0.3, 0.5)}
"""Half-open bands (lo, hi] of normalized frequency; DC (f = 0) is its own band."""

_BAND_MASKS = {name: (lo < FREQUENCY_GRID) & (hi + 1e-12 >= FREQUENCY_GRID) for name, (lo, hi) in BANDS.items()}


@dataclass(frozen=True)
class PointSpectrum:
    """Token-FFT summary of one grid point's items; magnitudes are on FREQUENCY_GRID."""

    n_items: int
    mean_tokens: float
    mean_magnitude: list[float]
    std_magnitude: list[float]
    dc: float
    low: float
    mid: float
    high: float


@lru_cache(maxsize=4096)
def _resampling_matrix(n: int) -> np.ndarray:
    """Weights W ((n//2+1) × grid): magnitudes @ W puts DC at f=0 and interpolates bins 1..n//2 elsewhere."""
    last = n // 2
    matrix = np.zeros((last + 1, GRID_POINTS))
    matrix[0, 0] = 1.0
    if last > 0:  # one token has no frequency but DC
        ac = np.arange(1, GRID_POINTS)
        position = np.clip(FREQUENCY_GRID[ac] * n, 1, last)  # in bins; held at the first and last AC bins
        left = np.minimum(np.floor(position).astype(int), max(last - 1, 1))
        weight_right = position - left
        np.add.at(matrix, (left, ac), 1.0 - weight_right)
        if last > 1:
            np.add.at(matrix, (left + 1, ac), weight_right)
    matrix.flags.writeable = False
    return matrix


def _spectra(token_sequences: Sequence[Sequence[int]]) -> np.ndarray:
    """Grid spectra (items × grid), one rfft per distinct length over all sequences of that length."""
    by_length: dict[int, list[int]] = defaultdict(list)
    for index, ids in enumerate(token_sequences):
        if len(ids) == 0:
            raise ValueError(f"token sequence {index} is empty; a rendered prompt always has tokens")
        by_length[len(ids)].append(index)
    out = np.empty((len(token_sequences), GRID_POINTS))
    for n, indices in by_length.items():
        x = np.asarray([token_sequences[i] for i in indices], dtype=np.float64)
        out[indices] = (np.abs(np.fft.rfft(x, axis=1)) / n) @ _resampling_matrix(n)
    return out


def magnitude_spectrum(ids: Sequence[int]) -> np.ndarray:
    """|rfft(ids)| / len(ids) resampled onto FREQUENCY_GRID."""
    return _spectra([ids])[0]


def _band_energy_matrix(spectra: np.ndarray) -> dict[str, np.ndarray]:
    squared = spectra**2
    energies = {"dc": squared[:, 0]}
    energies.update({name: squared[:, mask].mean(axis=1) for name, mask in _BAND_MASKS.items()})
    return energies


def band_energies(spectrum: np.ndarray) -> dict[str, float]:
    """Mean squared magnitude per band (dc, low, mid, high) of one grid spectrum."""
    spectrum = np.asarray(spectrum, dtype=np.float64)
    if spectrum.shape != FREQUENCY_GRID.shape:
        raise ValueError(f"spectrum has shape {spectrum.shape}; expected {FREQUENCY_GRID.shape} (FREQUENCY_GRID)")
    return {name: float(values[0]) for name, values in _band_energy_matrix(spectrum[None, :]).items()}


def summarize_point(token_sequences: Sequence[Sequence[int]]) -> PointSpectrum:
    """Mean/std grid spectrum and mean band energies of one grid point's prompts."""
    if not token_sequences:
        raise ValueError("a grid point needs at least one token sequence")
    spectra = _spectra(token_sequences)
    energies = _band_energy_matrix(spectra)
    return PointSpectrum(
        n_items=len(token_sequences),
        mean_tokens=float(np.mean([len(ids) for ids in token_sequences])),
        mean_magnitude=spectra.mean(axis=0).tolist(),
        std_magnitude=spectra.std(axis=0).tolist(),
        **{name: float(values.mean()) for name, values in energies.items()},
    )


def varying_axis(frame) -> str | None:
    """The first parameter that takes several values among the frame's points (for the chart)."""
    params = [json.loads(p) for p in frame["params_json"]]
    for axis in params[0]:
        if len({json.dumps(p.get(axis)) for p in params}) > 1:
            return axis
    return None
