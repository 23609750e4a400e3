"""ctxcomp.retrievers."""
