"""The machine a benchmark ran on, and docs/benchmarks.md, where each benchmark owns one section."""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Each section below is written by its benchmark; `make bench` (`python -m bench`) regenerates them. A
benchmark rewrites only its own section, between its `BEGIN`/`END` markers, and leaves the others as they
are. The figures are those of the machine named in the section, on the date given: compare runs on the same
machine. Benchmarks are never timed assertions in the tests. Two long ones run only by name, never in
`make bench`: `python -m bench load` (four workers on PostgreSQL under rising load until overload; under ten
minutes, `--quick` for a one-to-two-minute try) and `python -m bench soak` (server and agent together, 30
minutes by default, `--minutes 2` for a try).
"""


def machine() -> str:
    """CPU model, cores, Python and OS, in one line."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(("model name", "Model")):  # x86 says "model name", a Pi "Model"
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        model = platform.processor() or model
    return (
        f"{model}, {os.cpu_count()} cores, {platform.machine()}; "
        f"{platform.python_implementation()} {platform.python_version()}; "
        f"{platform.system()} {platform.release()}"
    )


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def write_section(name: str, body: str, doc: Path = DOC) -> None:
    """Replace the section `name` in the doc (or add it at the end), keeping every other section."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    text = doc.read_text(encoding="utf-8") if doc.exists() else HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _match: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text, encoding="utf-8")
