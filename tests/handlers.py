"""Handler modules as Lambda loads them: imported (init) under the test's environment.

Handlers build their settings and clients at import, so a test that changes the
environment or starts moto gets a fresh init with :func:`fresh`, which re-runs the
module's top level in place (``from x import app`` references stay valid).
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def fresh(name: str) -> ModuleType:
    """Import ``name`` (e.g. ``"callback_ingest.app"``), or re-run its init if already imported."""
    module = sys.modules.get(name)
    if module is None:
        return importlib.import_module(name)
    return importlib.reload(module)
