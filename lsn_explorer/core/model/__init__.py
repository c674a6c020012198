"""The model layer: the family table (`architectures`), loading a checkpoint into a `ModelHandle`
(`loading`), and `backend`, the only module that talks to nnsight (reading sites, writing
interventions, generating).
"""
