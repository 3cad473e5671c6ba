"""Token-FFT: what the model actually sees, as the spectrum of its prompt token ids (DESIGN §8).

spectrum: the definition and per-grid-point summaries; tokenizers: exact prompt token ids per model;
charts: Altair views of stored spectra.
"""
