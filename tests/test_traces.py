"""Inside the reasoning traces: gzip compression with loops flagged, and survival over output tokens.
Unit tests against hand-computed values, then the whole path over real HTTP with planted trace lengths."""

import math
import random

import numpy as np
import polars as pl
import pytest
from helpers import Oracle, make_lab, scripted_model

from rs_dagster.defs.resources import EvalScope
from rs_dagster.explore.views import traces_section
from rs_dagster.orchestrate import evaluate
from rs_dagster.stats.compression import (
    LOOP_MIN_BYTES,
    SAMPLE_COLUMNS,
    compression_ratio,
    gzip_sizes,
    point_compression,
    sample_compression,
)
from rs_dagster.stats.hazard import ALL_TIERS, MAX_BUCKETS, MIN_BUCKETS, Curves, bucket_rows, bucket_width, survival_frames
from rs_dagster.storage import schemas
from rs_dagster.storage.warehouse import Warehouse, validate
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

# --- compression ---------------------------------------------------------------------------------


def test_gzip_ratio_of_known_strings():
    # gzip = 10-byte header + deflate stream + 8-byte trailer (CRC-32, length).
    # "abc": one fixed-Huffman block: 3 header bits + 3 literals × 8 bits + end of block 7 bits = 34 bits -> 5 bytes.
    assert gzip_sizes("abc") == (3, 23)
    assert compression_ratio("abc") == 23 / 3
    # 1000 × "a": 3 header bits, 2 literals (16), three matches of 258 at distance 1 (length code 285, 8 bits,
    # + distance code 0, 5 bits: 3 × 13), one of 224 (code 283, 8 bits + 5 extra + 5 distance = 18), end 7:
    # 83 bits -> 11 bytes, 29 in all.
    assert compression_ratio("a" * 1000) == 29 / 1000
    # Bytes, not characters: "é" is 2 bytes in UTF-8; 3 + 16 + 7 = 26 bits -> 4 bytes of deflate.
    assert gzip_sizes("é") == (2, 22) and compression_ratio("é") == 11.0
    assert compression_ratio("") is None and compression_ratio(None) is None and gzip_sizes(None) == (0, None)


NORMAL_TRACE = """Okay, so I need to evaluate (3 + 4 * (2 - 7)) * 6 - 9. Multiplication binds tighter than addition, \
and the parentheses come first. Innermost: 2 - 7 = -5. Then 4 * (-5) = -20. Inside the outer bracket I have 3 + (-20), \
which is -17. Now multiply by 6: -17 * 6. Let me do 17 * 6 = 102, so that is -102. Finally subtract 9: -102 - 9 = -111. \
Let me double-check each step. The inner subtraction: two minus seven is negative five, yes. Four times negative five is \
negative twenty. Three plus negative twenty gives negative seventeen. Seventeen times six: ten times six is sixty, seven \
times six is forty-two, sixty plus forty-two is one hundred and two; with the sign, negative one hundred and two. Minus \
nine makes negative one hundred and eleven. Is there any chance I misread the precedence? The expression has the product \
4 * (2 - 7) inside the bracket, and no operator binds the 3 to the 4 first, so addition happens after the product. \
Outside, * 6 applies to the whole bracket, and - 9 comes last. Alternatively, distribute: 6 * 3 = 18, 6 * (-20) = -120, \
18 - 120 = -102, and -102 - 9 = -111. Both routes agree, so the answer is -111."""

LOOP_TRACE = NORMAL_TRACE[:300] + " Wait, maybe I made a mistake. Let me re-check: 4 * (2 - 7) = -20." * 60


def _sample(point: str, index: int, outcome: str, reasoning: str | None, finish: str = "stop") -> dict:
    return {
        "model": "m", "task": "t", "point_id": point, "test_case_id": f"{point}-{index}", "sample_index": 0,
        "request_hash": f"r{point}{index}", "outcome": outcome, "finish_reason": finish, "completion_tokens": 100,
        "reasoning_tokens": 90, "reasoning_text": reasoning, "answer_text": "ANSWER: -111",
    }


