"""precision="auto" (the default) picks bf16 only where the device computes it natively: CUDA with
bf16 support, CPUs with AMX or AVX-512-BF16; the choice and its reason are logged and written into
the run's config.py; an explicit bf16 on a CPU that emulates it warns with the measured cost."""

import logging

import pytest
import torch
from mmengine.config import Config

import facetvlp.core  # noqa: F401
from facetvlp.core.config import load_config
from facetvlp.core.engine import precision, train
from facetvlp.core.engine.options import EngineOptions

from engine_support import REPO, write_config

CPU = torch.device("cpu")
AVX2_ONLY = "processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu avx2\n"
SAPPHIRE = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile amx_bf16\n"


def test_cpuinfo_flags_are_read(tmp_path):
    (tmp_path / "avx2").write_text(AVX2_ONLY)
    (tmp_path / "amx").write_text(SAPPHIRE)
    assert precision.cpu_bf16_flags(tmp_path / "avx2") == []
    assert precision.cpu_bf16_flags(tmp_path / "amx") == ["amx_bf16", "avx512_bf16"]
    assert precision.cpu_bf16_flags(tmp_path / "absent") is None


@pytest.mark.parametrize("flags, expected", [(["avx512_bf16"], "bf16"), ([], "fp32"), (None, "fp32")])
def test_auto_on_cpu_follows_the_probe(monkeypatch, flags, expected):
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: flags)
    chosen, reason = precision.resolve_precision("auto", CPU)
    assert chosen == expected and reason.startswith("auto: ")
    assert precision.resolve_precision("fp32", CPU)[0] == "fp32"


def test_auto_on_cuda_follows_bf16_support(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Some GPU")
    for supported, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, s=supported, **k: s)
        assert precision.resolve_precision("auto", torch.device("cuda", 0))[0] == expected


def test_explicit_bf16_on_an_emulating_cpu_warns_with_the_measured_cost(monkeypatch, caplog):
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: [])
    with caplog.at_level(logging.WARNING):
        chosen, reason = precision.resolve_precision("bf16", CPU)
        precision.report_precision("bf16", CPU, chosen, reason)
    assert chosen == "bf16"
    assert "17x slower" in caplog.text and "10.8" in caplog.text and "0.64" in caplog.text
    caplog.clear()
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ["amx_bf16"])
    with caplog.at_level(logging.WARNING):
        precision.report_precision("bf16", CPU, *precision.resolve_precision("bf16", CPU))
    assert "17x" not in caplog.text


def test_auto_is_the_default():
    assert EngineOptions().precision == "auto"
    assert Config.fromfile(str(REPO / "configs/_base_/default_runtime.py")).engine.precision == "auto"


@pytest.mark.parametrize("flags, expected", [(["amx_bf16"], "bf16"), ([], "fp32")])
def test_the_run_logs_and_dumps_what_auto_became(tmp_path, monkeypatch, flags, expected):
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: flags)
    work_dir = tmp_path / "run"
    train(load_config(write_config(tmp_path, work_dir, batch=8, steps=1), ["engine.precision=auto"]))
    dumped = Config.fromfile(str(work_dir / "config.py")).engine
    assert dumped.precision == "auto" and dumped.precision_resolved == expected
    assert dumped.precision_reason.startswith("auto: CPU has")
    assert f"precision {expected} (auto: CPU has" in (work_dir / "run.log").read_text()


@pytest.mark.parametrize("chosen, param_dtype", [("bf16", torch.bfloat16), ("fp32", None)])
def test_fsdp_takes_a_mixed_precision_policy_under_bf16(tmp_path, monkeypatch, chosen, param_dtype):
    import torch.distributed.device_mesh
    import torch.distributed.fsdp

    from facetvlp.core.engine.launch import Placement
    from facetvlp.core.engine.trainer import TrainModule, wrap_parallel
    from facetvlp.core.registry import LOSSES, MODELS, build

    policies = []  # what every fully_shard call received (two processes are not needed for that)
    monkeypatch.setattr(torch.distributed.device_mesh, "init_device_mesh", lambda *a, **k: "mesh")
    monkeypatch.setattr(torch.distributed.fsdp, "fully_shard",
                        lambda module, mesh, mp_policy: policies.append(mp_policy))
    config = load_config(write_config(tmp_path, tmp_path / "run", batch=8, steps=1))
    module = TrainModule(build(MODELS, config.model), build(LOSSES, config.loss))
    wrap_parallel(module, Placement(0, 2, 0, CPU), EngineOptions(strategy="fsdp"), chosen)
    assert len(policies) > 12  # every ViT and MiniLM block, and the whole module
    for policy in policies:
        assert policy.param_dtype == param_dtype
        assert policy.reduce_dtype == (torch.float32 if chosen == "bf16" else None)
