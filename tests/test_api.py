"""The Python API: paths, PIL images and tensors in, a PIL image out."""

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

import atelier
from atelier.io import images as img
from atelier.losses import StyleTarget


@pytest.mark.slow
def test_stylize_accepts_paths_pil_and_tensors(tmp_path, content_path, style_path):
    astronaut = Image.fromarray(data.astronaut())
    seen = []
    out = atelier.stylize(astronaut, style_path, size=96, iterations=5, seed=0,
                          callback=lambda p: seen.append((p.iteration, p.losses["style"])))
    assert isinstance(out, Image.Image) and out.size == (96, 96) and out.mode == "RGB"
    assert [i for i, _ in seen] == [1, 2, 3, 4, 5]
    assert seen[-1][1] < seen[0][1]

    # a tensor content and a tensor + PIL style list give the same pixels as the same files by path
    t = img.load_image(content_path)
    coffee = Image.fromarray(data.coffee())
    coffee.save(tmp_path / "coffee.png")
    opts = dict(style_blend=[1, 1], size=96, iterations=3, seed=0, precision="fp32")
    out2 = atelier.stylize(t, [img.load_image(style_path), coffee], **opts)
    assert max(out2.size) == 96
    by_path = atelier.stylize(content_path, [style_path, tmp_path / "coffee.png"], **opts)
    assert np.array_equal(np.asarray(out2), np.asarray(by_path))


@pytest.mark.slow
def test_style_blend_weights_take_effect(content_path, style_path, style2_path):
    """The blend's weights do what they say, through the API with paths:

    * a 0/1 (or 1/0) blend is exactly the single-style result;
    * a 0.5/0.5 blend's Gram style loss against each style lies between the two single-style
      results' losses, clear of both ends.

    Measured (64 px, 8 L-BFGS iterations, fp32, starry_night A / the_scream B, content
    000000000030): loss to A: A-only 0.151, blend 0.342, B-only 0.498 (the blend 55 % of the
    way); loss to B: B-only 0.317, blend 0.449, A-only 1.119 (16 %). Required: at least 5 %
    of the way from each end. A blend that ignores its weights fails the 0/1 check, one that
    drops a style fails the "between" check.
    """
    opts = dict(size=64, iterations=8, seed=0, precision="fp32")
    styles = [style_path, style2_path]

    def run(sts, blend=None):
        return img.load_image(atelier.stylize(content_path, sts, style_blend=blend, **opts))

    only_a, only_b = run([style_path]), run([style2_path])
    assert torch.equal(run(styles, [0, 1]), only_b)
    assert torch.equal(run(styles, [1, 0]), only_a)
    both = run(styles, [0.5, 0.5])

    scorer = atelier.GatysStyleTransfer(size=64, precision="fp32")
    target = StyleTarget(scorer.style_grams([img.load_image(s) for s in styles], 64))

    def losses(x):  # Gram style loss against A and against B
        with torch.no_grad():
            return [float(v) for v in target.per_style(scorer.encoder(x, target.layers, "fp32"))]

    la, lb, lab = losses(only_a), losses(only_b), losses(both)
    for k, (near, far) in enumerate(((la, lb), (lb, la))):  # k=0: loss to A, k=1: loss to B
        lo, hi = near[k], far[k]
        assert lo < hi, (la, lb, lab)
        margin = 0.05 * (hi - lo)
        assert lo + margin < lab[k] < hi - margin, (k, la, lb, lab)


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
