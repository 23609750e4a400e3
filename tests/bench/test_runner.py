from ctxcomp.bench.data import Example
from ctxcomp.bench.methods import build_method
from ctxcomp.bench.runner import RssSampler, run_one, run_suite
from ctxcomp.types import Chunk

EXAMPLE = Example(
    id="e1",
    query="where is the park",
    chunks=(Chunk("Filler words go here and on. " * 20, id="p0"),
            Chunk("The park is in Dolores. It is sunny.", id="p1")),
    answers=("Dolores",),
    gold_ids=frozenset({"p1"}),
    stratum="1",
)


def test_run_one_scores_against_the_target_budget():
    none = run_one(build_method("none"), EXAMPLE, 4, "gpt-4o-mini")
    assert none.answer_hit and none.gold_hit and none.evidence == 1.0
    assert none.tokens_out == none.tokens_in > none.limit  # the reference is over budget
    cut = run_one(build_method("truncate"), EXAMPLE, 4, "gpt-4o-mini")
    assert cut.tokens_out <= cut.limit == none.tokens_in // 4
    assert not cut.answer_hit and cut.gold_hit is False and cut.evidence == 0.0


def test_run_suite_rows_per_method_and_ratio():
    seen = []
    rows = run_suite([build_method("none"), build_method("truncate")], [EXAMPLE], [2, 4], "gpt-4o-mini",
                     progress=False, on_method_done=lambda r: seen.append(len(r)))
    assert [(r["method"], r["ratio_target"]) for r in rows] == [
        ("none", 2), ("none", 4), ("truncate", 2), ("truncate", 4)]
    assert seen == [2, 4]  # saved after each method
    assert rows[0]["hits"] == {"e1": True}
    assert all(r["peak_rss_mb"] > 10 and r["n"] == 1 and r["provenance"] for r in rows)


def test_rss_sampler_reports_memory():
    with RssSampler(interval=0.005) as sampler:
        sampler.reset()
        block = bytearray(64 * 2**20)
        peak = sampler.peak_mb()
        del block
    assert peak > 64


def test_interleaved_gives_the_same_scores():
    methods = [build_method("none"), build_method("random:seed=1")]
    apart = run_suite(methods, [EXAMPLE], [3], "gpt-4o-mini", progress=False)
    together = run_suite(methods, [EXAMPLE], [3], "gpt-4o-mini", progress=False, interleave=True)
    keys = ("method", "ratio_target", "n", "answer_recall", "gold_recall", "ratio_achieved", "hits")
    assert [{k: r[k] for k in keys} for r in apart] == [{k: r[k] for k in keys} for r in together]
