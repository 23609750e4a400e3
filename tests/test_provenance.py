from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ctxcomp.provenance import SpanMap
from ctxcomp.types import join_spans

SOURCE = "0123456789abcdefghij"


def test_identity_map() -> None:
    assert SpanMap.identity(10).to_source([(2, 5)]) == ((2, 5),)
    assert SpanMap.identity(0).to_source([(0, 0)]) == ()


def test_spans_crossing_a_separator_split_in_two() -> None:
    m = SpanMap(((0, 3), (10, 13)))  # inner text "012 abc"
    assert join_spans(SOURCE, m.spans) == "012 abc"
    assert m.to_source([(1, 6)]) == ((1, 3), (10, 12))
    assert m.to_source([(3, 4)]) == ()  # only the separator


@given(st.lists(st.tuples(st.integers(0, 19), st.integers(1, 5)), max_size=5), st.data())
def test_composed_text_equals_inner_text(raw: list[tuple[int, int]], data: st.DataObject) -> None:
    # Build non-overlapping, non-touching outer spans.
    spans: list[tuple[int, int]] = []
    for start, length in sorted(raw):
        if spans and start <= spans[-1][1]:
            continue
        spans.append((start, min(start + length, 20)))
    m = SpanMap(tuple(spans))
    inner = join_spans(SOURCE, spans)
    if not inner:
        return
    a = data.draw(st.integers(0, len(inner) - 1))
    b = data.draw(st.integers(a + 1, len(inner)))
    mapped = m.to_source([(a, b)])
    assert join_spans(SOURCE, mapped).replace(" ", "") == inner[a:b].replace(" ", "")
    for s, e in mapped:
        assert any(os <= s and e <= oe for os, oe in spans)
