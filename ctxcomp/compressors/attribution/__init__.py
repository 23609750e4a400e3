"""Token-level pruning (FrugalPrompt-style): whole words by LM salience, structure kept.

``attribution`` (gradient x input of the query's likelihood) and ``selfinfo``
(self-information) share one core: :mod:`.segment` (whole words in every script),
:mod:`.layout` (force-keep, protected regions, Markdown, JSON), :mod:`.scoring` (the LM
signals) and :mod:`.select` (rank, then binary search on the count with the real token
counter). Names load lazily: importing this package does not import torch.
"""

from ctxcomp._deps import lazy_exports

_EXPORTS = {
    "AttributionCompressor": "ctxcomp.compressors.attribution.compressor",
    "AttributionConfig": "ctxcomp.compressors.attribution.compressor",
    "PruneConfig": "ctxcomp.compressors.attribution.compressor",
    "SelfInfoCompressor": "ctxcomp.compressors.attribution.compressor",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