def test_a_repeated_trace_is_flagged_and_a_normal_one_is_not():
    normal, loop = compression_ratio(NORMAL_TRACE), compression_ratio(LOOP_TRACE)
    assert len(NORMAL_TRACE.encode()) >= LOOP_MIN_BYTES and 0.4 < normal < 0.7
    assert loop < 0.1
    # Four finished traces (the yardstick: their median) and the loop, which ran into max_tokens.
    rows = [_sample("p", i, "correct", NORMAL_TRACE[i * 10:]) for i in range(4)]
    rows += [_sample("p", 4, "truncated", LOOP_TRACE, "length"), _sample("p", 5, "incorrect", "Wait. " * 100)]
    rows += [_sample("p", 6, "unparsed", None), _sample("p", 7, "error", None)]
    frame = sample_compression(pl.DataFrame(rows))
    validate("compression", schemas.Compression, frame)
    assert frame.height == 7  # the error produced no text
    reference = float(np.median([compression_ratio(NORMAL_TRACE[i * 10:]) for i in range(4)]))
    assert frame["reference_ratio"].to_list() == pytest.approx([reference] * 7)
    flagged = dict(zip(frame["test_case_id"], frame["loop"]))
    assert flagged == {"p-0": False, "p-1": False, "p-2": False, "p-3": False, "p-4": True, "p-5": False, "p-6": False}
    # "Wait. " × 100 is 600 bytes: too short to judge, however well it compresses.
    assert frame.filter(pl.col("test_case_id") == "p-5")["reasoning_ratio"][0] < 0.1
    # No trace: no ratio; the answer still has one.
    none = frame.filter(pl.col("test_case_id") == "p-6").row(0, named=True)
    assert none["reasoning_bytes"] == 0 and none["reasoning_ratio"] is None and none["answer_ratio"] == compression_ratio("ANSWER: -111")


def test_a_point_where_every_trace_loops_is_caught_by_the_floor():
    rows = [_sample("q", i, "truncated", LOOP_TRACE[i:], "length") for i in range(3)]
    frame = sample_compression(pl.DataFrame(rows))
    # No finished trace: the reference is the median of all (loops), so only the floor (0.1) flags them.
    assert frame["reference_ratio"][0] == pytest.approx(float(np.median(frame["reasoning_ratio"].to_numpy())))
    assert frame["loop"].all()


def test_point_quantiles_by_outcome():
    ratios = [0.1, 0.2, 0.3, 0.4, 0.5]
    rows = [
        {**dict.fromkeys(SAMPLE_COLUMNS), "model": "m", "task": "t", "point_id": "p", "test_case_id": str(i), "sample_index": 0,
         "request_hash": str(i), "outcome": "correct" if i < 3 else "truncated", "completion_tokens": 100 * (i + 1),
         "reasoning_bytes": 2000, "reasoning_gzip_bytes": int(r * 2000), "reasoning_ratio": r, "answer_bytes": 0,
         "loop": i == 0}
        for i, r in enumerate(ratios)
    ]
    points = point_compression(pl.DataFrame(rows, schema=SAMPLE_COLUMNS))
    validate("compression_points", schemas.CompressionPoints, points)
    assert points["outcome"].to_list() == ["all", "correct", "truncated"]
    everything = points.row(0, named=True)
    # Linear interpolation between order statistics: p10 sits at rank 0.4 of 0..4, p90 at rank 3.6.
    assert (everything["ratio_p10"], everything["ratio_p50"], everything["ratio_p90"]) == pytest.approx((0.14, 0.3, 0.46))
    assert everything["samples"] == everything["traces"] == 5 and everything["loops"] == 1 and everything["loop_share"] == 0.2
    assert everything["mean_completion_tokens"] == 300.0
    truncated = points.row(2, named=True)
    assert (truncated["ratio_p10"], truncated["ratio_p50"], truncated["ratio_p90"]) == pytest.approx((0.41, 0.45, 0.49))
    assert truncated["loops"] == 0


