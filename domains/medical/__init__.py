"""Medical domain: DICOM reading, reports, knowledge and chest X-ray datasets.

Its packages come with ``pip install "facetvlp[medical]"``. Importing it registers the DICOM
`facetvlp inspect` summariser at once and the rest of its types (datasets, transforms,
knowledge) on the first registry lookup (`facetvlp.domains.defer_types`).
"""

from facetvlp.domains import defer_types, extra_guard, require_extra

require_extra("medical")
with extra_guard("medical"):
    from . import dicom_inspect  # noqa: F401  (pydicom only: no torch, no MONAI)

defer_types("medical", (
    "cache", "dicom_read", "dicom_series", "transforms",  # DICOM side
    "datasets", "knowledge", "label_tables", "reports", "umls",  # reports, UMLS, knowledge, CXR datasets
    "dicom_seg", "mask_datasets", "volume_datasets", "volume_transforms",  # segmentation: masks, volumes, DICOM-SEG
))
