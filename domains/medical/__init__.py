"""Medical domain: DICOM reading, reports, knowledge and chest X-ray datasets."""

from . import cache, dicom_inspect, dicom_read, dicom_series, transforms  # noqa: F401  (DICOM side)
from . import datasets, knowledge, label_tables, reports, umls  # noqa: F401  (reports, UMLS, knowledge, CXR datasets)
