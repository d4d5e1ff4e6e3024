"""What every benchmark prints the same way: the machine, the versions of critflow and the peer,
and min / median / max over repetitions run interleaved (A, B, A, B, … so that other work on the
machine affects both sides alike)."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed


def version(package: str) -> str:
    """Installed version of ``package`` ('not installed' when it is not)."""
    try:
        return installed(package)
    except PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """'Intel(R) Xeon(R) … , 2 cores, 23 GiB RAM, load 3.1 2.9 2.5; Linux-…; Python 3.11.7'."""
    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        load = ", load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())
    return (
        f"{cpu_model()}, {os.cpu_count()} cores{memory}{load}; {platform.platform()}; "
        f"Python {platform.python_version()}"
    )


def header(title: str, packages: Sequence[str]) -> None:
    """Print the benchmark's title, the machine and the versions that matter."""
    print(title)
    print("machine: " + machine())
    print("versions: " + ", ".join(f"{p} {version(p)}" for p in ("critflow", *packages)))


def interleaved(cases: dict[str, Callable[[], object]], repeats: int) -> dict[str, list]:
    """Run every case ``repeats`` times, interleaved (a, b, c, a, b, c, …), the first round in
    the given order and each later one rotated; return each case's results in run order."""
    names = list(cases)
    found: dict[str, list] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            found[name].append(cases[name]())
    return found


def spread(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
    """'min / median / max' of ``values`` × ``scale``."""
    ordered = sorted(v * scale for v in values)
    return " / ".join(
        f"{v:,.{digits}f}" for v in (ordered[0], statistics.median(ordered), ordered[-1])
    )
