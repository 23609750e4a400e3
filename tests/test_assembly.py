from __future__ import annotations

from ctxcomp.assembly import Unit, assemble, longest_prefix, merge_spans, select_units
from ctxcomp.tokens import get_counter
from ctxcomp.types import Chunk

COUNTER = get_counter("gpt-4o-mini")
CHUNKS = [
    Chunk("Alpha one two three. Beta four five six seven.", id="a"),
    Chunk("Gamma eight nine. Delta ten eleven twelve thirteen fourteen.", id="b"),
]
UNITS = [
    Unit(0, (0, 20), 0.9), Unit(0, (21, 47), 0.1),
    Unit(1, (0, 17), 0.5), Unit(1, (18, 61), 0.7),
]


def test_merge_spans() -> None:
    assert merge_spans([(5, 9), (0, 3), (2, 4), (9, 10)]) == [(0, 4), (5, 9), (9, 10)]


def test_assemble_keeps_original_order_and_exact_spans() -> None:
    out = assemble(CHUNKS, [UNITS[3], UNITS[0], UNITS[2]], COUNTER)
    assert [c.source_id for c in out.chunks] == ["a", "b"]
    assert out.chunks[1].spans == ((0, 17), (18, 61))
    assert out.text == "Alpha one two three.\n\nGamma eight nine. Delta ten eleven twelve thirteen fourteen."
    assert out.tokens == COUNTER.count(out.text)


def test_select_units_prefers_high_scores_and_meets_the_limit() -> None:
    for limit in range(1, 40):
        out = select_units(CHUNKS, UNITS, COUNTER, limit)
        assert out.tokens <= limit
        for chunk in out.chunks:
            source = next(c for c in CHUNKS if c.id == chunk.source_id).text
            assert all(source[s:e] in chunk.text for s, e in chunk.spans)
    best = select_units(CHUNKS, UNITS, COUNTER, 6)
    assert best.text == "Alpha one two three."


def test_fill_pass_uses_spare_room() -> None:
    # The top unit (24 tokens) does not fit in 20, but lower-scored short ones do.
    chunks = [Chunk("x " * 40 + "end.", id="big"), Chunk("Short one.", id="s1"), Chunk("Short two.", id="s2")]
    units = [Unit(0, (0, len(chunks[0].text)), 1.0), Unit(1, (0, 10), 0.2), Unit(2, (0, 10), 0.1)]
    out = select_units(chunks, units, COUNTER, 10, min_unit_tokens=0)  # no unit counts as a fragment
    assert [c.source_id for c in out.chunks] == ["s1", "s2"]


def test_fragments_are_dropped_and_their_room_goes_to_whole_sentences() -> None:
    text = "manga. The series ran for 291 episodes on Fuji TV in Japan. Break! It was a hit with fans of the show. Both versions of the"
    chunk = Chunk("Dragon Ball Z\n" + text, id="d")
    from ctxcomp.text import split_sentences

    units = [Unit(0, s, 1.0 - 0.01 * i) for i, s in enumerate(split_sentences(chunk.text))]
    out = select_units([chunk], units, COUNTER, 40)
    kept = out.text
    assert "291 episodes" in kept and "fans of the show." in kept
    for stub in ("manga.", "Break!", "Both versions of the"):
        assert stub not in kept
    # the other policies: "fill" keeps a fragment only on its own merit, "keep" treats it like any unit
    assert "manga." in select_units([chunk], units, COUNTER, 40, fragments="keep").text
    only = [Unit(0, units[0].span, 1.0)]  # nothing but a fragment: it is kept rather than nothing
    assert select_units([chunk], only, COUNTER, 40).text


def test_nothing_fits_cuts_the_best_unit_to_a_word_prefix() -> None:
    out = select_units(CHUNKS, UNITS, COUNTER, 2)
    assert 0 < out.tokens <= 2
    assert out.text == "Alpha one"
    assert longest_prefix(CHUNKS, UNITS[0], COUNTER, 0) is None
