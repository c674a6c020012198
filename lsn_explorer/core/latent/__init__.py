"""Latent-space analyses of last-token states (Tezuka & Inoue): centroid similarity, PCA,
dimensionality, mutual k-NN alignment, and parallel vs non-parallel similarity, with and without
interventions; states cached per (model, text, intervention) in the session."""
