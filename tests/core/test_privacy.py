"""Naming files without their paths: ReadError messages, the dataset skip log, config redaction,
file keys and `facetvlp locate` (core/privacy.py, core/errors.py, core/data.py)."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle

import pytest

import facetvlp.core  # noqa: F401
from facetvlp.core.config import redacted
from facetvlp.core.datasets import SyntheticImageText
from facetvlp.core.errors import ReadError
from facetvlp.core.inspect import inspect_file
from facetvlp.core.privacy import file_key, locate, redact_data_paths
from facetvlp.core.registry import DATASETS

PATIENT = "DOE^JOHN_MRN12345"
UID_NAME = "1.2.826.0.1.3680043.8.498.1234567890.dcm"


@pytest.fixture(autouse=True)
def salt(monkeypatch):
    monkeypatch.setenv("FACETVLP_PHI_SALT", "privacy-test")


class PatientFolders(SyntheticImageText):
    """Synthetic items whose (pretend) files live in patient-named folders; item 2 is unreadable
    and its reader's own message quotes the path, as Pillow's does."""

    phi_paths = True

    def __init__(self, root: str | os.PathLike, classes=("a", "b"), **kwargs):
        super().__init__(**kwargs)
        self.root = root

    def load(self, index):
        if index == 2:
            path = os.path.join(self.root, PATIENT, UID_NAME)
            try:
                raise OSError(f"cannot identify image file {path!r}")
            except OSError as exc:
                raise ReadError(path, f"cannot decode ({exc})") from exc
        return super().load(index)


DATASETS.register_module(module=PatientFolders, force=True)


def test_key_is_the_salted_sha256_of_the_real_path(tmp_path):
    target = tmp_path / PATIENT / UID_NAME
    target.parent.mkdir()
    target.write_bytes(b"x")
    link = tmp_path / "link.dcm"
    link.symlink_to(target)
    expected = hashlib.sha256(b"privacy-test\x00file\x00" + str(target.resolve()).encode()).hexdigest()[:16]
    assert file_key(target) == file_key(link) == file_key(os.path.relpath(target)) == expected


def test_plain_read_errors_name_the_path_phi_ones_the_key_and_scrub_the_reason(tmp_path):
    path = str(tmp_path / PATIENT / UID_NAME)
    plain = ReadError(path, "truncated")
    assert str(plain) == f"{path}: truncated"
    phi = ReadError(path, f"cannot identify image file '{path}' ({UID_NAME})", phi_paths=True)
    assert str(phi) == f"file {file_key(path)}: cannot identify image file '<file>' (<file>)"
    assert phi.path == path  # programs still get the path
    copy = pickle.loads(pickle.dumps(phi))  # DataLoader workers and spawn pickle errors
    assert str(copy) == str(phi) and copy.path == path


def test_phi_dataset_errors_carry_no_path_and_no_chained_cause(tmp_path):
    data = PatientFolders(root=str(tmp_path), size=6, image_size=8)
    with pytest.raises(ReadError) as caught:
        data[2]
    message = str(caught.value)
    assert message.startswith(f"file {file_key(caught.value.path)}: cannot decode")
    assert "DOE" not in message and "3680043" not in message and str(tmp_path) not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # the OSError quoted the path


def test_skip_log_names_the_key_and_how_to_find_the_file(tmp_path, caplog):
    data = PatientFolders(root=str(tmp_path), size=6, image_size=8, on_error="skip")
    with caplog.at_level(logging.WARNING):
        assert data[2]["meta"]["index"] == 3
    key = file_key(tmp_path / PATIENT / UID_NAME)
    assert f"skipping unreadable item 2: ReadError: file {key}: cannot decode" in caplog.text
    assert f"facetvlp locate {key} DATA_FOLDER" in caplog.text
    assert "DOE" not in caplog.text and "3680043" not in caplog.text


def test_all_bad_error_stays_phi(tmp_path):
    class AllBad(PatientFolders):
        def load(self, index):
            raise ReadError(os.path.join(self.root, PATIENT, f"{index}.dcm"), "truncated")

    with pytest.raises(ReadError, match="unreadable items in a row") as caught:
        AllBad(root=str(tmp_path), size=4, image_size=8, on_error="skip")[0]
    assert PATIENT not in str(caught.value)


def test_locate_finds_files_and_folders_by_key(tmp_path):
    folder = tmp_path / PATIENT
    folder.mkdir()
    (folder / UID_NAME).write_bytes(b"x")
    (folder / "other.dcm").write_bytes(b"y")
    wanted = [file_key(folder / UID_NAME), "file:" + file_key(folder), "0123456789abcdef"]
    assert sorted(path for _, path in locate(wanted, tmp_path)) == [str(folder), str(folder / UID_NAME)]


def test_cli_locate_prints_the_match_and_fails_on_unknown_keys(tmp_path, capsys):
    from facetvlp.cli import main

    (tmp_path / PATIENT).mkdir()
    (tmp_path / PATIENT / UID_NAME).write_bytes(b"x")
    key = file_key(tmp_path / PATIENT / UID_NAME)
    assert main(["locate", key, str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"{key}  {tmp_path / PATIENT / UID_NAME}\n"
    assert main(["locate", "0123456789abcdef", str(tmp_path)]) == 2
    assert "no file or folder" in capsys.readouterr().err


def test_config_redaction_covers_phi_datasets_only_and_path_arguments_only(tmp_path):
    root = str(tmp_path / PATIENT)
    phi = dict(type="PatientFolders", root=root, classes=["Nodule/Mass"], size=4)
    cfg = {"train_data": {"dataset": phi}, "eval": [dict(type="X", dataset=dict(phi))],
           "other": dict(type="SyntheticImageText", size=4), "work_dir": "w"}
    out = redact_data_paths(cfg)
    tag = f"<redacted path, file key {file_key(root)}>"
    assert out["train_data"]["dataset"]["root"] == tag and out["eval"][0]["dataset"]["root"] == tag
    assert out["train_data"]["dataset"]["classes"] == ["Nodule/Mass"]  # not a path argument
    assert out["other"] == cfg["other"] and out["work_dir"] == "w"
    assert cfg["train_data"]["dataset"]["root"] == root  # the run's own config is untouched
    from mmengine.config import Config

    dumped = tmp_path / "dump.py"
    redacted(Config(cfg)).dump(str(dumped))
    assert PATIENT not in dumped.read_text() and tag in dumped.read_text()


def test_inspect_names_an_unclaimed_or_missing_file_by_key(tmp_path):
    notes = tmp_path / PATIENT / "notes.unclaimed"  # a suffix no domain registers
    notes.parent.mkdir()
    notes.write_text("FINDINGS: clear.")
    for path in (notes, tmp_path / PATIENT / UID_NAME):
        with pytest.raises(ReadError) as caught:
            inspect_file(path)
        assert str(caught.value).startswith(f"file {file_key(path)}: ") and "DOE" not in str(caught.value)
