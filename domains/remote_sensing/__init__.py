# rs-osm: OSM captions, pairs, caption datasets, scene knowledge, OSM inspect (register on import)
from . import caption_dataset, knowledge, osm_inspect, pairs  # noqa: F401
# rs-raster: GeoTIFF reading, samplers, scene/tile datasets, georeferenced writers, raster inspect
from . import geotiff, raster_inspect, samplers, scene_dataset, writers  # noqa: F401
