"""The Python API: paths, PIL images and tensors in, a PIL image out."""

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

import atelier
from atelier.core import io as img


@pytest.mark.slow
def test_stylize_accepts_paths_pil_and_tensors(content_path, style_path):
    astronaut = Image.fromarray(data.astronaut())
    seen = []
    out = atelier.stylize(astronaut, style_path, size=96, iterations=5, seed=0,
                          callback=lambda p: seen.append((p.iteration, p.losses["style"])))
    assert isinstance(out, Image.Image) and out.size == (96, 96) and out.mode == "RGB"
    assert [i for i, _ in seen] == [1, 2, 3, 4, 5]
    assert seen[-1][1] < seen[0][1]

    t = img.load_image(content_path)
    out2 = atelier.stylize(t, [img.load_image(style_path), Image.fromarray(data.coffee())],
                           style_blend=[1, 1], size=96, iterations=3, seed=0)
    assert max(out2.size) == 96
    assert np.asarray(out2).std() > 10


def test_stylize_rejects_bad_input(tmp_path, style_path):
    with pytest.raises(atelier.InputError, match="nope.jpg"):
        atelier.stylize(tmp_path / "nope.jpg", style_path, iterations=1)
    with pytest.raises(ValueError, match="style blend"):
        atelier.stylize(Image.fromarray(data.chelsea()), [style_path], style_blend=[1, 2], iterations=1)
    with pytest.raises(ValueError, match="at least one style"):
        atelier.stylize(Image.fromarray(data.chelsea()), [], iterations=1)


def test_low_level_class_gives_tensors(style_path):
    st = atelier.GatysStyleTransfer(size=64, iterations=2, seed=0)
    out = st.run(torch.from_numpy(data.rocket()).permute(2, 0, 1)[None].float() / 255, [img.load_image(style_path)])
    assert out.dtype == torch.float32 and out.shape[0] == 1 and out.shape[1] == 3 and max(out.shape[2:]) == 64
    assert set(st.last_losses) == {"content", "style", "tv", "total"}
    assert st.stats["iterations"] == 2 and st.stats["seconds_per_iteration"] > 0
