"""Train Micro-AU CLIP with Accelerate: `accelerate launch scripts/train.py --data DIR --output-dir DIR [...]`.

A thin entry point; the loop, its flags and its checkpoint format live in `microau_hf.train.loop`.
"""

from microau_hf.train.loop import main

if __name__ == "__main__":
    main()
