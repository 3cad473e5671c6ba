"""Partitions: tasks come from assets/tasks/*.yaml, models from models.yaml; model × task is the
two-dimensional partitioning of everything downstream of prompts (Dagster's limit is two)."""

import dagster as dg


def task_partitions(task_names: list[str]) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(sorted(task_names))


def model_partitions(model_names: list[str]) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(sorted(model_names))


def model_task_partitions(model_names: list[str], task_names: list[str]) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition({"model": model_partitions(model_names), "task": task_partitions(task_names)})


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

# The root of a model × task evaluation: re-runs what was evaluated when its task or model changes, and
# never starts one nobody asked for (a newly registered model, a partition never evaluated).
ONLY_WHAT_WAS_EVALUATED = ON_UPSTREAM_VERSION_CHANGE & ~dg.AutomationCondition.missing()

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
