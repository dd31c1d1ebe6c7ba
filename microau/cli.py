"""`microau`: one subcommand per job.

    microau quickstart                                   the main job on the built-in synthetic corpus
    microau synth --out DIR                              build the synthetic corpus
    microau convert casme2 --root RAW --out DIR          convert a licensed corpus to `datasets`
    microau train --data DIR --output-dir DIR            train (Accelerate; `accelerate launch scripts/train.py` for many GPUs)
    microau evaluate --data DIR --output-dir DIR         LOSO / leave-one-corpus-out, per-AU F1 table
    microau evaluate --protocol cd6me --data D1 D2 ...   MEB's CD6ME benchmark over converted corpora
    microau predict --model DIR --onset A --apex B       AU probabilities for a pair, a folder or a video
    microau push --model DIR --repo-id ORG/NAME          publish a checkpoint to the Hub
    microau space --model DIR                            run the Gradio demo locally

exit codes:
    0    done
    1    done in part: some inputs could not be used (each named on stderr; the rest is written)
    2    bad arguments or input: one line on stderr says which and why; nothing is written
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

from . import checks

# Kept equal to microau_hf.aus.AU_SETS and microau_hf.presets.PRESETS by a test: the parser may not import them.
AU_SET_NAMES = ("casme2", "samm", "mmew", "cross12")
PRESET_NAMES = ("test", "tiny", "vit-b-16")
CORPORA = ("casme", "casme2", "samm", "4dme", "mmew", "casme3", "casme_sq", "samm_lv")

EXIT_OK, EXIT_PARTIAL, EXIT_USER_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130

# Failures a user can fix: reported as one line. Anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError, KeyError, OSError,
                                                ImportError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError)

PRE_ALIGNED_HELP = ("the frames are already aligned face crops (e.g. CASME II's Cropped release): no face detection, "
                    "canonical template regions; predict such crops with the same setting")


class Parser(argparse.ArgumentParser):
    """An argument error is one line (the problem and where to read more), exit 2; no usage dump."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _subcommand(commands, name: str, summary: str, example: str, parents=()) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=summary, description=summary, parents=list(parents),
                               epilog=f"example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter)


def _common_options(device: bool) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", help="show third-party log lines (MediaPipe, transformers)")
    if device:
        common.add_argument("--device", type=checks.device, default="auto",
                            help="auto (CUDA when available), cpu, cuda, cuda:N or mps (default %(default)s)")
    return common


def _add_au_and_size(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--aus", default="casme2", choices=AU_SET_NAMES, help="the AU set to detect (default %(default)s)")
    parser.add_argument("--preset", default="tiny", choices=PRESET_NAMES,
                        help="model size: test (unit tests), tiny (CPU demos), vit-b-16 (CLIP ViT-B/16; default %(default)s)")


def _add_data_and_output(parser: argparse.ArgumentParser, output_help: str, many: bool = False) -> None:
    if many:  # evaluate: CD6ME takes one folder per corpus (or a list file); the other protocols one folder
        parser.add_argument("--data", required=True, nargs="+", type=checks.folder_or_list, metavar="DIR",
                            help="a dataset folder (synth or convert); with --protocol cd6me one folder per corpus, "
                                 "or a .txt file listing them one a line")
    else:
        parser.add_argument("--data", required=True, type=checks.existing_folder,
                            help="a dataset folder (synth or convert)")
    parser.add_argument("--output-dir", required=True, type=checks.output_folder, help=output_help)


def _add_model_settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=_json_object, default={},
                        help='config overrides as JSON, e.g. \'{"use_gda": false}\'')
    parser.add_argument("--seed", type=int, default=0, help="training seed (default %(default)s)")
    parser.add_argument("--pre-aligned", action="store_true", help=PRE_ALIGNED_HELP)


