"""The fused bilinear warp (`warp.warp` through `grid_sample`) against the explicit gathers it replaced: seconds and
ratios, medians of several runs, both in this process, one torch thread.

Run:  .venv/bin/python bench/warp_speed.py [--runs 5]

Two timings, each run alternately with the fused warp and with the gathers (`warp(..., fused=False)`, the code the
fused path replaced, still used for nearest sampling and integer images): a warp forward and backward of 20 slices
of 128 x 128 (what one step of the fit does dozens of times), and 20 full-resolution steps of the per-volume fit at
its final reach on a 60-slice 128 x 128 phantom (`train.fit`), with the last step's loss beside them (the two
agree to float precision, not bit for bit). Writes bench/results/warp_speed.json.
"""
import argparse, functools, json, pathlib, statistics, time
import numpy as np, torch
from flow2mask_nb.warp import warp as WARP    # the function itself, whichever one `use_warp` puts in its place

HERE = pathlib.Path(__file__).parent


gather_warp = functools.partial(WARP, fused=False)   # the warp as it was: every sample through explicit gathers


class use_warp:
    "Within the block, every module of the package that calls `warp` calls `fn` instead."
    def __init__(self, fn): self.fn = fn
    def __enter__(self):
        from flow2mask_nb import warp as w, losses, select, testing
        self.saved = [(m, m.warp) for m in (w, losses, select, testing)]
        for m, _ in self.saved: m.warp = self.fn
    def __exit__(self, *exc):
        for m, f in self.saved: m.warp = f


def warp_step(n=20, size=128):
    "Seconds for one warp forward and backward of n slices."
    from flow2mask_nb import warp as w
    g = torch.Generator().manual_seed(0)
    img = torch.rand(n, 1, size, size, generator=g)
    fl = (torch.randn(n, 2, size, size, generator=g) * 3).requires_grad_(True)
    t = time.perf_counter()
    torch.autograd.grad(w.warp(img, fl).pow(2).sum(), fl)
    return time.perf_counter() - t, None


def fit_steps(steps=20):
    "Seconds for `steps` full-resolution steps of the per-volume fit at its final reach, and the last loss."
    from flow2mask_nb.phantom import make_phantom
    from flow2mask_nb.preprocess import normalize_intensity
    from flow2mask_nb.train import fit
    ph = make_phantom(n_slices=60, size=(128, 128), seed=0)
    x = torch.from_numpy(np.ascontiguousarray(normalize_intensity(np.moveaxis(ph.image.array, 2, 0)))).float()
    t = time.perf_counter()
    _, hist = fit(x, steps=steps, levels=(1,), full_at=0.01, progress=False)
    return time.perf_counter() - t, hist[-1]['loss']


def main():
    from flow2mask_nb.io import json_ready
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--runs', type=int, default=5, help='runs of each, alternating (medians reported)')
    a = ap.parse_args()
    torch.set_num_threads(1)
    out = {}
    for name, job in (('warp forward+backward, 20 x 128 x 128', warp_step), ('fit, 20 full-resolution steps', fit_steps)):
        times = {'fused': [], 'gathers': []}
        loss = {}
        for _ in range(a.runs):
            for which, fn in (('fused', WARP), ('gathers', gather_warp)):
                with use_warp(fn): s, l = job()
                times[which].append(s); loss[which] = l
        med = {k: statistics.median(v) for k, v in times.items()}
        out[name] = dict(median_s=med, runs=times, ratio=med['gathers'] / med['fused'], last_loss=loss)
        print(f"{name}: fused {med['fused']:.3f} s, gathers {med['gathers']:.3f} s (median of {a.runs}): "
              f"{med['gathers'] / med['fused']:.2f}x faster" +
              (f"; last loss {loss['fused']:.6f} vs {loss['gathers']:.6f}" if loss['fused'] is not None else ''), flush=True)
    res = HERE / 'results'; res.mkdir(exist_ok=True)
    (res / 'warp_speed.json').write_text(json.dumps(json_ready(out), indent=1))


if __name__ == '__main__':
    main()
