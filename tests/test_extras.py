"""Install what you use: each domain's imports stay inside its pip extra, the core needs none of
them, a missing extra is one line naming it, and `facetvlp inspect` imports only the file's domain.

The boundaries are checked in fresh interpreters with an import guard: a `sys.meta_path` finder
that refuses the third-party packages of the other domains' extras, as if they were not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from engine_support import REPO, env
from facetvlp.domains import DOMAINS, EXTRA_PACKAGES, EXTRAS, INSPECT_SUFFIXES

GEOTIFF = REPO / "data/remote_sensing/new_brunswick/23322E759967N_clipped_1m_1of2.tif"
PCD = REPO / "data/pointcloud/pcl_scans/bun0.pcd"
LAZ = REPO / "data/pointcloud/lidar_las/autzen_trim.laz"


def dicom_file() -> str:
    from pydicom.data import get_testdata_file

    return get_testdata_file("CT_small.dcm")


GUARD = """
import importlib.abc, json, sys
BLOCKED = set({blocked!r})
assert not BLOCKED & {{name.split(".")[0] for name in sys.modules}}, "already imported"

class NotInstalled(importlib.abc.MetaPathFinder):
    # as if the package were not installed: the import (and find_spec) fails with its name
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
"""


def run_guarded(blocked, body: str) -> subprocess.CompletedProcess:
    code = GUARD.format(blocked=sorted(blocked)) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True,
                          timeout=600, cwd=REPO)


def other_domains_packages(domain: str) -> set[str]:
    return {p for name in DOMAINS if name != domain for p in EXTRA_PACKAGES[name]}


def import_names(requirements: list[str]) -> set[str]:
    """Top-level import names of the installed distributions a requirement list names."""
    def normal(name):
        return name.lower().replace("_", "-")

    wanted = {normal(req.split(">")[0].split("=")[0].split("[")[0].strip()) for req in requirements}
    return {top for top, dists in packages_distributions().items()
            if any(normal(d) in wanted for d in dists) and not top.startswith("_")}


# -- pyproject ---------------------------------------------------------------------------------

def test_extras_in_pyproject_install_exactly_each_domains_packages():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for domain in DOMAINS:
        assert import_names(extras[EXTRAS[domain]]) == set(EXTRA_PACKAGES[domain]), domain
    every = set().union(*EXTRA_PACKAGES.values())
    assert not import_names(project["dependencies"]) & every, "a domain package is a core dependency"
    assert extras["all"] == [f"facetvlp[{','.join(EXTRAS[d] for d in DOMAINS)}]"]
    assert "facetvlp[all]" in extras["dev"]


def test_quickstart_installs_every_extra():
    makefile = (REPO / "Makefile").read_text()
    assert 'pip install -q -e ".[dev,bench]"' in makefile  # dev pulls all


# -- import boundaries -------------------------------------------------------------------------

def test_core_imports_no_domain_and_no_optional_package():
    every = set().union(*EXTRA_PACKAGES.values())
    result = run_guarded(every, """
        import pkgutil, importlib
        import facetvlp.core
        from facetvlp.core.registry import ALL_REGISTRIES, choices
        for info in pkgutil.walk_packages(facetvlp.core.__path__, "facetvlp.core."):
            importlib.import_module(info.name)
        import facetvlp.cli
        names = {reg: choices(r) for reg, r in ALL_REGISTRIES.items()}
        print(json.dumps({"domains": sorted(m for m in sys.modules if m.startswith("facetvlp.domains.")),
                          "names": names}))
    """)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["domains"] == []
    assert "ContrastiveModel" in out["names"]["model"] and "CLIPLoss" in out["names"]["loss"]


def read_in_domain(domain: str) -> str:
    """Code for the guarded interpreter: import the domain, register its types, import each of
    its modules, and read a real file with its reader."""
    folder = {"medical": "medical", "remote_sensing": "remote_sensing", "pointcloud": "3d"}[domain]
    reads = {
        "medical": f"""
            from facetvlp.domains.medical.dicom_read import read_dicom
            shapes = [list(read_dicom({dicom_file()!r}).array.shape)]
        """,
        "remote_sensing": f"""
            from facetvlp.domains.remote_sensing.geotiff import RasterSource, window_sample
            shapes = [list(window_sample(RasterSource({str(GEOTIFF)!r}), None)["image"].shape)]
        """,
        "pointcloud": f"""
            from facetvlp.domains.pointcloud import read_points
            shapes = [list(read_points({str(PCD)!r}).xyz.shape), list(read_points({str(LAZ)!r}).xyz.shape)]
        """,
    }[domain]
    return textwrap.dedent(f"""
        import importlib, pathlib
        import facetvlp.domains.{domain} as domain
        from facetvlp.core.registry import DATASETS, choices
        datasets = choices(DATASETS)
        for path in sorted(pathlib.Path(domain.__path__[0]).glob("*.py")):
            if path.stem not in ("__init__", "demo"):
                importlib.import_module("facetvlp.domains.{domain}." + path.stem)
        import facetvlp.domains.{domain}.demo
    """) + textwrap.dedent(reads) + textwrap.dedent("""
        print(json.dumps({"datasets": datasets, "shapes": shapes}))
    """)


@pytest.mark.parametrize("domain", DOMAINS)
def test_each_domain_stays_inside_its_extra(domain):
    result = run_guarded(other_domains_packages(domain), read_in_domain(domain))
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    if domain == "medical":
        import pydicom

        ds = pydicom.dcmread(dicom_file())
        assert out["shapes"] == [[ds.Rows, ds.Columns]]
        assert {"CXRFolderDataset", "IUXrayDataset"} <= set(out["datasets"])
    elif domain == "remote_sensing":
        import rasterio

        with rasterio.open(GEOTIFF) as ds:
            assert out["shapes"] == [[ds.count, ds.height, ds.width]]
        assert {"GeoTiffTileDataset", "SceneFolderDataset"} <= set(out["datasets"])
    else:
        import laspy
        import open3d as o3d

        assert out["shapes"][0] == [len(o3d.io.read_point_cloud(str(PCD)).points), 3]
        assert out["shapes"][1] == [laspy.read(LAZ).header.point_count, 3]
        assert {"ShapeFolderDataset", "LidarTileDataset"} <= set(out["datasets"])


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_domain_without_its_extra_says_which_extra_in_one_line(domain):
    package = EXTRA_PACKAGES[domain][0]
    some_file = {"medical": dicom_file(), "remote_sensing": str(GEOTIFF), "pointcloud": str(PCD)}[domain]
    result = run_guarded({package}, f"""
        from facetvlp.cli import main
        from facetvlp.core.errors import MissingExtraError
        try:
            import facetvlp.domains.{domain}
        except MissingExtraError as exc:
            print("import:", exc)
        sys.exit(main(["inspect", {some_file!r}]))
    """)
    assert result.returncode == 2, result.stderr
    hint = f'pip install "facetvlp[{EXTRAS[domain]}]"'
    assert result.stdout.startswith("import: ") and hint in result.stdout
    assert result.stderr.count("\n") == 1 and hint in result.stderr and package in result.stderr


def test_open3d_missing_at_read_time_names_the_extra():
    """open3d is imported where a reader needs it: that import names the extra too."""
    result = run_guarded({"open3d"}, f"""
        import facetvlp.domains
        facetvlp.domains.require_extra = lambda name: None  # past the install check, as if half-installed
        from facetvlp.core.errors import MissingExtraError
        from facetvlp.domains.pointcloud import read_points
        try:
            read_points({str(PCD)!r})
        except MissingExtraError as exc:
            print(exc)
    """)
    assert result.returncode == 0, result.stderr
    assert "'open3d'" in result.stdout and 'pip install "facetvlp[3d]"' in result.stdout


# -- inspect imports only the file's domain ----------------------------------------------------

def modules_after(argv: list[str]) -> tuple[int, set[str]]:
    code = textwrap.dedent(f"""
        import json, sys
        from facetvlp.cli import main
        try:
            rc = main({argv!r})
        except SystemExit as exc:
            rc = exc.code
        sys.stderr.write("MODULES " + json.dumps(sorted(sys.modules)) + "\\n")
        sys.exit(rc)
    """)
    result = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True,
                            timeout=600, cwd=REPO)
    line = [ln for ln in result.stderr.splitlines() if ln.startswith("MODULES ")][-1]
    return result.returncode, set(json.loads(line[len("MODULES "):]))


def foreign(modules: set[str], domain: str) -> set[str]:
    """Modules of the other domains, or of their extras' packages, among ``modules``."""
    others = other_domains_packages(domain)
    prefixes = tuple(f"facetvlp.domains.{d}" for d in DOMAINS if d != domain)
    return {m for m in modules if m.startswith(prefixes) or m.split(".")[0] in others}


