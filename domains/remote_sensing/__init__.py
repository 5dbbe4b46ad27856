"""Remote-sensing domain: GeoTIFF reading and tiling, OpenStreetMap captions, scene datasets.

Importing it registers its datasets, samplers, knowledge and the `facetvlp inspect` summarisers
for rasters and OSM files.
"""

# GeoTIFF reading, samplers, scene/tile datasets, georeferenced writers, inspect
from . import geotiff, raster_inspect, samplers, scene_dataset, writers  # noqa: F401
# OSM captions, pairs, caption datasets, scene knowledge, OSM inspect
from . import caption_dataset, knowledge, knowledge_dataset, osm_inspect, pairs  # noqa: F401
# segmentation: label rasters / vector footprints on tiles, colour-coded masks
from . import colour_mask_dataset, seg_dataset, seg_labels  # noqa: F401
# grounding: footprint boxes on chips
from . import box_dataset  # noqa: F401
