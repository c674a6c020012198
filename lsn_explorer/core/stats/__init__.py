"""Activation statistics: the mergeable per-neuron `accumulator`, `collect` (one model pass over a
language's text) and `runs` (resumable, shardable collection recorded in a session).
"""
