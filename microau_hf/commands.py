"""What each `microau` subcommand does, once `microau.cli` has parsed and checked its arguments.

The parser (and `--help`) lives in the torch-free `microau` package; this module is imported only to run a command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

SPOTTING_EVALUATION_SCHEMA = "micro-au-clip/spotting-evaluation"

#: Pairs (or a video's summary lines) printed on stdout; the full result goes to ``--out``.
SUMMARY_ITEMS = 20


def resolve_device(name: str, training: bool = False) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; an unavailable device is refused in one line.
    Training runs on CUDA or the CPU (``cpu`` and ``cuda:N`` are pinned for every library by the parser)."""
    if training and name == "mps":
        raise ValueError("--device mps: training runs on cuda or cpu here; mps is for predict")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: torch {torch.__version__} sees no CUDA device; use --device cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps: this machine has no Apple GPU; use --device cpu")
    return "cuda" if name.startswith("cuda") else name  # cuda:N is already pinned through CUDA_VISIBLE_DEVICES


def _quickstart(args: argparse.Namespace) -> None:
    from . import quickstart

    resolve_device(args.device, training=True)
    quickstart.run(quickstart.QuickstartSettings(out=args.out, num_samples=args.num_samples, folds=args.folds,
                                                 epochs=args.epochs, aus=args.aus, preset=args.preset, seed=args.seed))


def _check_faces(dataset, folder: Path) -> None:
    """The face pipeline's check of a new corpus, once: refused samples listed in its face report, the detections
    cached beside it for training."""
    from .data.corpus_faces import check_corpus_faces, write_face_report

    faces = check_corpus_faces(dataset, name=str(folder))
    print(f"{faces.summary(str(folder))} (details: {write_face_report(faces, folder, str(folder))})")


def _synth_standin(args: argparse.Namespace) -> None:
    """The multi-corpus stand-in for CD6ME: pseudo-corpora in --out, listed in --out/corpora.txt."""
    from .data.synthetic_corpora import LIST_FILE, make_standin_corpora

    folders = make_standin_corpora(args.out, samples_per_corpus=args.num_samples, seed=args.seed,
                                   overwrite=args.overwrite)
    for folder in folders:
        print(f"wrote {args.num_samples} samples to {folder}")
    print(f"corpus list: {Path(args.out) / LIST_FILE} (microau evaluate --protocol cd6me --data "
          f"{Path(args.out) / LIST_FILE} ...)")


def _synth(args: argparse.Namespace) -> None:
    if args.cd6me_standin:
        return _synth_standin(args)
    from .data.synthetic import make_synthetic_corpus

    dataset = make_synthetic_corpus(args.out, num_samples=args.num_samples, seed=args.seed, aus=args.aus,
                                    amplitude_px=tuple(args.amplitude), overwrite=args.overwrite, progress=True)
    print(f"wrote {len(dataset)} samples of {len(set(dataset['subject']))} subjects to {args.out}")
    _check_faces(dataset, args.out)
    if args.contact_sheet:
        from .data.contact_sheet import draw_contact_sheet

        from .atomic import atomic_file

        with atomic_file(args.contact_sheet) as staged:
            draw_contact_sheet(dataset).save(staged)
        print(f"contact sheet: {args.contact_sheet}")


def _convert(args: argparse.Namespace) -> None:
    from datasets import load_from_disk

    from .data.converters import convert_corpus

    report = convert_corpus(args.corpus, args.root, args.out, with_frames=args.with_frames, cropped=args.cropped,
                            annotation=args.annotation, overwrite=args.overwrite)
    print(report.summary())
    from .data.spotting_schema import is_spotting_dataset

    dataset = load_from_disk(str(args.out))
    # Crops are pre-aligned (template regions) and long videos are tracked frame by frame when spotted; the frames
    # of onset/apex samples go through the face pipeline once here.
    if not args.cropped and not is_spotting_dataset(dataset):
        _check_faces(dataset, args.out)
    if args.push_to_hub:
        dataset.push_to_hub(args.push_to_hub, private=args.private)
        print(f"pushed to https://huggingface.co/datasets/{args.push_to_hub}")


def _train(args: argparse.Namespace) -> None:
    from .train.loop import LoopSettings, train

    resolve_device(args.device, training=True)
    settings = LoopSettings(data=args.data, output_dir=args.output_dir, aus=args.aus, preset=args.preset,
                            model=args.model, clip=args.clip, epochs=args.epochs, max_steps=args.max_steps,
                            batch_size=args.batch_size, learning_rate=args.learning_rate,
                            gradient_accumulation_steps=args.gradient_accumulation_steps,
                            mixed_precision=args.mixed_precision, save_steps=args.save_steps,
                            resume_from=args.resume_from, config_overrides=args.config, seed=args.seed,
                            pre_aligned=args.pre_aligned, cpu=args.device == "cpu", overwrite=args.overwrite)
    print(f"final model: {train(settings)}")


