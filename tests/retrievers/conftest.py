"""A small hybrid index over a few texts, built once (it loads the real MiniLM)."""

from __future__ import annotations

import pytest

TEXTS = [
    "The observatory dome opens at dusk; the main telescope is a 60 cm reflector.",
    "Membership costs 40 euros a year and includes free entry to every public night.",
    "Our cafe serves soup, bread and hot chocolate until ten in the evening.",
    "Error code XJ-42 means the mount lost its home position; re-home it before observing.",
    "Children under twelve must be accompanied by an adult during night sessions.",
    "The annual meteor watch takes place in August, when the Perseids peak.",
]


@pytest.fixture(scope="session")
def small_index():
    from ctxcomp.retrievers.hybrid import HybridRetriever

    return HybridRetriever.from_texts(TEXTS, ids=[f"t{i}" for i in range(len(TEXTS))],
                                      metadatas=[{"n": i} for i in range(len(TEXTS))])
