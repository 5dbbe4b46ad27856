"""How long the `facetvlp` command takes to start, against `python -c "import torch"`, one run.

Each command runs in a fresh interpreter (as a user types it) `--repeats` times, interleaved with
the torch import so that load changes hit both alike; the median wall time of each is printed with
its ratio to the torch import's median. Commands: `inspect` of a missing .dcm, of a real DICOM
(pydicom's CT_small.dcm), of a real GeoTIFF and of a real point cloud from the project's data/,
`--help` and `info`. The CPU flags and the load average are printed with the figures.

    python benchmarks/cli_start.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def commands() -> dict[str, list[str]]:
    from pydicom.data import get_testdata_file

    facetvlp = [sys.executable, "-m", "facetvlp.cli"]
    return {
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
        "facetvlp inspect missing.dcm": [*facetvlp, "inspect", "missing.dcm"],
        "facetvlp inspect CT_small.dcm": [*facetvlp, "inspect", get_testdata_file("CT_small.dcm")],
        "facetvlp inspect <GeoTIFF>": [*facetvlp, "inspect",
                                       str(REPO / "data/remote_sensing/new_brunswick/23322E759967N_clipped_1m_1of2.tif")],
        "facetvlp inspect bun0.pcd": [*facetvlp, "inspect", str(REPO / "data/pointcloud/pcl_scans/bun0.pcd")],
        "facetvlp --help": [*facetvlp, "--help"],
        "facetvlp info": [*facetvlp, "info"],
    }


def wall_time(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
                   env=dict(os.environ, OMP_NUM_THREADS="1"))
    return time.perf_counter() - started


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    return " ".join(f for f in ("avx2", "avx512_bf16", "amx_bf16") if f" {f}" in text) or "none of avx2/avx512_bf16/amx_bf16"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    runs = commands()
    for argv in runs.values():  # warm the file cache once, untimed
        wall_time(argv)
    times: dict[str, list[float]] = {name: [] for name in runs}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        for name, argv in runs.items():
            times[name].append(wall_time(argv))
    load_after = os.getloadavg()
    torch_median = statistics.median(times['python -c "import torch"'])
    print(f"cpu flags: {cpu_flags()}; cores: {os.cpu_count()}; load average (1, 5, 15 min) before "
          f"{tuple(round(x, 2) for x in load_before)}, after {tuple(round(x, 2) for x in load_after)}")
    print(f"median of {args.repeats} runs each, interleaved\n")
    width = max(map(len, runs))
    print(f"{'command':<{width}}  median s   min s   x import torch")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<{width}}  {median:8.2f}  {min(values):6.2f}   {median / torch_median:6.2f}")


if __name__ == "__main__":
    main()
