import numpy as np

from ctxcomp.lexical import bm25_scores, terms


def test_terms_drop_stopwords_and_punctuation():
    assert terms("When is the NEXT Deadpool movie, being released?") == ["next", "deadpool", "movie", "released"]


def test_bm25_prefers_rare_shared_terms():
    docs = ["the movie was released in May", "Deadpool sequel released May 2018", "a movie about movies"]
    got = bm25_scores("when is the next deadpool movie released", docs)
    assert int(np.argmax(got)) == 1
    assert got.shape == (3,) and (got >= 0).all()


def test_bm25_edge_cases():
    assert bm25_scores("the of and", ["some text"]).tolist() == [0.0]
    assert bm25_scores("river", []).shape == (0,)
    assert bm25_scores("river", ["no match here"]).tolist() == [0.0]
