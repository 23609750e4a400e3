"""``ctxcomp bench``: model-free evaluation of compressors and their peers on real data.

Suites (each reads its data from a path given on the command line):

- ``nq``: multi-document QA (20 passages per question, "Lost in the Middle" format);
- ``needle``: a needle sentence inserted at evenly spaced depths of a haystack;
- ``locomo``: long conversations with QA and evidence turns.

Every method (ctxcomp's compressors by registry name, plus the baselines and peers) is
run to the same token budget in the same process, and scored with the same metrics
(:mod:`ctxcomp.bench.metrics`). Importing this package loads nothing heavy.
"""
