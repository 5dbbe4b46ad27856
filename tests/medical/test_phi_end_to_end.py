"""PHI end to end, through the real CLI: patient identifiers planted in folder names, file names,
DICOM tags and report text must not appear in anything `facetvlp inspect`, `train` (with broken
files that `on_error="skip"` absorbs, and once with `on_error="raise"`), `eval` and the DICOM
cache produce - captured stdout/stderr, every byte and every file name of the work dirs
(config dump, log.jsonl, run.log, metrics, plots, TensorBoard events, safetensors checkpoints)
and of the cache - and the user must still find each broken file the documented way
(`facetvlp locate KEY FOLDER` with the key the log or error printed).
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

REPO = Path(__file__).resolve().parents[2]
NAME, MRN, BIRTH_DATE, ACCESSION = "Wintergreen^Absalom", "MRN55120347", "19380214", "ACC40981276"
PLANTED_TAGS = {
    "PatientName": NAME, "PatientID": MRN, "PatientBirthDate": BIRTH_DATE, "AccessionNumber": ACCESSION,
    "InstitutionName": "Saltmarsh Cottage Hospital", "ReferringPhysicianName": "Halberd^Perpetua",
    "OtherPatientIDs": "ALT-ID-83302", "StudyID": "STUDY-7741",
}
# Real DICOMs of different kinds (CT, MR, baseline-JPEG colour, JPEG 2000), all shipped with pydicom.
SOURCES = ("CT_small.dcm", "MR_small.dcm", "SC_rgb_jpeg_dcmtk.dcm", "JPEG2000.dcm")
# Report text that names the patient, as un-de-identified reports do.
REPORTS = (f"FINDINGS: Mild cardiomegaly. No pleural effusion. Discussed with Wintergreen Absalom "
           f"({MRN}, born {BIRTH_DATE}), accession {ACCESSION}. IMPRESSION: Cardiomegaly.",
           "FINDINGS: Lungs are clear. Patient Absalom Wintergreen tolerated the exam. "
           "IMPRESSION: No acute cardiopulmonary abnormality.")
CLASSES = ["Cardiomegaly", "No Finding"]


def secrets(uids: list[str]) -> list[str]:
    """Every planted identifier and the forms it takes in text: caret, space, URL-encoded, its
    parts, its bare digits, ISO date; and each UID whole and by its unique tail."""
    found = {NAME, NAME.replace("^", " "), quote(NAME), "Wintergreen", "Absalom", MRN, "55120347",
             BIRTH_DATE, "1938-02-14", ACCESSION, "40981276", "Saltmarsh", "Halberd", "Perpetua",
             "ALT-ID-83302", "STUDY-7741", "Wintergreen_Absalom"}
    for uid in uids:
        found.update({uid, uid.rsplit(".", 1)[-1]})  # pydicom UIDs share a root; the tail is unique
    return sorted(found, key=len, reverse=True)


def leaks_in(blob: bytes, where: str, uids: list[str]) -> list[tuple[str, str]]:
    lowered = blob.lower()
    return [(secret, where) for secret in secrets(uids) if secret.lower().encode() in lowered]


def cli(*args: str, env: dict, expect: int = 0) -> str:
    done = subprocess.run([sys.executable, "-m", "facetvlp.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == expect, (args, done.stdout[-2000:] + done.stderr[-4000:])
    return done.stdout + done.stderr


def plant(source: str, study: Path, study_uid: str) -> tuple[Path, list[str]]:
    """A copy of a real DICOM with identifiers in its tags, stored as study/<series UID>/<SOP UID>.dcm."""
    ds = pydicom.dcmread(get_testdata_file(source))
    for keyword, value in PLANTED_TAGS.items():
        setattr(ds, keyword, value)
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study_uid, generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path = study / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"
    path.parent.mkdir(parents=True)
    ds.save_as(path)
    return path, [ds.SeriesInstanceUID, ds.SOPInstanceUID]


def build_data(tmp_path: Path):
    data = tmp_path / "data"
    patient = data / f"{NAME}_{MRN}"  # the export's folders: patient, then accession and birth date
    study = patient / f"{ACCESSION} {BIRTH_DATE}"
    study_uid = generate_uid()
    uids, good = [study_uid], []
    for source in SOURCES:
        path, file_uids = plant(source, study, study_uid)
        good.append(path)
        uids += file_uids
    # broken files among them: a truncated copy (its header, with every identifier, still parses),
    # bytes that are no DICOM at all, a PNG that is not a PNG; all named by UIDs / the accession
    truncated = study / good[0].parent.name / f"{generate_uid()}.dcm"
    truncated.write_bytes(good[0].read_bytes()[:-3000])
    garbage = study / f"{generate_uid()}.dcm"
    garbage.write_bytes(bytes(range(256)) * 4)
    bad_png = study / f"{ACCESSION}_{BIRTH_DATE}.png"
    bad_png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    broken = [truncated, garbage, bad_png]
    uids += [truncated.stem, garbage.stem]
    rows = [[str(p.relative_to(patient)), REPORTS[i % 2], CLASSES[i % 2]] for i, p in enumerate(good + broken)]
    rows.append([f"{ACCESSION} {BIRTH_DATE}/{generate_uid()}.dcm", REPORTS[0], CLASSES[0]])  # missing
    uids.append(Path(rows[-1][0]).stem)
    with open(data / "manifest.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["path", "report", "labels"], *rows])
    return data, patient, good, broken, uids


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
# the data root is the patient's folder: the run's config dump and checkpoints must not name it
_data = dict(type="CXRManifestDataset", manifest={manifest!r}, root={root!r}, image_size=32, channels=1,
             text="report", classes={classes!r}, on_error="skip")
train_data = dict(dataset=_data, batch_size=7, num_workers=1)
eval = [dict(type="ZeroShotClassification", dataset=_data, knowledge=dict(type="CXRKnowledge")),
        dict(type="Retrieval", dataset=_data)]
optim = dict(lr=1e-3)
schedule = dict(max_steps=2, warmup_steps=1)
engine = dict(precision="fp32", threads=1, log_every=1, seed=0, tensorboard=True)
work_dir = {work_dir!r}
"""


