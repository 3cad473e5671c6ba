"""The token-FFT of the prompts a model receives: its tokenizer, from its models.yaml entry, and the
spectrum of the tokenized prompts per grid point (rs_dagster.fft.spectrum)."""

from __future__ import annotations

import json

import polars as pl

from rs_dagster.errors import InputError
from rs_dagster.fft.spectrum import summarize_point
from rs_dagster.fft.tokenizers import PromptTokenizer, TokenizerSpec, load_tokenizer
from rs_dagster.inputs import validate
from rs_dagster.models.registry import Model


def model_tokenizer_spec(model: Model) -> TokenizerSpec:
    """The model's validated `tokenizer` entry; a clear error when it has none or it is malformed."""
    if model.entry.tokenizer is None:
        raise InputError(f"model {model.name!r} has no `tokenizer` entry in models.yaml; token-FFT needs one (source: endpoint|local|gguf|tiktoken)")
    return validate(TokenizerSpec, model.entry.tokenizer, f"models.{model.name}.tokenizer")


def model_tokenizer(model: Model) -> PromptTokenizer:
    """The tokenizer the model's `tokenizer` entry names, loaded (from its endpoint, a local file, ...)."""
    where = f"models.{model.name}.tokenizer"
    return load_tokenizer(model_tokenizer_spec(model), base_url=model.entry.base_url, served_model=model.entry.served_model, api_key=model.api_key(), where=where)


def spectra_frame(model: Model, prompts: pl.DataFrame, cases: pl.DataFrame) -> pl.DataFrame:
    """One fft_spectra row per grid point of `prompts` (a prompts frame), with the point's memberships from `cases`."""
    tokenizer = model_tokenizer(model)
    ids = tokenizer.encode_chats([json.loads(m) for m in prompts["messages_json"]])
    with_ids = prompts.select("point_id").with_columns(pl.Series("ids", ids, dtype=pl.List(pl.Int64)))
    memberships = cases.select("point_id", "params_json", "tiers", "surfaces", "projections").unique("point_id")
    rows = []
    for (point_id,), group in with_ids.group_by("point_id", maintain_order=True):
        spectrum = summarize_point(group["ids"].to_list())
        rows.append({"point_id": point_id, "tokenizer": tokenizer.name, **vars(spectrum)})
    return (
        pl.DataFrame(rows)
        .join(memberships, on="point_id", how="left")
        .with_columns(pl.lit(model.name).alias("model"), pl.lit(prompts["task"][0]).alias("task"))
        .sort("point_id")
    )
