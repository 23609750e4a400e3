"""ctxcomp.planners."""