def _add_quickstart(commands, running) -> None:
    quick = _subcommand(commands, "quickstart", "synthetic corpus -> LOSO training -> F1 table, plot, checkpoint",
                        "microau quickstart --out outputs/quickstart --folds 2", [running])
    quick.add_argument("--out", type=checks.output_folder, default=Path("outputs/quickstart"),
                       help="output folder: corpus, results, plot, checkpoint (default %(default)s)")
    quick.add_argument("--num-samples", type=checks.positive_int, default=480,
                       help="synthetic samples to build (default %(default)s)")
    quick.add_argument("--folds", type=checks.positive_int, default=2,
                       help="LOSO folds to run, one held-out subject each (default %(default)s)")
    quick.add_argument("--epochs", type=checks.positive_float, default=8.0, help="epochs per fold (default %(default)s)")
    _add_au_and_size(quick)
    quick.add_argument("--seed", type=int, default=0, help="corpus and training seed (default %(default)s)")
    quick.add_argument("--overwrite", action="store_true",
                       help="replace an earlier quickstart's results, plot and checkpoint in --out")


def _add_synth(commands, plain) -> None:
    synth = _subcommand(commands, "synth", "build the synthetic corpus from real, freely licensed faces",
                        "microau synth --out data/synthetic --num-samples 480 --contact-sheet sheet.png", [plain])
    synth.add_argument("--out", required=True, type=checks.output_folder, help="folder for the saved dataset")
    synth.add_argument("--num-samples", type=checks.positive_int, default=480, help="samples to build (default %(default)s)")
    synth.add_argument("--seed", type=int, default=0, help="the same seed gives the same corpus (default %(default)s)")
    synth.add_argument("--aus", default="casme2", choices=AU_SET_NAMES, help="AU set to label (default %(default)s)")
    synth.add_argument("--amplitude", type=checks.positive_float, nargs=2, default=(0.8, 2.5), metavar=("LOW", "HIGH"),
                       help="motion amplitude in pixels at an interocular distance of ~40 px (default 0.8 2.5)")
    synth.add_argument("--overwrite", action="store_true", help="replace an earlier synthetic corpus in --out")
    synth.add_argument("--contact-sheet", type=checks.output_file((".png",)), help="also save a contact sheet PNG here")
    synth.add_argument("--cd6me-standin", action="store_true",
                       help="write the multi-corpus stand-in for --protocol cd6me instead: four pseudo-corpora that "
                            "differ in frame rate, resolution, lighting and amplitude (the 12 AUs; --num-samples "
                            "each) as folders in --out, listed in --out/corpora.txt")


def _add_convert(commands, plain) -> None:
    convert = _subcommand(commands, "convert", "convert a licensed corpus (CASME, CASME II, SAMM, 4DME, MMEW, CAS(ME)^3 ...) to datasets",
                          "microau convert casme2 --root ~/corpora/CASME2 --out data/casme2", [plain])
    convert.add_argument("corpus", choices=CORPORA, help="which corpus layout --root holds")
    convert.add_argument("--root", required=True, type=checks.existing_folder, help="the corpus folder as distributed")
    convert.add_argument("--out", required=True, type=checks.output_folder, help="folder for the converted dataset")
    convert.add_argument("--annotation", type=checks.existing_file_of(checks.WORKBOOK_SUFFIXES),
                         help="the coding spreadsheet (.xlsx), if not in its usual place")
    convert.add_argument("--with-frames", action="store_true", help="store every frame from onset to offset")
    convert.add_argument("--cropped", action="store_true", help="CASME II: use the Cropped/ release (pre-aligned)")
    convert.add_argument("--overwrite", action="store_true",
                         help="replace an earlier conversion in --out (a folder holding other files is never replaced)")
    convert.add_argument("--push-to-hub", metavar="REPO", help="also publish the dataset (for your team; keep it private)")
    convert.add_argument("--private", action="store_true", help="with --push-to-hub: a private dataset repo")


