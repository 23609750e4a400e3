import pytest

from ctxcomp.bench.lingua import LONGLLMLINGUA_SETTINGS, LongLLMLinguaMethod, find_peers_dir, load_compat
from ctxcomp.errors import ConfigError
from ctxcomp.types import Budget, Chunk


def test_peers_dir_found_in_checkout_and_explicit_missing_reported(tmp_path, monkeypatch):
    assert (find_peers_dir() / "llmlingua_compat.py").is_file()
    monkeypatch.chdir(tmp_path)
    assert find_peers_dir().name == "peers"  # falls back to the folder beside the package
    (tmp_path / "llmlingua_compat.py").write_text("X = 1\n")
    assert find_peers_dir(str(tmp_path)) == tmp_path
    assert load_compat(str(tmp_path)).X == 1


def test_missing_peers_dir_is_a_config_error(tmp_path, monkeypatch):
    import ctxcomp.bench.lingua as lingua

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lingua, "__file__", str(tmp_path / "a" / "b" / "lingua.py"))
    with pytest.raises(ConfigError, match=r"llmlingua_compat\.py"):
        find_peers_dir(str(tmp_path / "nowhere"))


def test_longllmlingua_uses_documented_rag_settings():
    assert LONGLLMLINGUA_SETTINGS["rank_method"] == "longllmlingua"
    assert LONGLLMLINGUA_SETTINGS["condition_compare"] is True
    assert LONGLLMLINGUA_SETTINGS["reorder_context"] == "sort"
    assert LONGLLMLINGUA_SETTINGS["concate_question"] is False


@pytest.mark.model
@pytest.mark.slow
def test_longllmlingua_runs_on_smollm2_with_the_patch():
    """The transformers-5 patch lets the real llmlingua compress on the real SmolLM2."""
    chunks = [
        Chunk("Paris is the capital of France. It has many museums and old bridges.", id="a"),
        Chunk("The best thing to do in San Francisco is eat a sandwich in Dolores Park.", id="b"),
        Chunk("Bananas are yellow fruit grown in warm places around the world.", id="c"),
    ]
    method = LongLLMLinguaMethod("longllmlingua", {"iterative_size": 20})
    out = method.run("What is the best thing to do in San Francisco?", chunks, Budget(ratio=2))
    assert out.chunks is None and out.text
    assert len(out.text) < sum(len(c.text) for c in chunks)
