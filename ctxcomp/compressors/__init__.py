"""Compressors: one module per method; see ctxcomp.registry for their names."""