def _add_train(commands, running) -> None:
    train = _subcommand(commands, "train", "train with Accelerate (one process; `accelerate launch scripts/train.py` for more)",
                        "microau train --data data/synthetic --output-dir runs/tiny --epochs 5", [running])
    _add_data_and_output(train, "checkpoints, logs and the final model")
    _add_au_and_size(train)
    train.add_argument("--model", type=checks.model_source, help="start from this Micro-AU CLIP checkpoint")
    train.add_argument("--clip", help="copy the towers from this CLIP checkpoint (Hub id or folder)")
    train.add_argument("--epochs", type=checks.positive_int, default=5, help="passes over the data (default %(default)s)")
    train.add_argument("--max-steps", type=checks.positive_int, help="stop after this many optimiser steps")
    train.add_argument("--batch-size", type=checks.positive_int, default=16, help="per process (default %(default)s)")
    train.add_argument("--learning-rate", type=checks.positive_float, default=5e-4, help="peak LR (default %(default)s)")
    train.add_argument("--gradient-accumulation-steps", type=checks.positive_int, default=1,
                       help="batches per optimiser step (default %(default)s)")
    train.add_argument("--mixed-precision", default="no", choices=["no", "fp16", "bf16"],
                       help="autocast dtype (default %(default)s)")
    train.add_argument("--save-steps", type=checks.non_negative_int, default=0,
                       help="save a resumable checkpoint every N steps (0: at the end)")
    train.add_argument("--resume-from", help="a checkpoint folder (its path, e.g. runs/tiny/checkpoint-200), or 'latest': the last in "
                            "--output-dir")
    train.add_argument("--overwrite", action="store_true",
                       help="replace an earlier run in --output-dir (its log, checkpoints and final model; a folder "
                            "in it holding files microau did not write is never replaced)")
    _add_model_settings(train)


def _add_evaluate(commands, running) -> None:
    evaluate = _subcommand(commands, "evaluate", "LOSO or leave-one-corpus-out: train per fold, pooled per-AU F1; or "
                           "--task spotting: spot the micro-expressions of long videos, MEGC F1",
                           "microau evaluate --data data/synthetic --output-dir runs/loso6 --max-folds 6\n"
                           "  microau evaluate --task spotting --data data/casme_sq --model outputs/quickstart/checkpoint "
                           "--output-dir runs/spotting\n"
                           "  microau evaluate --protocol cd6me --data data/casme data/casme2 data/samm data/4dme "
                           "data/mmew data/casme3 --output-dir runs/cd6me", [running])
    _add_data_and_output(evaluate, "results.json, the per-AU F1 plot, per-fold logs", many=True)
    evaluate.add_argument("--task", default="au", choices=["au", "spotting"],
                          help="au: train and test AU detection per fold; spotting: spot intervals in a converted "
                               "long-video corpus (casme_sq, samm_lv) with --model, scored by IoU >= 0.5 (default "
                               "%(default)s)")
    evaluate.add_argument("--model", type=checks.model_source,
                          help="with --task spotting: the checkpoint that scores the spotted intervals")
    evaluate.add_argument("--protocol", default="loso", choices=["loso", "loco", "cd6me"],
                          help="leave one subject out, or one corpus out, or MEB's CD6ME: one corpus out over the "
                               "converted corpora given, the 12 AUs, binary and macro F1 beside MEB's published "
                               "figures (default %(default)s)")
    evaluate.add_argument("--max-folds", type=checks.positive_int, help="run only this many folds (a quick, partial run)")
    _add_au_and_size(evaluate)
    evaluate.add_argument("--epochs", type=checks.positive_float, default=8.0, help="epochs per fold (default %(default)s)")
    evaluate.add_argument("--batch-size", type=checks.positive_int, default=32,
                          help="samples per training batch (default %(default)s)")
    evaluate.add_argument("--learning-rate", type=checks.positive_float, default=1e-3, help="peak LR (default %(default)s)")
    evaluate.add_argument("--threshold", default="fixed", choices=["fixed", "inner"],
                          help="0.5, or per-AU best F1 on an inner split by subject of each training fold (an extra "
                               "model per fold; never the test fold; default %(default)s)")
    evaluate.add_argument("--inner-subjects", type=checks.positive_int, default=2,
                          help="with --threshold inner: training subjects each fold's inner model leaves out "
                               "(default %(default)s)")
    evaluate.add_argument("--save-model", action="store_true", help="save the last fold's model as a checkpoint")
    # None: casme2, or the 12 AUs of CD6ME with --protocol cd6me (another set is refused there, not overridden)
    evaluate.set_defaults(aus=None)
    next(a for a in evaluate._actions if a.dest == "aus").help = ("the AU set to detect (default casme2; with "
                                                                  "--protocol cd6me the 12 AUs of CD6ME, cross12)")
    evaluate.add_argument("--overwrite", action="store_true",
                          help="replace an earlier evaluation's results, plot, fold logs and checkpoint in --output-dir")
    _add_model_settings(evaluate)


