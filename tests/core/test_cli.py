"""The CLI: exit code 0 on success, 2 with a one-line reason on a user error."""

import json
import subprocess

from engine_support import REPO, cli, env


def facetvlp(*args):
    return subprocess.run(cli(*args), env=env(), capture_output=True, text=True, timeout=600, cwd=REPO)


def test_info_lists_versions_and_every_registry():
    result = facetvlp("info")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert "CLIPLoss" in info["registered"]["loss"]
    assert "TimmVisionTower" in info["registered"]["tower"]
    assert "ZeroShotClassification" in info["registered"]["evaluator"]
    assert info["versions"]["torch"]


def test_user_errors_exit_2_with_one_line(tmp_path):
    missing = facetvlp("inspect", str(tmp_path / "nothing.dcm"))
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and "no such file" in missing.stderr

    config = tmp_path / "bad.py"
    config.write_text("model = dict(type='ContrastiveModle', towers=dict())\nloss = dict(type='CLIPLoss')\n"
                      "train_data = dict(dataset=dict(type='SyntheticImageText'))\n")
    bad_type = facetvlp("train", str(config), "--work-dir", str(tmp_path / "w"))
    assert bad_type.returncode == 2
    assert "bad.py: model: unknown model type 'ContrastiveModle'" in bad_type.stderr
    assert "did you mean 'ContrastiveModel'" in bad_type.stderr

    corrupt = tmp_path / "ckpt.safetensors"
    corrupt.write_bytes(b"\x00" * 100)
    synthetic = str(REPO / "configs/synthetic_tiny.py")
    bad_ckpt = facetvlp("eval", synthetic, "--checkpoint", str(corrupt), "--work-dir", str(tmp_path / "e"))
    assert bad_ckpt.returncode == 2 and "ckpt.safetensors" in bad_ckpt.stderr
