"""ctxcomp.integrations."""