def _evaluate_spotting(args: argparse.Namespace) -> None:
    """The spotter on every long video of a spotting dataset, scored as MEGC does (nothing is trained)."""
    import json

    from .atomic import atomic_write_text
    from .data.spotting_schema import load_spotting_folder
    from .inference import MicroAUPredictor
    from .spotting.evaluation import evaluate_spotting, spotting_table
    from .spotting.metrics import Interval

    dataset = load_spotting_folder(args.data)
    predictor = MicroAUPredictor.from_pretrained(args.model, device=resolve_device(args.device))

    def spot(frame_paths: list[str], fps: float) -> list[Interval]:
        result = predictor.predict_video(frame_paths, fps=fps)
        return [Interval(i.onset_frame, i.offset_frame, i.kind) for i in result.intervals]

    results = evaluate_spotting(dataset, spot, progress=True)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(spotting_table(results))
    document = {"schema": SPOTTING_EVALUATION_SCHEMA, **results}  # says who wrote it (the write rule, atomic.py)
    print(f"wrote {atomic_write_text(out / 'results.json', json.dumps(document, indent=2) + chr(10))}")


def _evaluate_cd6me(args: argparse.Namespace) -> None:
    """MEB's CD6ME over the converted corpora given: the tables beside MEB's figures, results.json for push."""
    from .face.pipeline import build_processor
    from .presets import make_config
    from .train.cd6me import load_corpora, run_cd6me
    from .train.cd6me_report import cd6me_tables
    from .train.loso import ProtocolSettings
    from .train.recipe import refuse_training_statistics

    resolve_device(args.device, training=True)
    refuse_training_statistics(args.config)
    config = make_config("cross12", preset=args.preset, **args.config)
    data = load_corpora(args.data)  # bad input is named before any training
    settings = ProtocolSettings(protocol="cd6me", epochs=args.epochs, batch_size=args.batch_size,
                                learning_rate=args.learning_rate, threshold=args.threshold,
                                inner_subjects=args.inner_subjects, seed=args.seed, pre_aligned=args.pre_aligned)
    results = run_cd6me(data, config, build_processor(config), args.output_dir, settings,
                        save_model_to=Path(args.output_dir) / "checkpoint" if args.save_model else None)
    print(cd6me_tables(results))
    print(f"wrote {Path(args.output_dir) / 'results.json'} and results.md")


def _evaluate(args: argparse.Namespace) -> None:
    if args.task == "spotting":
        return _evaluate_spotting(args)
    if args.protocol == "cd6me":
        return _evaluate_cd6me(args)
    from .data.schema import load_dataset_folder
    from .face.pipeline import build_processor
    from .presets import make_config
    from .train.loso import ProtocolSettings, result_notes, run_protocol
    from .train.metrics import markdown_table
    from .atomic import atomic_plot
    from .train.plots import plot_per_au_f1
    from .train.recipe import refuse_training_statistics

    resolve_device(args.device, training=True)
    refuse_training_statistics(args.config)
    config = make_config(args.aus, preset=args.preset, **args.config)  # a bad override is refused before the data load
    dataset = load_dataset_folder(args.data)
    settings = ProtocolSettings(protocol=args.protocol, max_folds=args.max_folds, epochs=args.epochs,
                                batch_size=args.batch_size, learning_rate=args.learning_rate, threshold=args.threshold,
                                inner_subjects=args.inner_subjects, seed=args.seed, pre_aligned=args.pre_aligned)
    results = run_protocol(dataset, config, build_processor(config), args.output_dir, settings,
                           save_model_to=Path(args.output_dir) / "checkpoint" if args.save_model else None)
    print(markdown_table(results["scores"], f"{results['protocol']} on {args.data}"))
    print("\n".join(result_notes(results)))
    print(f"plot: {atomic_plot(plot_per_au_f1, results, Path(args.output_dir) / 'per_au_f1.png')}")


def _predict(args: argparse.Namespace) -> int:
    from .inference import MicroAUPredictor

    predictor = MicroAUPredictor.from_pretrained(args.model, device=resolve_device(args.device),
                                                 threshold=args.threshold,
                                                 landmarker=None if args.pre_aligned else "auto")
    if args.video:
        result = predictor.predict_video(args.video, every_frame=args.every_frame, stride=args.stride, fps=args.fps,
                                         batch_size=args.batch_size, max_seconds=args.max_seconds, progress=True)
        failed = []
    else:
        if args.folder:
            result = predictor.predict_folder(args.folder, batch_size=args.batch_size, progress=True)
        else:
            result = [predictor.predict_pair(args.onset, args.apex)]
        failed = [item for item in result if not item.ok]
        if failed and len(failed) == len(result):
            raise ValueError(failed[0].message)  # nothing could be scored: one error line, nothing written
    _report_predictions(result, args.out)
    if args.video and args.plot:  # after the results: a figure that fails cannot cost the user the numbers
        from .atomic import atomic_plot
        from .timeline import plot_timeline

        print(f"time line: {atomic_plot(plot_timeline, result, args.plot)}")
    for item in failed:  # the good items are written above; the bad ones are listed, and the exit says so
        print(f"microau predict: {item.name}: {item.message}", file=sys.stderr)
    return 1 if failed else 0


