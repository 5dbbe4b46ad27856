"""read_dicom vs MONAI LoadImage(reader="PydicomReader") on the same real DICOM files, one process.

Corpus: every file shipped in pydicom's test_files plus ../shared/data/medical/{cxr_dicom,
dicom_samples, dicom_mr_mosaic} when present, de-duplicated by content, kept when pydicom parses
it and it holds pixel data (SEG and broken streams included: both readers pay for their failures).
Both readers use the same installed decoders (pydicom + GDCM + pylibjpeg + Pillow).

    python benchmarks/dicom_read.py [--repeats 5]

Prints files/s and files decoded for both (median pass), and the ratio of median and of best passes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_files

from facetvlp.domains.medical.dicom_read import DicomReadError, read_dicom

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "medical"
SHARED_FOLDERS = ("cxr_dicom", "dicom_samples", "dicom_mr_mosaic")


def corpus() -> list[str]:
    candidates = [Path(p) for p in get_testdata_files()]
    for folder in SHARED_FOLDERS:
        if (SHARED / folder).is_dir():
            candidates += sorted((SHARED / folder).rglob("*"))
    seen, files = set(), []
    for path in candidates:
        if not path.is_file():
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=False)
        except Exception:
            continue
        if "PixelData" in ds:
            files.append(str(path))
    return files


def run_monai(loader, files) -> int:
    decoded = 0
    for path in files:
        try:
            loader(path)
            decoded += 1
        except Exception:
            pass
    return decoded


def run_ours(files) -> int:
    decoded = 0
    for path in files:
        try:
            read_dicom(path)
            decoded += 1
        except DicomReadError:
            pass
    return decoded


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    warnings.simplefilter("ignore")
    from monai.transforms import LoadImage

    loader = LoadImage(reader="PydicomReader", image_only=True)
    files = corpus()
    # warm-up: imports, decoder plugin discovery, page cache
    monai_decoded, ours_decoded = run_monai(loader, files), run_ours(files)
    monai_times, ours_times = [], []
    for _ in range(args.repeats):  # interleaved so drifts in machine load hit both alike
        start = time.perf_counter()
        run_monai(loader, files)
        monai_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        run_ours(files)
        ours_times.append(time.perf_counter() - start)
    monai_t, ours_t = statistics.median(monai_times), statistics.median(ours_times)
    print(f"files with pixel data: {len(files)} (python {sys.version.split()[0]}, pydicom {pydicom.__version__})")
    print(f"MONAI LoadImage(PydicomReader): {len(files) / monai_t:8.1f} files/s  decoded {monai_decoded}/{len(files)}  ({monai_t:.3f} s/pass)")
    print(f"facetvlp read_dicom           : {len(files) / ours_t:8.1f} files/s  decoded {ours_decoded}/{len(files)}  ({ours_t:.3f} s/pass)")
    print(f"speed ratio (ours / MONAI): {monai_t / ours_t:.2f}x  (median of {args.repeats} passes); "
          f"best passes: {min(monai_times) / min(ours_times):.2f}x ({min(monai_times):.3f} s vs {min(ours_times):.3f} s)")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
