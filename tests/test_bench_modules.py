"""Every benchmark module imports: the benchmarks run only by hand (`make bench`, `python -m bench load`),
so a name moved between them would otherwise be found by the next person who runs one."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
MODULES = sorted(f"bench.{path.stem}" for path in BENCH.glob("*.py") if path.stem != "__main__")


@pytest.mark.parametrize("module", MODULES)
def test_the_benchmark_module_imports(module: str):
    importlib.import_module(module)


def test_the_command_knows_every_benchmark_the_readme_names():
    readme = " ".join((BENCH.parent / "README.md").read_text(encoding="utf-8").split())
    main = (BENCH / "__main__.py").read_text(encoding="utf-8")
    for name in ("agent", "agent-dense", "eid", "policy", "delivery", "moment", "opt-in", "load", "soak"):
        assert f"`{name}`" in readme or f"bench {name}" in readme, name
        assert f'"{name}"' in main, name
