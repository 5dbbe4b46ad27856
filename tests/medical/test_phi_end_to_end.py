"""PHI end to end: identifiers planted in copies of real DICOM files must not appear anywhere that
`facetvlp inspect`, a training run and an evaluation over a manifest of those files produce -
neither in the captured output of the three commands nor in any byte of the work dir
(config dump, logs, metrics, plots, tensorboard events, safetensors checkpoints)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

REPO = Path(__file__).resolve().parents[2]
PLANTED = {
    "PatientName": "Wintergreen^Absalom",
    "PatientID": "MRN-55120347",
    "PatientBirthDate": "19380214",
    "AccessionNumber": "ACCN-40981276",
    "InstitutionName": "Saltmarsh Cottage Hospital",
    "InstitutionAddress": "17 Heronsgate Lane",
    "ReferringPhysicianName": "Halberd^Perpetua",
    "OtherPatientIDs": "ALT-ID-83302",
    "StudyID": "STUDY-7741",
}
# Real DICOMs of different kinds: CT, MR, and JPEG-compressed colour; all ship with pydicom.
SOURCES = ("CT_small.dcm", "MR_small.dcm", "SC_rgb_jpeg_dcmtk.dcm", "JPEG2000.dcm")
REPORTS = ("FINDINGS: Mild cardiomegaly. No pleural effusion. IMPRESSION: Cardiomegaly.",
           "FINDINGS: Lungs are clear. IMPRESSION: No acute cardiopulmonary abnormality.")


def identifiers(datasets) -> list[bytes]:
    secrets = set(PLANTED.values())
    for value in PLANTED.values():  # name parts and bare numbers leak too
        secrets.update(part for part in value.replace("^", " ").split() if len(part) > 3)
    secrets.update({"55120347", "40981276", "19380214"})
    for ds in datasets:
        secrets.update({ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID})
    return sorted(s.encode() for s in secrets)


def run_cli(*args: str, env: dict) -> str:
    done = subprocess.run([sys.executable, "-m", "facetvlp.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout + done.stderr


CONFIG = """
model = dict(
    type="ContrastiveModel",
    towers=dict(
        image=dict(type="TimmVisionTower", name="resnet10t", in_chans=1),
        text=dict(type="ScratchTextTower", tokenizer_file={tokenizer!r}, corpus_files=[{corpus!r}],
                  vocab_size=300, width=32, depth=1, heads=2, max_length=32),
    ),
    embed_dim=32,
)
loss = dict(type="MultiPositiveLoss")
_data = dict(type="CXRManifestDataset", manifest={eval_manifest!r}, image_size=32, channels=1, text="report",
             classes=["Cardiomegaly", "No Finding"])
train_data = dict(dataset=dict(_data, manifest={train_manifest!r}, on_error="skip"), batch_size=4, num_workers=0)
eval = [dict(type="ZeroShotClassification", dataset=_data, knowledge=dict(type="CXRKnowledge")),
        dict(type="Retrieval", dataset=_data)]
optim = dict(lr=1e-3)
schedule = dict(max_steps=3, warmup_steps=1)
engine = dict(precision="fp32", threads=1, log_every=1, seed=0, tensorboard=True)
work_dir = {work_dir!r}
"""


@pytest.mark.slow
def test_planted_identifiers_never_leave_the_dicom_files(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    planted, rows = [], []
    for index, name in enumerate(SOURCES):
        ds = pydicom.dcmread(get_testdata_file(name))
        for keyword, value in PLANTED.items():
            setattr(ds, keyword, value)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(data / f"image_{index}.dcm")
        planted.append(ds)
        rows.append([f"image_{index}.dcm", REPORTS[index % 2], "Cardiomegaly" if index % 2 == 0 else "No Finding"])
    # the training manifest also lists a broken file: on_error="skip" absorbs it, and its error
    # message goes to the logs, which must stay clean too
    (data / "broken.dcm").write_bytes(b"DICM" * 8)
    for name, listed in (("train.csv", rows + [["broken.dcm", REPORTS[0], "Cardiomegaly"]]), ("eval.csv", rows)):
        with open(data / name, "w", newline="") as handle:
            csv.writer(handle).writerows([["path", "report", "labels"], *listed])
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(REPORTS * 20))
    work_dir = tmp_path / "work"
    config = tmp_path / "phi_config.py"
    config.write_text(CONFIG.format(tokenizer=str(tmp_path / "bpe.json"), corpus=str(corpus),
                                    train_manifest=str(data / "train.csv"), eval_manifest=str(data / "eval.csv"),
                                    work_dir=str(work_dir)))

    env = dict(os.environ, FACETVLP_PHI_SALT="phi-end-to-end", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONUNBUFFERED="1")
    output = ""
    for index in (0, 2):  # a CT and a JPEG-compressed colour image
        output += run_cli("inspect", str(data / f"image_{index}.dcm"), env=env)
    output += run_cli("train", str(config), env=env)
    output += run_cli("eval", str(config), "--checkpoint", str(work_dir), "--work-dir", str(work_dir / "eval"),
                      env=env)

    # the runs really happened and really saw the files
    assert (work_dir / "metrics.json").is_file() and list((work_dir / "checkpoints").glob("*.safetensors"))
    assert (work_dir / "eval" / "metrics.json").is_file()
    assert "zeroshot/top1" in (work_dir / "eval" / "metrics.json").read_text()
    assert "CT" in output  # inspect printed the modality

    secrets = identifiers(planted)
    leaks = [(secret.decode(), "command output") for secret in secrets if secret in output.encode()]
    files = [p for p in work_dir.rglob("*") if p.is_file()]
    assert len(files) >= 5
    for path in files:
        content = path.read_bytes()
        leaks += [(secret.decode(), str(path.relative_to(work_dir))) for secret in secrets if secret in content]
    assert not leaks, f"identifiers leaked: {leaks}"
