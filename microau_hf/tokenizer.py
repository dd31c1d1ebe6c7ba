"""A real CLIP tokenizer, built offline from the BPE vocabulary that ships in this package.

``assets/bpe_simple_vocab_16e6.txt.gz`` is OpenAI CLIP's byte-pair vocabulary as open_clip distributes it (MIT, see
``assets/LICENSE-open_clip-bpe.txt``). Shipping it here means a fresh install can tokenize the AU prompts without
reaching the Hub and without open_clip (whose own dependencies pull torchvision). The ids match open_clip's
``SimpleTokenizer`` and the Hub's ``openai/clip-vit-*`` tokenizers.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources

from transformers import CLIPTokenizer

BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
CLIP_VOCAB_SIZE = 49408
CLIP_CONTEXT_LENGTH = 77


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table, which CLIP's BPE is written in."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


@lru_cache(maxsize=1)
def _vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    raw = resources.files("microau_hf").joinpath("assets").joinpath(BPE_FILE).read_bytes()
    lines = gzip.decompress(raw).decode("utf-8").split("\n")
    # The same slice as CLIP's SimpleTokenizer: a header line, then 48,894 merges (256 bytes + 256 end-of-word bytes
    # + 48,894 merges + 2 specials = 49,408 ids).
    num_merges = CLIP_VOCAB_SIZE - 2 * 256 - 2
    merges = [tuple(line.split()) for line in lines[1 : 1 + num_merges]]
    byte_chars = list(_bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(pair) for pair in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(tokens)}, merges


def load_clip_tokenizer(model_max_length: int = CLIP_CONTEXT_LENGTH) -> CLIPTokenizer:
    """CLIP's tokenizer (49,408 ids), built from the bundled vocabulary with no network access."""
    vocab, merges = _vocab_and_merges()
    return CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=model_max_length)
