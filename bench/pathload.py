"""scripts/, tests/ and bench/ are not packages: the benchmarks import their modules by path."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any


def load_by_path(name: str, path: Path) -> Any:
    """The module at ``path`` under ``name``, loaded once per process."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return sys.modules[name]