def _add_predict(commands, running) -> None:
    predict = _subcommand(commands, "predict", "AU probabilities and emotion for a pair, a folder of pairs, or the "
                          "micro-expressions spotted in a video",
                          "microau predict --model outputs/quickstart/checkpoint --onset onset.jpg --apex apex.jpg\n"
                          "  microau predict --model outputs/quickstart/checkpoint --video clip.mp4 --out spotted.json "
                          "--plot timeline.png", [running])
    predict.add_argument("--model", required=True, type=checks.model_source, help="checkpoint folder or Hub id")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--onset", type=checks.existing_file, help="onset image (with --apex)")
    source.add_argument("--folder", type=checks.existing_folder,
                        help="folder of pairs: NAME_onset.EXT + NAME_apex.EXT, or subfolders with onset.* and apex.*")
    source.add_argument("--video", type=checks.video_source,
                        help="a video file, or a folder of its frames (with --fps): its micro-expressions are spotted "
                             "(onset, apex, offset) and each is scored")
    predict.add_argument("--apex", type=checks.existing_file, help="apex image (with --onset)")
    predict.add_argument("--every-frame", action="store_true",
                         help="video: also score every frame against the frame 0.3 s before it (slow: the model runs "
                              "on every frame)")
    predict.add_argument("--stride", type=checks.positive_int, default=1,
                         help="video with --every-frame: score every n-th frame (default %(default)s)")
    predict.add_argument("--max-seconds", type=checks.positive_float, help="video: read at most this many seconds")
    predict.add_argument("--fps", type=checks.positive_float,
                         help="video: the frame rate (needed for a folder of frames; overrides a file's header)")
    predict.add_argument("--plot", type=checks.output_file((".png",)),
                         help="video: write the time line (region motion, spotted intervals) as a PNG")
    predict.add_argument("--threshold", type=checks.probability, default=0.5,
                         help="an AU is present at or above this probability (default %(default)s)")
    predict.add_argument("--pre-aligned", action="store_true", help=PRE_ALIGNED_HELP)
    predict.add_argument("--batch-size", type=checks.positive_int, default=16,
                         help="pairs or frames per model call (default %(default)s)")
    predict.add_argument("--out", type=checks.output_file(checks.RESULT_SUFFIXES, stdout_ok=True),
                         help="the full result as .json or .csv (by extension), or - for JSON on stdout; "
                              "without it, stdout gets a short summary")
    predict.add_argument("--overwrite", action="store_true",
                         help="replace an earlier result at --out or --plot (never an input, a checkpoint's file, or "
                              "a JSON file microau did not write)")


def _add_push(commands, plain) -> None:
    push = _subcommand(commands, "push", "publish a checkpoint (safetensors, remote code, processor, model card)",
                       "microau push --model outputs/quickstart/checkpoint --repo-id my-org/micro-au-clip-demo --private",
                       [plain])
    push.add_argument("--model", required=True, type=checks.existing_folder, help="the checkpoint folder")
    push.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--token", help="defaults to HF_TOKEN or the cached login")
    push.add_argument("--base-model", help="the CLIP checkpoint the towers came from, for the model card")
    push.add_argument("--message", default="Upload Micro-AU CLIP checkpoint", help="the commit message")


def _add_space(commands, plain) -> None:
    space = _subcommand(commands, "space", "run the Gradio Space locally",
                        "microau space --model outputs/quickstart/checkpoint --port 7860", [plain])
    space.add_argument("--model", default="outputs/quickstart/checkpoint", type=checks.model_source,
                       help="checkpoint folder or Hub id (default %(default)s)")
    space.add_argument("--port", type=checks.positive_int, default=7860, help="the port to serve on (default %(default)s)")
    space.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve other machines (default %(default)s)")