# --- survival over tokens --------------------------------------------------------------------------

# Six samples by hand: answers at 300 (correct), 500 (incorrect), 800 (correct); truncated at 500 and twice at 1000.
TOKENS = [300, 500, 500, 800, 1000, 1000]
OUTCOMES = ["correct", "incorrect", "truncated", "correct", "truncated", "truncated"]


def test_kaplan_meier_and_bucket_hazards_by_hand():
    curves = Curves(TOKENS, OUTCOMES)
    # S(300) = 5/6; at 500 one of the 5 at risk answers (the truncation at 500 leaves after it): 5/6 × 4/5;
    # at 800 one of 3: × 2/3.
    assert curves.times.tolist() == [0, 300, 500, 800, 1000]
    assert curves.survival.tolist() == pytest.approx([1, 5 / 6, 2 / 3, 4 / 9, 4 / 9])
    assert curves.median == 800  # the first t with S(t) <= 0.5
    # The band: the lower Greenwood bound crosses 0.5 at 300; the upper one never does (not reached).
    assert curves.median_low == 300 and curves.median_high is None
    # Aalen-Johansen: F_correct = 1 × 1/6 (at 300) + S(800-) × 1/3 = 1/6 + 2/3 × 1/3; F_incorrect = S(500-) × 1/5.
    _, correct, *_ = curves.incidence["correct"]
    _, incorrect, *_ = curves.incidence["incorrect"]
    assert correct[-1] == pytest.approx(7 / 18) and incorrect[-1] == pytest.approx(1 / 6)
    assert correct[-1] + incorrect[-1] + curves.survival[-1] == pytest.approx(1.0)
    # The interval of F_correct(300): Collett's variance there is S(0)^2 d (n - d) / n^3 = 5/216, on the log(-log) scale.
    _, F, low, high = curves.incidence["correct"]
    se = math.sqrt(5 / 216) / (F[1] * abs(math.log(F[1])))
    assert (low[1], high[1]) == pytest.approx(((1 / 6) ** math.exp(1.959963984540054 * se), (1 / 6) ** math.exp(-1.959963984540054 * se)))

    buckets = bucket_rows(curves, {"model": "m", "task": "t", "tier": "all"}, width=256)
    table = [(b["bucket_start"], b["at_risk"], b["answered"], b["correct"], b["incorrect"], b["truncated"], b["hazard"]) for b in buckets]
    assert table == [
        (0, 6, 0, 0, 0, 0, 0.0),
        (256, 6, 2, 1, 1, 1, 2 / 6),  # 300 and 500 answer, the truncation at 500 is counted but was at risk
        (512, 3, 0, 0, 0, 0, 0.0),
        (768, 3, 1, 1, 0, 2, 1 / 3),  # 800 answers; 1000 and 1000 are censored
    ]
    assert [b["survival"] for b in buckets] == pytest.approx([1, 2 / 3, 2 / 3, 4 / 9])
    assert buckets[1]["hazard_correct"] == buckets[1]["hazard_incorrect"] == 1 / 6
    assert buckets[-1]["incidence_correct"] == pytest.approx(7 / 18) and buckets[-1]["median_tokens"] == 800


def test_incidence_agrees_with_lifelines_aalen_johansen_on_untied_data():
    from lifelines import AalenJohansenFitter

    rng = np.random.default_rng(7)
    tokens = rng.choice(np.arange(1, 4000), size=200, replace=False)
    outcomes = rng.choice(["correct", "incorrect", "truncated"], size=200, p=[0.5, 0.3, 0.2])
    curves = Curves(tokens.tolist(), outcomes.tolist())
    code = {"truncated": 0, "correct": 1, "incorrect": 2}
    for cause in ("correct", "incorrect"):
        reference = AalenJohansenFitter(seed=0).fit(tokens, [code[o] for o in outcomes], event_of_interest=code[cause])
        _, F, low, high = curves.incidence[cause]
        assert np.allclose(reference.cumulative_density_.iloc[:, 0].to_numpy(), F)
        # lifelines names its columns upper, lower but holds the lower bound first; compare sorted.
        band = np.sort(reference.confidence_interval_.to_numpy(), axis=1)
        known = ~np.isnan(band[:, 0])
        assert np.allclose(band[known, 0], low[known]) and np.allclose(band[known, 1], high[known])


