# rs-osm: OSM captions, pairs, caption datasets, scene knowledge, OSM inspect (register on import)
from . import caption_dataset, knowledge, osm_inspect, pairs  # noqa: F401
