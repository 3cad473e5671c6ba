"""Partitions: tasks (assets/tasks/*.yaml) and models (models.yaml, .rs/models.local.yaml) are dynamic
partitions the instance learns while a deployment runs (the edited_inputs sensor, the nightly schedule
and every `rs` command add the names they find), so a model or task added to the inputs needs no reload
of the code location, and a file that does not read breaks nothing else. A partition is never removed
by any of them. model × task is the two-dimensional partitioning of everything
downstream of prompts (Dagster's limit is two)."""

from collections.abc import Iterable

import dagster as dg

TASKS = dg.DynamicPartitionsDefinition(name="tasks")
MODELS = dg.DynamicPartitionsDefinition(name="models")
MODEL_TASK = dg.MultiPartitionsDefinition({"model": MODELS, "task": TASKS})


def unknown_partitions(
    instance: dg.DagsterInstance, models: Iterable[str], tasks: Iterable[str]
) -> list[tuple[dg.DynamicPartitionsDefinition, list[str]]]:
    """(partitions definition, the names it does not hold yet) for models and tasks."""
    unknown = []
    for definition, names in ((MODELS, models), (TASKS, tasks)):
        assert definition.name is not None
        if new := sorted(set(names) - set(instance.get_dynamic_partitions(definition.name))):
            unknown.append((definition, new))
    return unknown


def register_partitions(instance: dg.DagsterInstance, models: Iterable[str] = (), tasks: Iterable[str] = ()) -> None:
    """Add the model and task names the instance does not know yet as partitions (never removes one)."""
    for definition, new in unknown_partitions(instance, models, tasks):
        assert definition.name is not None
        instance.add_dynamic_partitions(definition.name, new)


def model_task_key(model: str, task: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"model": model, "task": task})


def keys_of(context: dg.AssetExecutionContext) -> dict[str, str]:
    """The partition of a model × task asset as column values."""
    key = context.partition_key
    assert isinstance(key, dg.MultiPartitionKey), f"expected a model|task partition, got {key!r}"
    return {"model": key.keys_by_dimension["model"], "task": key.keys_by_dimension["task"]}


# Downstream assets re-run when an upstream partition's *data version* changes (a task manifold or a
# model entry was edited), not merely when it was re-materialized with the same content.
ON_UPSTREAM_VERSION_CHANGE = dg.AutomationCondition.eager().replace(
    "newly_updated_without_root",
    dg.AutomationCondition.data_version_changed() & ~dg.AutomationCondition.executed_with_root_target(),
)

# A model × task with a stored answer: its completions were materialized at least once (a run whose every
# request failed materializes nothing), so a run that failed leaves nothing that makes automation want it.
EVALUATED = ~dg.AutomationCondition.asset_matches("completions", dg.AutomationCondition.missing()).with_label("evaluated")

# Roots re-run only where they were computed before (fft_spectra, which needs no answers); the root of a
# model × task evaluation (prompts): re-runs what was evaluated when its task or model
# changes, and never starts one nobody asked for (a newly registered model, a partition never evaluated,
# one whose every run failed).
ONLY_WHAT_WAS_COMPUTED = ON_UPSTREAM_VERSION_CHANGE & ~dg.AutomationCondition.missing()
ONLY_WHAT_WAS_EVALUATED = ONLY_WHAT_WAS_COMPUTED & EVALUATED

# The steps after the root: only when what they read has a new data version (a run that re-wrote the same
# prompts, e.g. a nightly run that then failed, asks for nothing), and never where nothing was evaluated.
AFTER_NEW_VERSION_UPSTREAM = ON_UPSTREAM_VERSION_CHANGE & EVALUATED

# Tables over every partition (SQL models, the report): refresh after any partition upstream updates,
# even while other partitions (a registered model never evaluated) are missing.
AFTER_ANY_PARTITION_UPDATES = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after any upstream partition updates")

TASK_OF_MODEL_TASK = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="task")
MODEL_OF_MODEL_TASK = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="model")


def item_inputs() -> list[dg.AssetDep]:
    """What a model × task asset built from the items and the model entry depends on: the task's
    test_cases and the model's model_specs partition."""
    return [
        dg.AssetDep("test_cases", partition_mapping=TASK_OF_MODEL_TASK),
        dg.AssetDep("model_specs", partition_mapping=MODEL_OF_MODEL_TASK),
    ]