def test_survival_frames_per_tier_and_schema():
    samples = pl.DataFrame(
        {
            "model": "m", "task": "t", "outcome": [*OUTCOMES, "error"], "completion_tokens": [*TOKENS, None],
            "tiers": [["easy"], ["easy"], ["easy", "medium"], ["medium"], ["medium"], [], []],
        }
    )
    hazard, survival = survival_frames(samples)
    validate("hazard", schemas.Hazard, hazard)
    validate("survival", schemas.Survival, survival)
    assert sorted(set(hazard["tier"])) == ["all", "easy", "medium"]
    assert hazard.filter(pl.col("tier") == "all")["samples"][0] == 6  # the error is left out
    assert hazard.filter(pl.col("tier") == "easy")["samples"][0] == 3
    answered = survival.filter((pl.col("tier") == "all") & (pl.col("curve") == "answered"))
    assert answered["estimate"].to_list() == pytest.approx([1, 5 / 6, 2 / 3, 4 / 9, 4 / 9])


def test_bucket_widths_are_round_and_chosen_from_the_data():
    """The demo's max_tokens 160 gets 10-token buckets, not one 256-token block; any length gets 10 to 30 buckets
    of a round width, more of them (never fewer) the more samples there are."""
    assert bucket_width(160, 64) == 10 and bucket_width(1024, 32) == 100 and bucket_width(4096, 2000) == 200
    round_widths = {m * 10**e for e in range(6) for m in (1, 2, 5, 10, 20, 25, 50)}
    for top in (9, 12, 100, 160, 255, 256, 333, 1000, 1024, 2000, 4096, 8192, 32768, 100_000):
        counts = []
        for samples in (1, 16, 100, 400, 900, 5000):
            width = bucket_width(top, samples)
            assert width in round_widths, (top, samples, width)
            counts.append(top // width + 1)
            assert MIN_BUCKETS <= counts[-1] <= MAX_BUCKETS, (top, samples, width)
        assert counts == sorted(counts), (top, counts)
    assert bucket_width(0, 5) == bucket_width(5, 5) == 1  # too few tokens for 10 buckets: one token each


def test_the_demo_hazard_has_several_buckets_and_every_tier_shares_the_pooled_width():
    """max_tokens 160 (the demo's): answers spread over 40-150 tokens and truncations at 160 fall in many buckets."""
    tokens = [40 + (i * 23) % 111 for i in range(48)] + [160] * 16
    outcomes = ["correct" if i % 3 else "incorrect" for i in range(48)] + ["truncated"] * 16
    tiers = [["easy"] if i % 2 else ["hard"] for i in range(64)]
    hazard, _ = survival_frames(pl.DataFrame({"model": "m", "task": "t", "outcome": outcomes, "completion_tokens": tokens, "tiers": tiers}))
    validate("hazard", schemas.Hazard, hazard)
    pooled = hazard.filter(pl.col("tier") == ALL_TIERS)
    assert pooled["bucket_start"].to_list() == list(range(0, 161, 10))
    assert (pooled["answered"] > 0).sum() >= 10 and pooled["truncated"].to_list() == [0] * 16 + [16]
    assert (hazard["bucket_end"] - hazard["bucket_start"]).unique().to_list() == [10]  # the tiers too
    assert survival_frames(pl.DataFrame({"model": "m", "task": "t", "outcome": outcomes, "completion_tokens": tokens}), width=256)[0].height == 1


def test_the_explorer_says_why_a_trace_view_cannot_be_drawn():
    no_traces = pl.DataFrame(
        [{"model": "plain", "task": "t", "point_id": "p", "outcome": "correct", "completion_tokens": 20, "reasoning_bytes": 0,
          "reasoning_ratio": None, "loop": False}],
        schema_overrides={"reasoning_ratio": pl.Float64},
    )
    hazard, survival = survival_frames(pl.DataFrame({"model": "plain", "task": "t", "outcome": ["correct", "incorrect"], "completion_tokens": [20, 40]}))
    notes = _notes(traces_section("t", no_traces, hazard.filter(pl.col("tier") == ALL_TIERS), survival.filter(pl.col("tier") == ALL_TIERS)))
    assert any(n.startswith("No compression view for plain / t: none of its 1 samples has a reasoning trace") for n in notes)
    assert any(n.startswith("Nothing censored for plain / t: no sample was truncated") for n in notes)
    empty = _notes(traces_section("t", pl.DataFrame(), pl.DataFrame(), pl.DataFrame()))
    assert empty == [next(n for n in empty if n.startswith("No trace analyses for t: the compression and hazard tables have no rows"))]


def _notes(blocks) -> list[str]:
    """The no-data sentences of a list of explorer blocks, those inside pick-lists included."""
    found = []
    for block in blocks:
        if block["type"] == "note":
            found.append(block["text"])
        for option in block.get("options", []):
            found.extend(_notes(option["blocks"]))
    return found


# --- end to end over real HTTP ---------------------------------------------------------------------

MAX_TOKENS = 1024  # assets/samplers/greedy.yaml, the sampler of tests.helpers.scripted_model
WORDS = """first then so next carry the digit multiply add subtract check result term bracket inner outer value sum product far
keep left right partial step again now this gives which means""".split()


def _reasoning(seed: str, chars: int) -> str:
    """Reasoning that makes progress: varied words and fresh arithmetic, compressing to about 0.4-0.5."""
    rng = random.Random(seed)
    parts: list[str] = []
    while sum(map(len, parts)) < chars:
        a, b, op = rng.randint(2, 99), rng.randint(2, 99), rng.choice("+-*")
        parts.append(f"{' '.join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))).capitalize()}: {a} {op} {b} = {eval(f'{a}{op}{b}')}. ")
    return "".join(parts)[:chars]


def planted(index: int) -> tuple[str, int]:
    """Per item index of a point: 9 correct answers after 280-320 tokens, 3 wrong after 780-820, and 4 that loop
    until max_tokens."""
    if index % 4 == 3:
        return "truncated", MAX_TOKENS
    if index in (2, 6, 10):
        return "incorrect", 780 + (index * 11) % 41
    return "correct", 280 + (index * 7) % 41


def test_trace_analyses_find_the_planted_loops_and_lengths(tmp_path, instance):
    oracle = Oracle(make_lab(tmp_path / "probe", {}, tasks=("arithmetic",)), items_per_point=16)

    def respond(body):
        assert body["max_tokens"] == MAX_TOKENS
        known = oracle.lookup(body)
        kind, tokens = planted(known.index)
        seed = f"{known.params}/{known.index}"
        if kind == "truncated":
            loop = _reasoning(seed, 400) + "Wait, let me recompute the inner bracket from the start. " * 70
            return Reply(content="", reasoning_content=loop, finish_reason="length", completion_tokens=tokens, reasoning_tokens=tokens)
        answer = known.answer if kind == "correct" else str(int(known.answer) + 7)
        return Reply(content=f"ANSWER: {answer}", reasoning_content=_reasoning(seed, 4 * tokens), completion_tokens=tokens, reasoning_tokens=tokens - 4)

    with ScriptedServer(respond) as server:
        settings = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url)}, tasks=("arithmetic",))
        evaluate(settings, instance, ["scripted"], ["arithmetic"], EvalScope(tiers=["easy"], precision="16"))
    warehouse = Warehouse(settings.db_path)

    # Compression: every looping trace is flagged, and nothing else.
    samples = warehouse.query("SELECT * FROM compression")
    assert samples.height == 32 and samples["outcome"].value_counts().sort("outcome").rows() == [("correct", 18), ("incorrect", 6), ("truncated", 8)]
    assert samples.filter(pl.col("loop"))["outcome"].to_list() == ["truncated"] * 8
    assert samples.filter(pl.col("outcome") != "truncated")["reasoning_ratio"].min() > 0.3
    points = warehouse.query("SELECT * FROM compression_points ORDER BY point_id, outcome")
    assert points["point_id"].n_unique() == 2
    for _point_id, rows in points.group_by("point_id"):
        by = {row["outcome"]: row for row in rows.iter_rows(named=True)}
        assert set(by) == {"all", "correct", "incorrect", "truncated"}
        assert (by["truncated"]["samples"], by["truncated"]["loops"], by["correct"]["loops"], by["incorrect"]["loops"]) == (4, 4, 0, 0)
        assert by["truncated"]["ratio_p90"] < 0.5 * by["correct"]["ratio_p10"]
        assert by["all"]["loop_share"] == 4 / 16

    # Survival: the median tokens to answer is the 16th of the 32 samples to finish, a correct one (S falls to 16/32 there).
    hazard = warehouse.query("SELECT * FROM hazard WHERE tier = 'all' ORDER BY bucket_start")
    first = hazard.row(0, named=True)
    correct_tokens = sorted(planted(i)[1] for i in range(16) if planted(i)[0] == "correct") * 2
    assert first["samples"] == 32 and first["median_tokens"] == sorted(correct_tokens)[15]
    assert first["median_ci_low"] <= 300 <= first["median_ci_high"] and first["median_ci_low"] >= 280
    assert first["median_ci_high"] <= 820  # the band's upper edge reaches 0.5 by the last wrong answer
    # 32 samples up to 1024 tokens: 100-token buckets (11 of them). Per point, 6 correct answers at 280-296 tokens,
    # 3 at 302-315, the 3 wrong ones at 802-808 and 4 truncations at 1024.
    assert (hazard["bucket_end"] - hazard["bucket_start"]).unique().to_list() == [100]
    table = hazard.select("bucket_start", "at_risk", "answered", "correct", "incorrect", "truncated").rows()
    quiet = [(start, at_risk, 0, 0, 0, 0) for start, at_risk in ((0, 32), (100, 32), (400, 14), (500, 14), (600, 14), (700, 14), (900, 8))]
    assert table == sorted([*quiet, (200, 32, 12, 12, 0, 0), (300, 20, 6, 6, 0, 0), (800, 14, 6, 0, 6, 0), (1000, 8, 0, 0, 0, 8)])
    assert hazard["hazard"].to_list() == pytest.approx([0, 0, 12 / 32, 6 / 20, 0, 0, 0, 0, 6 / 14, 0, 0])
    last = hazard.row(-1, named=True)
    assert (last["survival"], last["incidence_correct"], last["incidence_incorrect"]) == pytest.approx((8 / 32, 18 / 32, 6 / 32))
    # The easy tier holds both points, so its curves are the pooled ones.
    easy = warehouse.query("SELECT * EXCLUDE (tier) FROM hazard WHERE tier = 'easy' ORDER BY bucket_start")
    assert easy.equals(hazard.drop("tier"))
    curve = warehouse.query("SELECT * FROM survival WHERE tier = 'all' AND curve = 'answered' ORDER BY tokens")
    assert curve["tokens"][-1] == MAX_TOKENS and curve["censored"][-1] == 8 and curve["estimate"][-1] == pytest.approx(0.25)
    assert (curve["ci_low"].drop_nulls() <= curve["estimate"].filter(curve["ci_low"].is_not_null())).all()

    report = "".join(p.read_text() for p in (settings.report_dir / "data").glob("*.js"))  # the exported report's views
    assert "Inside the reasoning traces" in report and "8 of 32 traces flagged as loops; 8 of the 8 truncated samples loop." in report
    assert "Median tokens to answer [95% CI]" in report
