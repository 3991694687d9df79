"""Per-volume fit (`flow2mask_nb.train.fit`, the CLI's default when no model is given): time and final
reconstruction error on the shared abdomen CT and on a 256x256x100 synthetic volume.

The CT is read and normalised exactly as `flow2mask propagate` does it (`preprocess.prepare`: the modality's intensity
rule, the 128-pixel working grid), found with `testing.shared_data_dir` (../shared/data or $FLOW2MASK_DATA).
Reconstruction error: mean MSE of W(I_i, U(i->j)) against I_j over all pairs with |j-i| <= K (K = 1 and 6), next
to the same for zero flows (no motion model).  Usage: python bench/bench_fit.py [--skip-synthetic] [--dice]
"""
import argparse, os, sys, time
import numpy as np, torch
from flow2mask_nb.io import read_volume, read_labels, to_slices
from flow2mask_nb.testing import shared_data_dir, shifted_texture
from flow2mask_nb.preprocess import prepare
from flow2mask_nb.preprocess import resize_slices
from flow2mask_nb.flows import Flows, chain_flows_from
from flow2mask_nb.losses import l2g_loss
from flow2mask_nb.warp import warp
from flow2mask_nb.train import fit, fit_network


def report(name, vol, fl, t, steps):
    zero = Flows(torch.zeros_like(fl.forward), torch.zeros_like(fl.backward))
    with torch.no_grad():
        r = {K: (float(l2g_loss(vol, fl, K)), float(l2g_loss(vol, zero, K))) for K in (1, 6)}
    print(f"{name}: {tuple(vol.shape)} fit {t:.1f} s ({steps} steps, {torch.get_num_threads()} threads, "
          f"load {os.getloadavg()[0]:.2f}); " + '; '.join(f"MSE K<={K}: {v:.5f} (zero flow {z:.5f})" for K, (v, z) in r.items()),
          flush=True)


def timed(f, vol, **kw):
    t = time.perf_counter(); fl, hist = f(vol, progress=False, **kw); return fl, time.perf_counter() - t, len(hist)


def sanity_dice(prep, labels_path, fl, organs=(1, 2, 3, 5, 6)):
    "Seed = largest slice per organ, one warp by the composed flow, whole volume, no stop (a sanity number only)."
    lab = torch.from_numpy(np.ascontiguousarray(to_slices(read_labels(labels_path, prep.volume).array, prep.axis)).astype(np.int64))
    lab = resize_slices(lab.float(), fl.shape, mode='nearest').long()
    dice = {}
    for k in organs:
        m = (lab == k).float(); s = int(m.sum((1, 2)).argmax()); U = chain_flows_from(fl, s)
        pred = warp(m[s][None, None].expand(len(U), 1, -1, -1).contiguous(), U, padding='zeros')[:, 0] > 0.5
        dice[k] = float(2 * (pred & (m > 0)).sum() / (pred.sum() + m.sum()))
    return dice


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--skip-synthetic', action='store_true'); p.add_argument('--dice', action='store_true')
    p.add_argument('--network-steps', type=int, default=5, help='also time fit_network (test-time training) steps')
    p.add_argument('--threads', type=int, default=0, help='torch threads (0: torch default)')
    p.add_argument('--skip-ct', action='store_true'); p.add_argument('--syn-budget', type=float, default=90.)
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    data = shared_data_dir()
    if not a.skip_ct:
        if data is None: sys.exit('shared data not found: ../shared/data (or $FLOW2MASK_DATA)')
        prep = prepare(read_volume(data / 'abdomen_ct' / 'ct.nii.gz'))       # the CLI's normalisation and working grid
        ct = prep.work
        fl, t, n = timed(fit, ct)
        report(f"shared CT ({prep.intensity.rule}), fit (default)", ct, fl, t, n)
        if a.dice:
            d = sanity_dice(prep, data / 'abdomen_ct' / 'labels.nii.gz', fl)
            print(f"  sanity Dice (largest-slice seed, composed flows, whole volume, no stop): mean {np.mean(list(d.values())):.3f}",
                  {k: round(v, 3) for k, v in d.items()})
        if a.network_steps:
            fl, t, n = timed(fit_network, ct, steps=a.network_steps)
            print(f"shared CT, fit_network (FlowNet3D test-time training on the working grid): {t / n:.2f} s/step", flush=True)
    if not a.skip_synthetic:
        syn = shifted_texture(100, 256, 256, 0.4, -0.3, seed=0, blobs=12)
        syn128 = resize_slices(syn, (128, 128))     # the working resolution the CLI would use
        fl, t, n = timed(fit, syn128)
        report('synthetic 100 slices resized to 128x128, fit (default)', syn128, fl, t, n)
        fl, t, n = timed(fit, syn, budget_s=a.syn_budget)   # full 256x256: the default 180 steps take minutes on 2 cores
        report(f'synthetic 256x256x100, fit (default, budget {a.syn_budget:.0f} s)', syn, fl, t, n)


if __name__ == '__main__':
    main()
