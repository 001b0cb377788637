#!/usr/bin/python3
"""Writes the small images image_pipeline_test.cc decodes (run once; the outputs are committed).

    rgb_20x14.jpg     baseline JPEG, quality 95, a colour gradient
    rgb_20x14.png     the same pixels, lossless
    rgba_9x7.png      RGBA with alpha 0..255 (decoded onto black)
    gray16_6x5.png    16-bit grayscale
    gray_11x8.jpg     grayscale JPEG
    progressive.jpg   progressive JPEG
    cmyk.jpg          CMYK JPEG (refused)
"""
import os

import numpy as np
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))


def gradient(w, h):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)],
                    axis=-1).astype(np.uint8)


rgb = gradient(20, 14)
Image.fromarray(rgb).save(os.path.join(here, "rgb_20x14.jpg"), quality=95)
Image.fromarray(rgb).save(os.path.join(here, "rgb_20x14.png"))
rgba = np.concatenate([gradient(9, 7), (np.arange(63).reshape(7, 9) * 4).astype(np.uint8)[..., None]],
                      axis=-1)
Image.fromarray(rgba, "RGBA").save(os.path.join(here, "rgba_9x7.png"))
g16 = (np.arange(30).reshape(5, 6) * 2000).astype(np.uint16)
Image.fromarray(g16).save(os.path.join(here, "gray16_6x5.png"))
Image.fromarray(rgb[:8, :11, 0]).save(os.path.join(here, "gray_11x8.jpg"), quality=95)
Image.fromarray(gradient(32, 24)).save(os.path.join(here, "progressive.jpg"), quality=90,
                                       progressive=True)
Image.fromarray(rgb).convert("CMYK").save(os.path.join(here, "cmyk.jpg"))
