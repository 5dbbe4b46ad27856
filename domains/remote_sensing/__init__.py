"""Remote-sensing domain: GeoTIFF reading and tiling, OpenStreetMap captions, scene datasets.

Its packages come with ``pip install "facetvlp[remote-sensing]"``. Importing it registers the
`facetvlp inspect` summarisers for rasters and OSM files at once, and its datasets, samplers,
knowledge and writers on the first registry lookup (`facetvlp.domains.defer_types`).
"""

from facetvlp.domains import defer_types, extra_guard, require_extra

require_extra("remote_sensing")
with extra_guard("remote_sensing"):
    from . import osm_inspect, raster_inspect  # noqa: F401  (rasterio / osmium only: no torch)

defer_types("remote_sensing", (
    "geotiff", "samplers", "scene_dataset", "writers",  # GeoTIFF reading, samplers, scene/tile datasets, writers
    "caption_dataset", "knowledge", "knowledge_dataset", "pairs",  # OSM captions, pairs, caption datasets, scene knowledge
    "colour_mask_dataset", "seg_dataset", "seg_labels",  # segmentation: label rasters, footprints, colour masks
    "box_dataset",  # grounding: footprint boxes on chips
))