@pytest.mark.parametrize("domain, path", [
    ("medical", "dicom"), ("remote_sensing", str(GEOTIFF)), ("pointcloud", str(PCD)),
])
def test_inspect_imports_only_the_files_domain(domain, path):
    path = dicom_file() if path == "dicom" else path
    rc, modules = modules_after(["inspect", path])
    assert rc == 0
    assert f"facetvlp.domains.{domain}" in modules
    assert foreign(modules, domain) == set()
    # the summariser alone: not the domain's datasets, nor MONAI for a DICOM header
    assert "monai" not in modules and f"facetvlp.domains.{domain}.datasets" not in modules


def test_inspect_of_a_missing_file_and_help_import_no_domain_and_no_torch(tmp_path):
    for argv in (["inspect", str(tmp_path / "missing.dcm")], ["--help"]):
        rc, modules = modules_after(argv)
        assert rc == (2 if argv[0] == "inspect" else 0)
        assert "torch" not in modules and not any(m.startswith("facetvlp.domains.") for m in modules)


def test_inspect_suffix_table_matches_the_registered_inspectors():
    from facetvlp.core import inspect as core_inspect
    from facetvlp.domains import load_all

    load_all()
    registered = {suffix: fn.__module__ for suffix, fn in core_inspect._BY_SUFFIX.items()}
    declared = {s: d for d, suffixes in INSPECT_SUFFIXES.items() for s in suffixes}
    assert set(registered) == set(declared)
    for suffix, module in registered.items():
        assert module.startswith(f"facetvlp.domains.{declared[suffix]}."), suffix


def test_an_unknown_type_names_the_domains_whose_extra_is_missing():
    from facetvlp.cli import missing_domain_hint
    from facetvlp.core.errors import ConfigError, MissingExtraError

    missing = {"remote_sensing": MissingExtraError("remote-sensing", "rasterio", "the remote_sensing domain")}
    unknown = ConfigError("unknown dataset type 'GeoTiffTileDataset'", key="train_data.dataset")
    assert missing_domain_hint(unknown, missing) == ' (not installed: remote_sensing; pip install "facetvlp[remote-sensing]")'
    assert missing_domain_hint(ConfigError("missing key 'type'"), missing) == ""
    assert missing_domain_hint(unknown, {}) == ""
