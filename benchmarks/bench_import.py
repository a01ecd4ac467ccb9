"""Import time: ``import sipp`` cold against ``import httpx`` cold, same session.

Each sample is a fresh interpreter that times only the import statement
(``perf_counter`` around it), so interpreter start-up is not counted. The two
modules alternate so drift on a shared machine hits both alike. Target:
``import sipp`` ≤ 0.6× ``import httpx`` — the core needs only anyio and
msgspec at import; httpx and every driver load at ``add()``.
"""

from __future__ import annotations

import subprocess
import sys

from _report import summary, write

RUNS = 21
CODE = "import time; t = time.perf_counter(); import {m}; print(time.perf_counter() - t)"


def sample(module: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CODE.format(m=module)], capture_output=True, text=True, check=True
    )
    return float(out.stdout)


def main() -> None:
    for module in ("sipp", "httpx", "anyio", "msgspec"):
        sample(module)  # compile .pyc files once so every measured run is alike
    samples: dict[str, list[float]] = {m: [] for m in ("sipp", "httpx", "anyio", "msgspec")}
    for _ in range(RUNS):
        for module in samples:
            samples[module].append(sample(module))
    httpx = summary(samples["httpx"])["median"]
    rows = []
    for module, values in samples.items():
        stats = summary(values)
        rows.append(
            {
                "import": module,
                "median_ms": stats["median"] * 1000,
                "min_ms": stats["min"] * 1000,
                "max_ms": stats["max"] * 1000,
                "iqr_ms": stats["iqr"] * 1000,
                "vs_httpx": stats["median"] / httpx,
            }
        )
    ratio = rows[0]["vs_httpx"]
    write("import", rows, {"ratio_sipp_vs_httpx": ratio, "target": 0.6})
    print(f"import sipp / import httpx = {ratio:.2f}x (target <= 0.6x)")


if __name__ == "__main__":
    main()
