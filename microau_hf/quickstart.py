"""The main job: on any machine, build the synthetic corpus, train a small Micro-AU CLIP under LOSO, report, save.

    microau quickstart                      # about 2 minutes on an idle 2-core CPU
    microau quickstart --out my_run --folds 3 --epochs 12

It prints the per-AU F1 table (binary F1 of the positive class, pooled over the held-out subjects) and the label-free
emotion scores, saves a plot, and saves the last fold's model as a checkpoint that loads with
`AutoModel.from_pretrained(dir, trust_remote_code=True)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datasets import load_from_disk

from .atomic import atomic_plot
from .data.synthetic import make_synthetic_corpus
from .face.pipeline import build_processor
from .presets import make_config
from .train.loso import ProtocolSettings, result_notes, run_protocol
from .train.metrics import markdown_table
from .train.plots import plot_per_au_f1


#: What a quickstart writes into its --out folder, replaced only with --overwrite (the synthetic corpus there is
#: reused while its settings stay the same, never replaced).
QUICKSTART_WRITES = ("loso", "per_au_f1.png", "checkpoint")


@dataclass
class QuickstartSettings:
    out: Path = Path("outputs/quickstart")
    num_samples: int = 480
    folds: int = 2
    epochs: float = 8.0
    aus: str = "casme2"
    preset: str = "tiny"
    seed: int = 0


def corpus_folder(settings: QuickstartSettings) -> Path:
    return settings.out / f"synthetic-{settings.aus}-n{settings.num_samples}-seed{settings.seed}"


def corpus(settings: QuickstartSettings):
    """The synthetic corpus, built once and reused while its settings stay the same."""
    folder = corpus_folder(settings)
    if (folder / "dataset_info.json").exists():
        print(f"using the synthetic corpus in {folder}")
        return load_from_disk(str(folder))
    print(f"building the synthetic corpus ({settings.num_samples} samples) in {folder}")
    return make_synthetic_corpus(folder, num_samples=settings.num_samples, seed=settings.seed, aus=settings.aus,
                                 progress=True)


def run(settings: QuickstartSettings) -> dict:
    dataset = corpus(settings)
    config = make_config(settings.aus, preset=settings.preset)
    processor = build_processor(config)
    checkpoint = settings.out / "checkpoint"
    results = run_protocol(
        dataset, config, processor, settings.out / "loso",
        ProtocolSettings(max_folds=settings.folds, epochs=settings.epochs, seed=settings.seed,
                         training_overrides={"logging_steps": 20}),
        save_model_to=checkpoint,
    )
    plot = atomic_plot(plot_per_au_f1, results, settings.out / "per_au_f1.png")
    _report(results, settings, checkpoint, plot)
    return results


def _report(results: dict, settings: QuickstartSettings, checkpoint: Path, plot: Path) -> None:
    print()
    title = f"{results['protocol']}, synthetic corpus, frames through the face pipeline (as predict sees them), pooled"
    print(markdown_table(results["scores"], title))
    faces = results["face_pipeline"]
    print(f"face pipeline: {faces['usable']} samples used, {len(faces['refused'])} refused (no usable face)")
    print("\n".join(result_notes(results)))
    print("(no emotion label was used in training)")
    print(f"""
saved: results {settings.out / 'loso' / 'results.json'}, plot {plot}, checkpoint {checkpoint}

next:
  microau predict --model {checkpoint} --onset ONSET.png --apex APEX.png     # your own pair (or --video, --folder)
  microau space --model {checkpoint}                                        # the demo in a browser
  microau evaluate --data {corpus_folder(settings)} --output-dir {settings.out / 'loso6'} --max-folds 6   # a longer LOSO
  python -c "from transformers import AutoModel; AutoModel.from_pretrained('{checkpoint}', trust_remote_code=True)"
""")
