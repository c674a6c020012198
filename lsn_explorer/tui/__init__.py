"""The Textual app: renders the workbench and calls `lsn_explorer.core` in threads.

Nothing here computes: every number shown comes from a `core` call. Importing this package does
not import torch; the model worker does, after the first paint.
"""
