"""lsn-explorer's bundled data, installed as the package `lsn_explorer._assets` (see pyproject.toml).

Holds no code: it makes the folder importable so `importlib.resources` can find it in a checkout
and in an installed wheel alike. Locate files through `lsn_explorer.assets`, never by path.
"""
