"""Medical domain: DICOM reading, reports, knowledge and chest X-ray datasets."""

from . import dicom_read, dicom_inspect  # noqa: F401  (DICOM side: reader, inspector)
from . import knowledge, reports, umls  # noqa: F401  (reports, UMLS index, CXRKnowledge registration)
