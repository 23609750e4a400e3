"""ctxcomp.memory."""
