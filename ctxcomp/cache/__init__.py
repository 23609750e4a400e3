"""ctxcomp.cache."""
