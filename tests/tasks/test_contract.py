"""The contract every registered task keeps: deterministic, prefix-stable, unique within a point,
with an honest guess chance and the answer instruction in the prompt."""


import pytest

from rs_dagster.prompting.templates import Template
from rs_dagster.settings import PACKAGE_ROOT
from rs_dagster.tasks import TASKS
from rs_dagster.tasks.generation import generate_point
from rs_dagster.tasks.manifold import load_manifolds

SPECS = load_manifolds(PACKAGE_ROOT / "assets" / "tasks")


def test_every_generator_has_a_manifold():
    assert {spec.task.name for spec in SPECS.values()} == set(TASKS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_prefix_stable_deterministic_unique(name):
    spec = SPECS[name]
    for point in spec.points()[:6]:
        first = list(generate_point(spec.task, name, point.params, spec.doc.global_seed, 64))
        again = list(generate_point(spec.task, name, point.params, spec.doc.global_seed, 16))
        assert [g.item for g in again] == [g.item for g in first[:16]]
        assert len({g.item.question for g in first}) == 64
        assert len({g.test_case_id for g in first}) == 64
        assert all(0.0 <= g.item.guess_chance < 1.0 for g in first)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_neighbouring_points_do_not_share_seeds(name):
    spec = SPECS[name]
    seeds = [g.seed for p in spec.points()[:8] for g in generate_point(spec.task, name, p.params, spec.doc.global_seed, 32)]
    assert len(seeds) == len(set(seeds))


def test_few_shot_examples_come_from_a_disjoint_seed_space():
    spec = SPECS["arithmetic"]
    point = spec.points()[0]
    items = list(generate_point(spec.task, "arithmetic", point.params, spec.doc.global_seed, 128))
    template = Template(few_shot=3, system="sys")
    messages = template.render(spec.task, items[0].item, "arithmetic", point.params, spec.doc.global_seed)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user", "assistant", "user"]
    examples = {m["content"] for m in messages[1:-1:2]}
    assert not examples & {f"{g.item.question}\n\n{spec.task.answer_instruction}" for g in items}
    assert spec.task.answer_instruction in messages[-1]["content"]
