"""Domain packages: each one registers its readers, datasets, knowledge and evaluators on import.

Each domain's third-party packages come with its extra (``pip install "facetvlp[medical]"``); a
domain imported without them raises a MissingExtraError naming the extra. The tables below are
what the front door (`facetvlp.cli`) needs to know about a domain without importing it.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from facetvlp.core.errors import MissingExtraError

DOMAINS = ("medical", "remote_sensing", "pointcloud")

#: the pip extra that installs each domain's packages
EXTRAS = {"medical": "medical", "remote_sensing": "remote-sensing", "pointcloud": "3d"}

#: top-level import names of the packages each extra installs (pyproject.toml's
#: [project.optional-dependencies]; tests/test_extras.py checks the two agree)
EXTRA_PACKAGES = {
    "medical": ("pydicom", "pylibjpeg", "libjpeg", "openjpeg", "rle", "gdcm", "highdicom", "nibabel",
                "negspacy", "dicomanonymizer"),
    "remote_sensing": ("rasterio", "affine", "pyproj", "shapely", "osmium", "pyogrio"),
    "pointcloud": ("open3d", "laspy", "lazrs", "numba"),
}

#: file suffixes whose `facetvlp inspect` summariser each domain registers, so that inspect imports
#: only that domain (tests/test_extras.py checks them against the registered inspectors)
INSPECT_SUFFIXES = {
    "medical": (".dcm", ".dicom"),
    "remote_sensing": (".tif", ".tiff", ".geotiff", ".gtiff", ".cog", ".jp2", ".j2k", ".img", ".vrt",
                       ".osm", ".osm.bz2", ".osm.gz", ".osm.pbf", ".pbf", ".geojson", ".json"),
    "pointcloud": (".pcd", ".xyz", ".xyzn", ".xyzrgb", ".pts", ".obj", ".off", ".stl", ".las", ".laz",
                   ".npy", ".npz", ".ply"),
}


def load(name: str):
    """Import one domain (registering its types); MissingExtraError when its extra is missing."""
    return importlib.import_module(f"{__name__}.{name}")


def load_all() -> dict[str, object]:
    """Import every domain so that its registry entries and inspectors exist."""
    return {name: load(name) for name in DOMAINS}


def load_installed() -> tuple[dict[str, object], dict[str, MissingExtraError]]:
    """Import every domain whose extra is installed; the others are returned with their error."""
    loaded, missing = {}, {}
    for name in DOMAINS:
        try:
            loaded[name] = load(name)
        except MissingExtraError as exc:
            missing[name] = exc
    return loaded, missing


def domain_for_file(path: str) -> str | None:
    """The domain whose inspector claims ``path`` by suffix (longest suffix wins), or None."""
    file_name = Path(path).name.lower()
    claims = [(len(s), name) for name, suffixes in INSPECT_SUFFIXES.items() for s in suffixes
              if file_name.endswith(s)]
    return max(claims)[1] if claims else None


def extra_guard(name: str):
    """Used around a domain's imports: a missing package of its extra is a MissingExtraError."""
    from facetvlp.core.extras import extra_guard as guard

    return guard(EXTRAS[name], EXTRA_PACKAGES[name], needed_by=f"the {name} domain")


def require_extra(name: str) -> None:
    """MissingExtraError unless every package of the domain's extra is installed (looked up, not
    imported: some are imported only where they are used)."""
    with extra_guard(name):
        for package in EXTRA_PACKAGES[name]:
            if importlib.util.find_spec(package) is None:
                raise ModuleNotFoundError(f"No module named {package!r}", name=package)


def defer_types(name: str, modules: tuple[str, ...]) -> None:
    """Register a domain's types on the first registry lookup instead of at its import.

    A domain's ``__init__`` imports its light `facetvlp inspect` summarisers itself and hands the
    modules that register datasets, knowledge, towers ... here: ``import facetvlp.domains.X``
    still makes every ``type=`` name of X resolvable, and `facetvlp inspect` does not pay for MONAI
    or torch to read a header.
    """
    from facetvlp.core.registry import add_type_loader

    package = f"{__name__}.{name}"

    def load_types() -> None:
        with extra_guard(name):
            for module in modules:
                importlib.import_module(f"{package}.{module}")

    add_type_loader(load_types)
