"""Patient identifiers: which DICOM attributes carry them, and how to refer to a study without them.

facetvlp never copies an identifying attribute out of a DICOM file. Readers build their metadata
from an allow-list (see ``dicom_read.safe_meta``); this module holds the deny-list used to *report*
that identifiers are present (by keyword only, never by value), the salted one-way keys that let
a user group images by study or series without carrying the UIDs (salted as in
:mod:`facetvlp.core.privacy`, which also keys file paths), and a log filter that keeps
pydicom's warnings (which quote element values) from echoing identifiers into training logs.

The keyword list follows the attributes that DICOM PS3.15 Annex E (Basic Application Level
Confidentiality Profile) marks for removal or replacement that are common in radiographs, CT and MR.
"""

from __future__ import annotations

import logging
import re

from facetvlp.core.privacy import salted_key

#: Attributes that identify a patient, a clinician, an institution or a specific study instance.
IDENTIFYING_KEYWORDS: tuple[str, ...] = (
    # the patient
    "PatientName", "PatientID", "IssuerOfPatientID", "OtherPatientIDs", "OtherPatientIDsSequence",
    "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName", "PatientBirthDate",
    "PatientBirthTime", "PatientAddress", "PatientTelephoneNumbers", "MedicalRecordLocator",
    "PatientInsurancePlanCodeSequence", "MilitaryRank", "BranchOfService", "EthnicGroup",
    "Occupation", "PatientReligiousPreference", "PatientComments", "AdditionalPatientHistory",
    "CountryOfResidence", "RegionOfResidence", "ResponsiblePerson", "ResponsibleOrganization",
    # the visit and the request
    "AccessionNumber", "StudyID", "AdmissionID", "RequestAttributesSequence",
    "ReferringPhysicianName", "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers",
    "PhysiciansOfRecord", "PerformingPhysicianName", "NameOfPhysiciansReadingStudy",
    "RequestingPhysician", "OperatorsName", "ScheduledPerformingPhysicianName",
    "ContentCreatorName", "VerifyingObserverName", "PersonName",
    # the place and the device
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName",
    "DeviceSerialNumber",
    # dates and times that pin down the visit
    "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "StudyTime", "SeriesTime",
    "AcquisitionTime", "ContentTime", "AcquisitionDateTime", "InstanceCreationDate",
    # instance UIDs: unique per study, so they link back to the hospital's records
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID",
    "MediaStorageSOPInstanceUID", "InstanceCreatorUID", "IrradiationEventUID",
)


def identifying_attributes_present(ds) -> list[str]:
    """Keywords (never values) of the identifying attributes that ``ds`` holds, for reports."""
    return [kw for kw in IDENTIFYING_KEYWORDS if kw in ds]


def pseudonymous_key(uid: str | None, kind: str) -> str | None:
    """Salted one-way key of a UID (see :func:`facetvlp.core.privacy.salted_key`): equal UIDs give
    equal keys, the UID cannot be recovered. ``kind`` ("study", "series") keeps kinds apart."""
    if not uid:
        return None
    return salted_key(str(uid), kind)


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


class RedactQuotedValues(logging.Filter):
    """Blank out quoted values in pydicom's log records ("Invalid value for VR PN: 'Doe^John'")."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = _QUOTED.sub("'<redacted>'", message)
        record.args = None
        return True


def install_pydicom_log_redaction() -> None:
    """Attach the redaction filter to pydicom's logger once (idempotent)."""
    logger = logging.getLogger("pydicom")
    if not any(isinstance(f, RedactQuotedValues) for f in logger.filters):
        logger.addFilter(RedactQuotedValues())
