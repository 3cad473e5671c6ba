"""rs-dagster: an evaluation lab for reasoning language models, built on Dagster and DuckDB."""
