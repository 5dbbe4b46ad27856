"""Medical domain: DICOM reading, reports, knowledge and chest X-ray datasets."""

from . import dicom_read, dicom_inspect, dicom_series, transforms  # noqa: F401  (DICOM side: reader, inspector, series, transforms)
from . import datasets, knowledge, label_tables, reports, umls  # noqa: F401  (reports, UMLS, knowledge, CXR datasets)