def in_process(capfd, *args: str, expect: int = 0) -> str:
    """The same `facetvlp` entry point in this process (each CLI start imports every domain: slow)."""
    from facetvlp.cli import main

    assert main(list(args)) == expect
    out, err = capfd.readouterr()
    return out + err


def keys_in(output: str) -> set[str]:
    return set(re.findall(r"file ([0-9a-f]{16})", output))


@pytest.mark.slow
def test_planted_identifiers_never_leave_the_data_and_broken_files_stay_findable(tmp_path, monkeypatch, capfd,
                                                                                 caplog):
    data, patient, good, broken, uids = build_data(tmp_path)
    corpus = tmp_path / "corpus.txt"  # the tokenizer learns from de-identified text (see docs/medical.md)
    corpus.write_text("\n".join(["FINDINGS: Mild cardiomegaly. No pleural effusion.",
                                 "Lungs are clear. No acute cardiopulmonary abnormality."] * 20))
    work_dir = tmp_path / "work"
    config = tmp_path / "phi_config.py"
    config.write_text(CONFIG.format(tokenizer=str(tmp_path / "bpe.json"), corpus=str(corpus),
                                    manifest=str(data / "manifest.csv"), root=str(patient),
                                    classes=CLASSES, work_dir=str(work_dir)))
    env = dict(os.environ, FACETVLP_PHI_SALT="phi-end-to-end", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")

    trained = cli("train", str(config), env=env)
    evaluated = cli("eval", str(config), "--checkpoint", str(work_dir), "--work-dir", str(work_dir / "eval"),
                    env=env)
    stopped = cli("train", str(config), "--work-dir", str(tmp_path / "raise"), "--set",
                  "train_data.dataset.on_error=raise", "--set", "train_data.num_workers=0", env=env, expect=2)
    monkeypatch.setenv("FACETVLP_PHI_SALT", env["FACETVLP_PHI_SALT"])
    inspected = in_process(capfd, "inspect", str(good[0]))  # a good CT
    # truncated: a header summary, no pixels, and a one-line error that names the file by key
    truncated = in_process(capfd, "inspect", str(broken[0]), expect=2)
    inspected += truncated
    refused = in_process(capfd, "inspect", str(broken[1]), expect=2)  # not DICOM: a one-line error

    # the DICOM cache, over the same patient-named files
    from facetvlp.domains.medical.cache import CachedLoadDicomd

    load = CachedLoadDicomd(cache_dir=tmp_path / "cache", size=32)
    for path in good:
        load({"image": str(path)})

    output = inspected + refused + trained + evaluated + stopped + caplog.text
    leaks = leaks_in(output.encode(), "command output", uids)
    written = [p for folder in (work_dir, tmp_path / "raise", tmp_path / "cache") for p in folder.rglob("*")]
    assert len([p for p in written if p.is_file()]) >= 10
    for path in written:
        where = str(path.relative_to(tmp_path))
        leaks += leaks_in(where.encode(), f"file name {where}", uids)
        if path.is_file():
            leaks += leaks_in(path.read_bytes(), where, uids)
    assert not leaks, f"identifiers leaked: {leaks}"

    # the commands really ran over these files
    assert '"modality": "CT"' in inspected and '"decodable": false' in inspected
    assert "PatientName" in inspected  # identifiers are reported by keyword, never by value
    assert refused.strip().count("\n") == 0 and "facetvlp inspect: error: file " in refused
    metrics = (work_dir / "metrics.json").read_text()
    assert '"train/skipped": 0' not in metrics and "zeroshot/top1" in metrics
    assert list((work_dir / "checkpoints").glob("*.safetensors")) and (work_dir / "eval" / "metrics.json").is_file()
    assert list((work_dir / "tensorboard").rglob("events.*"))
    run_log = (work_dir / "run.log").read_text()
    assert "skipping unreadable item" in run_log and "facetvlp locate" in run_log
    assert stopped.strip().splitlines()[-1].startswith("facetvlp train: error: file ") and "Traceback" not in stopped

    # ... and the user finds every broken file from what the run printed (the skip warnings in
    # run.log, the inspect error, the one-line error of the raising run) and the data root from
    # the config dump, with the documented command
    dumped = (work_dir / "config.py").read_text()
    root_keys = set(re.findall(r"<redacted path, file key ([0-9a-f]{16})>", dumped))
    printed = {"run.log": keys_in(run_log), "inspect": keys_in(refused + truncated), "raise": keys_in(stopped),
               "config.py": root_keys}
    assert all(printed.values()), printed
    found = in_process(capfd, "locate", *set().union(*printed.values()), str(data))
    path_of = dict(line.split("  ", 1) for line in found.splitlines())
    assert {path_of[key] for key in printed["run.log"]} == {str(p) for p in broken}
    assert {path_of[key] for key in printed["inspect"]} == {str(broken[0]), str(broken[1])}
    assert {path_of[key] for key in printed["raise"]} < {str(p) for p in broken}
    assert {path_of[key] for key in printed["config.py"]} == {str(patient), str(data / "manifest.csv")}
