"""Medical domain: DICOM reading, reports, knowledge and chest X-ray datasets."""

from . import cache, dicom_inspect, dicom_read, dicom_series, transforms  # noqa: F401  (DICOM side)
from . import datasets, knowledge, label_tables, reports, umls  # noqa: F401  (reports, UMLS, knowledge, CXR datasets)
from . import dicom_seg, mask_datasets, volume_datasets, volume_transforms  # noqa: F401  (segmentation: masks, volumes, DICOM-SEG)
