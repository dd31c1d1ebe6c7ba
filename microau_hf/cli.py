"""`microau`: one subcommand per job. Errors are one line on stderr and a non-zero exit, never a traceback.

    microau quickstart                                   the main job on the built-in synthetic corpus
    microau synth --out DIR                              build the synthetic corpus
    microau convert casme2 --root RAW --out DIR          convert a licensed corpus to `datasets`
    microau train --data DIR --output-dir DIR            train (Accelerate; `accelerate launch scripts/train.py` for many GPUs)
    microau evaluate --data DIR --output-dir DIR         LOSO / leave-one-corpus-out, per-AU F1 table
    microau predict --model DIR --onset A --apex B       AU probabilities for a pair, a folder or a video
    microau push --model DIR --repo-id ORG/NAME          publish a checkpoint to the Hub
    microau space --model DIR                            run the Gradio demo locally
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

# Failures a user can fix: reported as one line. Anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError, KeyError, OSError,
                                                ImportError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError)


def _user_errors() -> tuple[type[BaseException], ...]:
    """The error types a user's input can cause, mapped to one line and exit 2 (safetensors' only once loaded)."""
    safetensors = sys.modules.get("safetensors")
    return USER_ERRORS + ((safetensors.SafetensorError,) if safetensors is not None else ())


def _quickstart(args: argparse.Namespace) -> None:
    from . import quickstart

    quickstart.run(quickstart.from_arguments(args))


def _check_faces(dataset, folder: Path) -> None:
    """The face pipeline's check of a new corpus, once: refused samples listed in its face report, the detections
    cached beside it for training."""
    from .data.corpus_faces import check_corpus_faces, write_face_report

    faces = check_corpus_faces(dataset, name=str(folder))
    print(f"{faces.summary(str(folder))} (details: {write_face_report(faces, folder, str(folder))})")


def _synth(args: argparse.Namespace) -> None:
    from .data.synthetic import make_synthetic_corpus

    dataset = make_synthetic_corpus(args.out, num_samples=args.num_samples, seed=args.seed, aus=args.aus,
                                    amplitude_px=tuple(args.amplitude), overwrite=args.overwrite, progress=True)
    print(f"wrote {len(dataset)} samples of {len(set(dataset['subject']))} subjects to {args.out}")
    _check_faces(dataset, args.out)
    if args.contact_sheet:
        from .data.contact_sheet import draw_contact_sheet

        draw_contact_sheet(dataset).save(args.contact_sheet)
        print(f"contact sheet: {args.contact_sheet}")


def _convert(args: argparse.Namespace) -> None:
    from datasets import load_from_disk

    from .data.converters import convert_corpus

    report = convert_corpus(args.corpus, args.root, args.out, with_frames=args.with_frames, cropped=args.cropped,
                            annotation=args.annotation, overwrite=args.overwrite)
    print(report.summary())
    dataset = load_from_disk(str(args.out))
    if not args.cropped:  # crops are pre-aligned (template regions); whole frames go through the face pipeline once
        _check_faces(dataset, args.out)
    if args.push_to_hub:
        dataset.push_to_hub(args.push_to_hub, private=args.private)
        print(f"pushed to https://huggingface.co/datasets/{args.push_to_hub}")


def _train(args: argparse.Namespace) -> None:
    from .train.loop import LoopSettings, train

    settings = LoopSettings(data=args.data, output_dir=args.output_dir, aus=args.aus, preset=args.preset,
                            model=args.model, clip=args.clip, epochs=args.epochs, max_steps=args.max_steps,
                            batch_size=args.batch_size, learning_rate=args.learning_rate,
                            gradient_accumulation_steps=args.gradient_accumulation_steps,
                            mixed_precision=args.mixed_precision, save_steps=args.save_steps,
                            resume_from=args.resume_from, config_overrides=args.config, seed=args.seed,
                            pre_aligned=args.pre_aligned)
    print(f"final model: {train(settings)}")


def _evaluate(args: argparse.Namespace) -> None:
    from .data.schema import load_dataset_folder
    from .face.pipeline import build_processor
    from .presets import make_config
    from .train.loso import ProtocolSettings, run_protocol
    from .train.metrics import markdown_table
    from .train.plots import plot_per_au_f1

    dataset = load_dataset_folder(args.data)
    if Path(args.output_dir).exists() and not Path(args.output_dir).is_dir():
        raise NotADirectoryError(f"{args.output_dir}: exists and is a file; --output-dir must be a folder")
    config = make_config(args.aus, preset=args.preset, **args.config)
    settings = ProtocolSettings(protocol=args.protocol, max_folds=args.max_folds, epochs=args.epochs,
                                batch_size=args.batch_size, learning_rate=args.learning_rate, threshold=args.threshold,
                                seed=args.seed, pre_aligned=args.pre_aligned)
    results = run_protocol(dataset, config, build_processor(config), args.output_dir, settings,
                           save_model_to=Path(args.output_dir) / "checkpoint" if args.save_model else None)
    print(markdown_table(results["scores"], f"{results['protocol']} on {args.data}"))
    for kind, row in results["emotion"].items():
        print(f"label-free {kind.replace('_', ' ')}: UF1 {row['uf1']:.3f}  UAR {row['uar']:.3f}")
    print(f"plot: {plot_per_au_f1(results, Path(args.output_dir) / 'per_au_f1.png')}")


def _predict(args: argparse.Namespace) -> int:
    from .inference import MicroAUPredictor, save_results

    if args.onset and not args.apex:
        raise ValueError("--onset needs --apex")
    predictor = MicroAUPredictor.from_pretrained(args.model, threshold=args.threshold,
                                                 landmarker=None if args.pre_aligned else "auto")
    if args.video:
        result = predictor.predict_video(args.video, every_frame=args.every_frame, batch_size=args.batch_size,
                                         max_seconds=args.max_seconds)
        failed = []
    else:
        if args.folder:
            result = predictor.predict_folder(args.folder, batch_size=args.batch_size)
        else:
            result = [predictor.predict_pair(args.onset, args.apex)]
        failed = [item for item in result if not item.ok]
    if args.out:
        print(f"wrote {save_results(result, args.out)}")
    else:
        payload = result.to_dict() if args.video else [item.to_dict() for item in result]
        print(json.dumps(payload, indent=2))
    if failed and len(failed) == len(result):
        raise ValueError(failed[0].message)  # nothing could be scored: one error line
    for item in failed:  # the good items are written above; the bad ones are listed, and the exit says so
        print(f"microau predict: {item.name}: {item.message}", file=sys.stderr)
    return 1 if failed else 0


def _push(args: argparse.Namespace) -> None:
    from .hub import push_checkpoint

    url = push_checkpoint(args.model, args.repo_id, private=args.private, token=args.token,
                          base_model=args.base_model, commit_message=args.message)
    print(f"pushed: {url}")


def _space(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "spaces_app"))
    try:
        from app import main as space_main  # the Space's own entry point, the same file the Hub runs
    except ImportError as error:
        raise ImportError(f"the Space needs its extra: pip install 'micro-au-clip[space]' ({error})") from error
    space_main(model=args.model, port=args.port, host=args.host)


def _json_object(text: str) -> dict:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"use_gda\": false}'")
    return value


PRE_ALIGNED_HELP = ("the frames are already aligned face crops (e.g. CASME II's Cropped release): no face detection, "
                    "canonical template regions; predict such crops with the same setting")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="microau", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from .quickstart import add_arguments as add_quickstart_arguments

    quick = commands.add_parser("quickstart", help="synthetic corpus -> LOSO training -> F1 table, plot, checkpoint")
    add_quickstart_arguments(quick)
    quick.set_defaults(handler=_quickstart)

    synth = commands.add_parser("synth", help="build the synthetic corpus from real, freely licensed faces")
    synth.add_argument("--out", required=True, type=Path)
    synth.add_argument("--num-samples", type=int, default=480)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--aus", default="casme2", help="AU set name or comma-free list via a named set")
    synth.add_argument("--amplitude", type=float, nargs=2, default=(1.0, 2.5), metavar=("LOW", "HIGH"),
                       help="motion amplitude in pixels at an interocular distance of ~40 px")
    synth.add_argument("--overwrite", action="store_true")
    synth.add_argument("--contact-sheet", type=Path, help="also save a contact sheet PNG here")
    synth.set_defaults(handler=_synth)

    convert = commands.add_parser("convert", help="convert a licensed corpus (CASME II, SAMM, CAS(ME)^3) to datasets")
    convert.add_argument("corpus", choices=["casme2", "samm", "casme3"])
    convert.add_argument("--root", required=True, type=Path, help="the corpus folder as distributed")
    convert.add_argument("--out", required=True, type=Path)
    convert.add_argument("--annotation", type=Path, help="the coding spreadsheet, if not in its usual place")
    convert.add_argument("--with-frames", action="store_true", help="store every frame from onset to offset")
    convert.add_argument("--cropped", action="store_true", help="CASME II: use the Cropped/ release")
    convert.add_argument("--overwrite", action="store_true",
                         help="replace an earlier conversion in --out (a folder holding other files is never replaced)")
    convert.add_argument("--push-to-hub", metavar="REPO", help="also publish the dataset (for your team)")
    convert.add_argument("--private", action="store_true")
    convert.set_defaults(handler=_convert)

    train = commands.add_parser("train", help="train with Accelerate (one process; see scripts/train.py for more)")
    train.add_argument("--data", required=True)
    train.add_argument("--output-dir", required=True)
    train.add_argument("--aus", default="casme2")
    train.add_argument("--preset", default="tiny")
    train.add_argument("--model", help="start from this Micro-AU CLIP checkpoint")
    train.add_argument("--clip", help="copy the towers from this CLIP checkpoint (Hub id or folder)")
    train.add_argument("--epochs", type=int, default=5)
    train.add_argument("--max-steps", type=int)
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--learning-rate", type=float, default=5e-4)
    train.add_argument("--gradient-accumulation-steps", type=int, default=1)
    train.add_argument("--mixed-precision", default="no", choices=["no", "fp16", "bf16"])
    train.add_argument("--save-steps", type=int, default=0)
    train.add_argument("--resume-from", help="a checkpoint folder, or 'latest'")
    train.add_argument("--config", type=_json_object, default={}, help="config overrides as JSON")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--pre-aligned", action="store_true", help=PRE_ALIGNED_HELP)
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("evaluate", help="LOSO or leave-one-corpus-out: train per fold, pooled per-AU F1")
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--output-dir", required=True)
    evaluate.add_argument("--protocol", default="loso", choices=["loso", "loco"])
    evaluate.add_argument("--max-folds", type=int, help="bound the number of folds for a quick run")
    evaluate.add_argument("--aus", default="casme2")
    evaluate.add_argument("--preset", default="tiny")
    evaluate.add_argument("--epochs", type=float, default=8.0)
    evaluate.add_argument("--batch-size", type=int, default=32)
    evaluate.add_argument("--learning-rate", type=float, default=1e-3)
    evaluate.add_argument("--threshold", default="fixed", choices=["fixed", "train"],
                          help="0.5, or per-AU best F1 on each training fold (never the test fold)")
    evaluate.add_argument("--config", type=_json_object, default={}, help="config overrides as JSON")
    evaluate.add_argument("--save-model", action="store_true", help="save the last fold's model as a checkpoint")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--pre-aligned", action="store_true", help=PRE_ALIGNED_HELP)
    evaluate.set_defaults(handler=_evaluate)

    predict = commands.add_parser("predict", help="AU probabilities and emotion for a pair, a folder of pairs, or a video")
    predict.add_argument("--model", required=True, help="checkpoint folder or Hub id")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--onset", help="onset image (with --apex)")
    source.add_argument("--folder", help="folder of pairs: NAME_onset.EXT + NAME_apex.EXT, or subfolders with onset.* and apex.*")
    source.add_argument("--video", help="a video; onset and apex are found in it")
    predict.add_argument("--apex", help="apex image (with --onset)")
    predict.add_argument("--every-frame", action="store_true", help="video: score every frame against the onset")
    predict.add_argument("--max-seconds", type=float, help="video: read at most this many seconds")
    predict.add_argument("--threshold", type=float, default=0.5)
    predict.add_argument("--pre-aligned", action="store_true", help=PRE_ALIGNED_HELP)
    predict.add_argument("--batch-size", type=int, default=16)
    predict.add_argument("--out", type=Path, help="write JSON or CSV (by extension); default: JSON to stdout")
    predict.set_defaults(handler=_predict)

    push = commands.add_parser("push", help="publish a checkpoint (safetensors, remote code, processor, model card)")
    push.add_argument("--model", required=True)
    push.add_argument("--repo-id", required=True, help="ORG/NAME")
    push.add_argument("--private", action="store_true")
    push.add_argument("--token", help="defaults to HF_TOKEN or the cached login")
    push.add_argument("--base-model", help="the CLIP checkpoint the towers came from, for the model card")
    push.add_argument("--message", default="Upload Micro-AU CLIP checkpoint")
    push.set_defaults(handler=_push)

    space = commands.add_parser("space", help="run the Gradio Space locally")
    space.add_argument("--model", default="outputs/quickstart/checkpoint")
    space.add_argument("--port", type=int, default=7860)
    space.add_argument("--host", default="127.0.0.1")
    space.set_defaults(handler=_space)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable = args.handler
    try:
        code = handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except _user_errors() as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"microau {args.command}: error: {message}", file=sys.stderr)
        return 2
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
