"""Model loading: encoders and causal LMs by hub id, local path or shipped-package name."""
