"""Dagster asset code, one module per pipeline stage; rs_dagster.definitions assembles them."""

import warnings

import dagster as dg

# MultiToSingleDimensionPartitionMapping and friends are beta; the pattern is pinned by tests.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
