"""matplotlib for PNG files, imported only when a figure is asked for (it is an optional extra)."""

from __future__ import annotations

from typing import Any

from lsn_explorer.errors import LsnError


def pyplot() -> Any:
    """`matplotlib.pyplot` on the file-only Agg backend (no window, works without a display).

    Raises:
        LsnError: matplotlib is not installed.
    """
    try:
        import matplotlib
    except ImportError as e:
        raise LsnError("PNG figures need matplotlib", "pip install 'lsn-explorer[plot]'") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
