"""Per-volume fit (`flow2mask_nb.train.fit`, the CLI's default when no model is given): time and final
reconstruction error on the shared abdomen CT (soft-tissue window) and on a 256x256x100 synthetic volume.

Reconstruction error: mean MSE of W(I_i, U(i->j)) against I_j over all pairs with |j-i| <= K (K = 1 and 6),
next to the same for zero flows (no motion model).  Usage: python bench/bench_fit.py [--skip-synthetic]
"""
import argparse, time
import numpy as np, torch
from flow2mask_nb.io import read_volume, read_labels, to_slices, shared_data_dir
from flow2mask_nb.model import Flows, chain_flows_from
from flow2mask_nb.losses import l2g_loss
from flow2mask_nb.warp import warp
from flow2mask_nb.train import fit, shifted_texture

p = argparse.ArgumentParser()
p.add_argument('--skip-synthetic', action='store_true'); p.add_argument('--dice', action='store_true')
p.add_argument('--network-steps', type=int, default=5)
p.add_argument('--threads', type=int, default=0, help='torch threads (0: torch default)')
p.add_argument('--skip-ct', action='store_true'); p.add_argument('--syn-budget', type=float, default=90.)
a = p.parse_args()
if a.threads: torch.set_num_threads(a.threads)

def report(name, vol, fl, t, steps):
    zero = Flows(torch.zeros_like(fl.forward), torch.zeros_like(fl.backward))
    with torch.no_grad():
        r = {K: (float(l2g_loss(vol, fl, K)), float(l2g_loss(vol, zero, K))) for K in (1, 6)}
    print(f"{name}: {tuple(vol.shape)} fit {t:.1f} s ({steps} steps, {torch.get_num_threads()} threads); "
          + '; '.join(f"MSE K<={K}: {v:.5f} (zero flow {z:.5f})" for K, (v, z) in r.items()), flush=True)

def timed_fit(vol, **kw):
    t = time.perf_counter(); fl, hist = fit(vol, progress=False, **kw); return fl, time.perf_counter() - t, len(hist)

ct_path = '/work/shared/data/abdomen_ct/ct.nii.gz'
v = read_volume(ct_path)
ct = torch.tensor(to_slices(np.clip((v.array.astype(np.float32) + 160) / 400, 0, 1), 2).copy())
if not a.skip_ct:
    fl, t, n = timed_fit(ct)
    report('shared CT, direct (default)', ct, fl, t, n)
if a.dice and not a.skip_ct:
    lab = torch.tensor(to_slices(read_labels(ct_path.replace('ct.nii', 'labels.nii'), v).array, 2).astype(np.int64).copy())
    dice = {}
    for k in (1, 2, 3, 5, 6):
        m = (lab == k).float(); s = int(m.sum((1, 2)).argmax()); U = chain_flows_from(fl, s)
        pred = warp(m[s][None, None].expand(len(U), 1, -1, -1).contiguous(), U, padding='zeros')[:, 0] > 0.5
        dice[k] = float(2 * (pred & (m > 0)).sum() / (pred.sum() + m.sum()))
    print(f"  sanity Dice (seed = largest slice, composed flows, whole volume, no stop): mean {np.mean(list(dice.values())):.3f}",
          {k: round(d, 3) for k, d in dice.items()})
if a.network_steps and not a.skip_ct:
    ctn = torch.nn.functional.interpolate(ct[None], size=(128, 128), mode='bilinear', align_corners=True)[0]
    fl, t, n = timed_fit(ctn, method='network', steps=a.network_steps, lr=1e-3)
    print(f"shared CT, method='network' (FlowNet3D test-time training at 128x128): {t / n:.2f} s/step", flush=True)
if not a.skip_synthetic:
    syn = shifted_texture(100, 256, 256, 0.4, -0.3, seed=0, blobs=12)
    # at the working resolution the CLI would use (in-plane 128), the full default fit
    syn128 = torch.nn.functional.interpolate(syn[None], size=(128, 128), mode='bilinear', align_corners=True, antialias=True)[0]
    fl, t, n = timed_fit(syn128)
    report('synthetic 100 slices resized to 128x128, direct (default)', syn128, fl, t, n)
    # at full 256x256 the default 180 steps take several minutes on 2 cores: run under a time budget
    fl, t, n = timed_fit(syn, budget_s=a.syn_budget)
    report(f'synthetic 256x256x100, direct (default, budget {a.syn_budget:.0f} s)', syn, fl, t, n)
