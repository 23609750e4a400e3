"""Chat-history compression rules: verbatim system/recent turns, paired tool calls, roles kept."""

from __future__ import annotations

import pytest

from ctxcomp import Budget, BudgetError, ConfigError, InputError, Ledger
from ctxcomp.compressors.truncate import TruncateCompressor
from ctxcomp.memory.history import (
    ELISION,
    HistoryConfig,
    Turn,
    compress_history,
    latest_user_text,
    tool_groups,
)

FILLER = " ".join(f"Sentence {i} talks about the weather and the harbour at length." for i in range(30))


def conversation() -> list[Turn]:
    return [
        Turn("system", "You are a helpful travel assistant."),
        Turn("user", "Tell me about the harbour. " + FILLER),
        Turn("assistant", "The harbour is old. " + FILLER),
        Turn("assistant", "", tool_call_ids=("call_1",), payload_tokens=12),
        Turn("tool", "Ferry timetable: " + FILLER, tool_call_id="call_1"),
        Turn("assistant", "Ferries run hourly. " + FILLER),
        Turn("user", "And the museum? " + FILLER),
        Turn("assistant", "The museum opens at nine."),
        Turn("user", "When does the museum close?"),
    ]


def test_tool_groups_pair_calls_with_results() -> None:
    turns = conversation()
    groups = tool_groups(turns)
    assert [3, 4] in groups
    assert sorted(i for g in groups for i in g) == list(range(len(turns)))


def test_fits_already_is_a_noop() -> None:
    turns = conversation()
    out = compress_history(turns, Budget(max_tokens=100_000), compressor=TruncateCompressor())
    assert out.tokens_in == out.tokens_out
    assert [k.text for k in out.turns] == [t.text for t in turns]
    assert all(k.verbatim for k in out.turns)


def test_older_turns_shrink_and_recent_stay_verbatim() -> None:
    turns = conversation()
    config = HistoryConfig(keep_recent=2)
    out = compress_history(turns, 400, compressor=TruncateCompressor(), config=config)
    assert out.tokens_out <= 400 < out.tokens_in
    by_index = {k.index: k for k in out.turns}
    # roles are never dropped: every input turn is still there, in order
    assert sorted(by_index) == list(range(len(turns)))
    assert by_index[0].text == turns[0].text and by_index[0].verbatim
    assert by_index[7].text == turns[7].text and by_index[8].text == turns[8].text
    shrunk = [k for k in out.turns if not k.verbatim]
    assert shrunk, "some older turn must have been compressed"
    for k in shrunk:
        original = turns[k.index].text
        assert k.text == ELISION or all(original[s:e] in original for s, e in k.spans)
        assert len(k.text) < len(original)


def test_recent_window_never_splits_a_tool_pair() -> None:
    turns = conversation()[:6]  # ends: call (3), result (4), assistant (5)
    out = compress_history(turns, 150, compressor=TruncateCompressor(), config=HistoryConfig(keep_recent=2))
    by_index = {k.index: k for k in out.turns}
    # the window of 2 starts at the tool result; it is widened to include its call
    assert by_index[3].verbatim and by_index[4].verbatim
    assert by_index[4].text == turns[4].text


def test_drop_policy_removes_whole_groups_only() -> None:
    turns = conversation()
    out = compress_history(turns, 120, compressor=TruncateCompressor(),
                           config=HistoryConfig(keep_recent=1, empty="drop"))
    indices = {k.index for k in out.turns}
    assert out.tokens_out <= 120  # dropping frees each removed turn's overhead too
    assert any(not k.verbatim and k.text != ELISION for k in out.turns), "the freed room is used"
    assert (3 in indices) == (4 in indices), "a tool call and its result go together"
    assert {0, 8} <= indices
    assert len(indices) < len(turns)


def test_latest_user_turn_is_verbatim_even_outside_window() -> None:
    turns = [*conversation(), Turn("assistant", "Let me check. " + FILLER)]
    out = compress_history(turns, 300, compressor=TruncateCompressor(), config=HistoryConfig(keep_recent=1))
    assert {k.index: k for k in out.turns}[8].verbatim
    assert latest_user_text(turns) == "When does the museum close?"


def test_ledger_accepts_the_result() -> None:
    out = compress_history(conversation(), 400, compressor=TruncateCompressor())
    ledger = Ledger()
    ledger.record(out.to_context())
    assert ledger.totals().tokens_saved == out.tokens_saved > 0
    assert out.cost_before is not None and out.cost_after is not None and out.cost_after < out.cost_before


def test_bad_input() -> None:
    with pytest.raises(InputError):
        Turn("narrator", "hello")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        compress_history(["hello"], 100)  # type: ignore[list-item]
    with pytest.raises(BudgetError):
        compress_history(conversation(), 0)
    with pytest.raises(BudgetError):
        compress_history(conversation(), "100")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        HistoryConfig(keep_recent=-1)
    with pytest.raises(ConfigError):
        HistoryConfig(empty="forget")  # type: ignore[arg-type]


@pytest.mark.model
def test_embedding_keeps_the_older_turn_relevant_to_the_question(embedding_compressor) -> None:
    turns = [
        Turn("system", "You are a helpful assistant."),
        Turn("user", "My cat is called Miso and she is seven years old."),
        Turn("assistant", "Noted, Miso is seven."),
        Turn("user", "I also like hiking in the Alps every summer with my brother."),
        Turn("assistant", "Hiking in the Alps sounds wonderful."),
        Turn("user", "My favourite programming language is Rust because of its borrow checker."),
        Turn("assistant", "Rust's borrow checker prevents data races."),
        Turn("user", "How old is my cat?"),
    ]
    out = compress_history(turns, 75, compressor=embedding_compressor, config=HistoryConfig(keep_recent=1))
    text = {k.index: k.text for k in out.turns}
    assert "Miso" in text[1]
    assert "Rust" not in text[5]
    assert out.tokens_out <= 75