def _json_object(text: str) -> dict:
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"{text}: not JSON ({error.msg})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"use_gda\": false}'")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="microau", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    plain, running = _common_options(device=False), _common_options(device=True)
    _add_quickstart(commands, running)
    _add_synth(commands, plain)
    _add_convert(commands, plain)
    _add_train(commands, running)
    _add_evaluate(commands, running)
    _add_predict(commands, running)
    _add_push(commands, plain)
    _add_space(commands, plain)
    return parser


def _check_combinations(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What one argument alone cannot say; checked before anything is imported or loaded."""
    if args.command == "evaluate" and (args.task == "spotting") != bool(args.model):
        parser.error("--task spotting needs --model" if args.model is None else "--model applies to --task spotting")
    if args.command == "evaluate":
        _check_evaluate(parser, args)
    if args.command == "synth" and args.cd6me_standin and (args.aus != "casme2" or args.contact_sheet):
        parser.error("--cd6me-standin labels the 12 AUs of CD6ME in each pseudo-corpus; --aus and --contact-sheet "
                     "do not apply")
    if args.command == "train" and args.overwrite and args.resume_from:
        parser.error("--overwrite replaces the earlier run and --resume-from continues it: give one of them")
    if args.command == "synth" and args.amplitude[0] > args.amplitude[1]:
        low, high = args.amplitude
        parser.error(f"--amplitude {low:g} {high:g}: LOW must not exceed HIGH")
    if args.command == "predict":
        if args.onset and not args.apex:
            parser.error("--onset needs --apex")
        if args.apex and not args.onset:
            parser.error("--apex needs --onset")
        video_only = [flag for flag, given in (("--every-frame", args.every_frame), ("--max-seconds", args.max_seconds),
                                                ("--fps", args.fps), ("--plot", args.plot),
                                                ("--stride", args.stride != 1)) if given]
        if video_only and not args.video:
            parser.error(f"{', '.join(video_only)}: for --video only")


def _check_evaluate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    many = len(args.data) > 1 or any(path.is_file() for path in args.data)
    if args.protocol == "cd6me":
        if args.aus not in (None, "cross12"):
            parser.error(f"--protocol cd6me detects the 12 AUs of CD6ME (cross12), not --aus {args.aus}")
        if args.max_folds or args.task == "spotting":
            parser.error("--protocol cd6me holds out every corpus given; --max-folds and --task spotting do not apply")
        args.aus = "cross12"
    elif many:
        parser.error("several --data folders, or a list file, are for --protocol cd6me; give one folder")
    else:
        args.aus, args.data = args.aus or "casme2", args.data[0]


def _subcommand_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The subcommand's own parser, so that its errors say `microau NAME: error:` and point at its --help."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[name]


def _pin_device(device: str | None) -> None:
    """`cpu` and `cuda:N` are set for every library at once (Trainer, Accelerate, the predictor) before torch loads."""
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    elif device and device.startswith("cuda:"):
        os.environ["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]


def _user_errors() -> tuple[type[BaseException], ...]:
    """The error types a user's input can cause (safetensors' only once it is loaded)."""
    safetensors = sys.modules.get("safetensors")
    return USER_ERRORS + ((safetensors.SafetensorError,) if safetensors is not None else ())


def run(args: argparse.Namespace) -> int:
    """Run a parsed command; a user's error becomes one line on stderr and exit 2."""
    try:
        from microau_hf.commands import run_command

        return run_command(args) or EXIT_OK
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _user_errors() as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"microau {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR


def main(argv: Sequence[str] | None = None, filter_logs: bool = False) -> int:
    """Parse, check, run. ``filter_logs`` (the console command) drops third-party log noise unless ``--verbose``."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _check_combinations(_subcommand_parser(parser, args.command), args)
    except SystemExit as stop:  # --help, or an argument error already printed in one line
        return stop.code if isinstance(stop.code, int) else EXIT_USER_ERROR
    _pin_device(getattr(args, "device", None))
    if filter_logs and not args.verbose:
        from .quiet import third_party_logs_filtered

        with third_party_logs_filtered():
            return run(args)
    return run(args)


def console() -> None:
    """The `microau` console script."""
    sys.exit(main(filter_logs=True))


if __name__ == "__main__":
    console()