def _report_predictions(result, out: Path | str | None) -> None:
    """The full result to ``out`` (``-``: JSON on stdout); otherwise a summary of at most SUMMARY_ITEMS lines."""
    import json

    from .results import VideoPrediction, frames_csv_path, results_document, save_results

    video = isinstance(result, VideoPrediction)
    if out == "-":
        print(json.dumps(results_document(result), indent=2))
        return
    lines = result.summary_lines() if video else [item.summary_line() for item in result]
    print("\n".join(lines[:SUMMARY_ITEMS]))
    if len(lines) > SUMMARY_ITEMS:
        print(f"... and {len(lines) - SUMMARY_ITEMS} more")
    if not out:
        print("(the full result with every probability: --out result.json)")
        return
    print(f"wrote {save_results(result, out)}")
    if video and Path(out).suffix.lower() == ".csv":
        print(f"wrote {frames_csv_path(out)} (the per-frame time series)")


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


HANDLERS = {"quickstart": _quickstart, "synth": _synth, "convert": _convert, "train": _train, "evaluate": _evaluate,
            "predict": _predict, "push": _push, "space": _space}


#: What `evaluate` writes into its --output-dir (everything else there is left alone).
EVALUATE_WRITES = ("results.json", "results.md", "per_au_f1.png", "folds", "checkpoint")


def _predict_outputs(args: argparse.Namespace) -> list[Path]:
    from .atomic import OutputRule
    from .results import frames_csv_path

    rule = OutputRule({"--model": args.model, "--onset": args.onset, "--apex": args.apex, "--folder": args.folder,
                       "--video": args.video}, args.overwrite)
    outputs = []
    if args.out and args.out != "-":
        outputs.append(rule.check_file(args.out, "--out"))
        if args.video and Path(args.out).suffix.lower() == ".csv":  # a video's CSV has its time series beside it
            outputs.append(rule.check_file(frames_csv_path(args.out), "--out"))
    if args.plot:
        outputs.append(rule.check_file(args.plot, "--plot"))
    return outputs


def _evaluate_outputs(args: argparse.Namespace) -> list[Path]:
    from .atomic import OutputRule

    data = args.data if isinstance(args.data, list) else [args.data]  # cd6me: one folder per corpus, or a list
    rule = OutputRule({**{f"--data {path}": path for path in data}, "--model": args.model}, args.overwrite)
    rule.check_folder(args.output_dir, "--output-dir", EVALUATE_WRITES)
    return [args.output_dir]


def _quickstart_outputs(args: argparse.Namespace) -> list[Path]:
    from .atomic import OutputRule
    from .quickstart import QUICKSTART_WRITES

    OutputRule({}, args.overwrite).check_folder(args.out, "--out", QUICKSTART_WRITES)
    return [args.out]


def _synth_outputs(args: argparse.Namespace) -> list[Path]:
    from .atomic import OutputRule

    rule = OutputRule({}, args.overwrite)
    if args.cd6me_standin:  # one corpus folder per pseudo-corpus, and the list file, inside --out
        from .data.synthetic_corpora import LIST_FILE, STANDIN_CORPORA

        return [*(rule.check_replaced_folder(Path(args.out) / c.name, "--out") for c in STANDIN_CORPORA),
                rule.check_file(Path(args.out) / LIST_FILE, "--out")]
    outputs = [rule.check_replaced_folder(args.out, "--out")]
    if args.contact_sheet:
        # The corpus folder is replaced whole and holds the dataset only: a sheet in it would be lost, or would block
        # the next --overwrite as a file synth did not write.
        if Path(args.out).resolve() in Path(args.contact_sheet).resolve().parents:
            raise FileExistsError(f"{args.contact_sheet}: --contact-sheet must be outside --out, which holds the "
                                  f"dataset only")
        outputs.append(rule.check_file(args.contact_sheet, "--contact-sheet"))
    return outputs


def _convert_outputs(args: argparse.Namespace) -> list[Path]:
    from .atomic import OutputRule

    rule = OutputRule({"--root": args.root, "--annotation": args.annotation}, args.overwrite)
    return [rule.check_replaced_folder(args.out, "--out")]


#: Per subcommand: check its outputs against the write rule (`atomic.OutputRule`) and return those to lock. `train`
#: does both in the loop itself, so that `accelerate launch scripts/train.py` obeys the same rule.
OUTPUTS = {"predict": _predict_outputs, "evaluate": _evaluate_outputs, "quickstart": _quickstart_outputs,
           "synth": _synth_outputs, "convert": _convert_outputs}


def run_command(args: argparse.Namespace) -> int | None:
    """Run the parsed subcommand with its outputs checked and locked; its exit code (``None``: 0)."""
    from contextlib import ExitStack

    from .atomic import output_lock

    claim = OUTPUTS.get(args.command, lambda _: [])
    with ExitStack() as locks:
        for out in claim(args):  # checked before the lock: a refused place gets no lock file either
            locks.enter_context(output_lock(out, args.command))
        claim(args)  # and again under the lock: a run that ended meanwhile may have written there
        return HANDLERS[args.command](args)
