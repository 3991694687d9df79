"""Propagation benchmark: flow2mask vs the classical baselines on the shared abdomen CT and a long phantom.

Run:  .venv/bin/python bench/propagation.py [--repeats 3] [--skip-completion]
Prints tables (Dice over the whole volume at native resolution, HD95 in mm, wall time) and writes
bench/results/propagation.json. Seeds: each organ on its largest true slice (the benchmark's simulated
annotator; named 'largest' below), or on the slice `suggest` picks. Stops are automatic unless a row says
'oracle range'.
"""
import argparse, json, pathlib, statistics, sys, time
import numpy as np
import torch
from flow2mask_nb.io import read_volume, read_labels, to_slices
from flow2mask_nb.testing import shared_data_dir
from flow2mask_nb.pipeline import annotate, prepare, estimate_flows, suggest
from flow2mask_nb.propagate import propagate, StopRule
from flow2mask_nb.select import suggest_slice
from flow2mask_nb.baselines import copy_propagate, tvl1_propagate
from flow2mask_nb.metrics import dice, hd95, oracle_seed
from flow2mask_nb.phantom import make_phantom

ORGANS = (1, 2, 3, 5, 6)
NAMES = {1: 'spleen', 2: 'kidney_r', 3: 'kidney_l', 5: 'liver', 6: 'stomach'}


def scores(pred3, truth3, ids, spacing3):
    d = {l: dice(pred3 == l, truth3 == l) for l in ids}
    h = {l: hd95(pred3 == l, truth3 == l, spacing3) for l in ids}
    return d, h


def row(name, pred3, truth3, ids, spacing3, seconds, note=''):
    d, h = scores(pred3, truth3, ids, spacing3)
    return dict(method=name, dice=d, mean_dice=float(np.mean(list(d.values()))), hd95=h,
                mean_hd95=float(np.mean([v for v in h.values()])), seconds=seconds, note=note)


def baselines(slices, truth3, seed3, ids, spacing3):
    out = []
    t = time.perf_counter(); copy = np.zeros_like(truth3); copy_oracle = np.zeros_like(truth3)
    tv = np.zeros_like(truth3); cache = {}
    for l in ids:
        k = int(np.nonzero((seed3 == l).any(axis=(1, 2)))[0][0]); sl = np.where(seed3[k] == l, l, 0)
        rng = np.nonzero((truth3 == l).any(axis=(1, 2)))[0]
        copy = np.where(copy == 0, copy_propagate(sl, k, len(truth3)), copy)
        copy_oracle = np.where(copy_oracle == 0, copy_propagate(sl, k, len(truth3), (rng[0], rng[-1])), copy_oracle)
    t_copy = time.perf_counter() - t
    t = time.perf_counter()
    for l in ids:
        k = int(np.nonzero((seed3 == l).any(axis=(1, 2)))[0][0]); sl = np.where(seed3[k] == l, l, 0)
        tv = np.where(tv == 0, tvl1_propagate(slices, sl, k, flows=cache)[0], tv)
    t_tv = time.perf_counter() - t
    out.append(row('copy (whole volume)', copy, truth3, ids, spacing3, t_copy))
    out.append(row('copy (oracle range)', copy_oracle, truth3, ids, spacing3, t_copy, 'stops at the true extent'))
    out.append(row('TV-L1 slice-to-slice', tv, truth3, ids, spacing3, t_tv, 'same soft-tissue window'))
    return out


def run_case(name, image, truth_vol, ids, repeats, fit_kwargs):
    prep = prepare(image)
    truth3 = np.ascontiguousarray(to_slices(truth_vol.array, prep.axis))
    sp = image.spacing; spacing3 = (sp[prep.axis], *[s for k, s in enumerate(sp) if k != prep.axis])
    seed3 = oracle_seed(truth3, ids, axis=0)
    from flow2mask_nb.io import from_slices
    seed_vol = truth_vol.with_array(from_slices(seed3, prep.axis))
    rows = baselines(prep.slices, truth3, seed3, ids, spacing3)
    # flow2mask default: one call, all organs, fit on the volume (median wall time over repeats)
    times, last = [], None
    for r in range(repeats):
        t = time.perf_counter(); last = annotate(image, seed_vol, **fit_kwargs); times.append(time.perf_counter() - t)
    pred3 = to_slices(last.labels.array, prep.axis)
    rows.append(row('flow2mask (default: fit + composed + auto stop)', pred3, truth3, ids, spacing3,
                    statistics.median(times), f'median of {repeats} runs, fit {last.info["flow_seconds"]:.1f} s'))
    flows = last.flows
    for label, kw in (('flow2mask, sequential propagation', dict(mode='sequential')),
                      ('flow2mask, no intensity refinement', dict(refine=None)),
                      ('flow2mask, oracle range stop', dict(stop=StopRule(oracle_range={
                          l: tuple(np.nonzero((truth3 == l).any(axis=(1, 2)))[0][[0, -1]].tolist()) for l in ids})))):
        t = time.perf_counter(); a = annotate(image, seed_vol, flows=flows, **kw)
        rows.append(row(label, to_slices(a.labels.array, prep.axis), truth3, ids, spacing3,
                        time.perf_counter() - t, 'same flows, propagation time only'))
    t = time.perf_counter(); tvf, _ = estimate_flows(prep, flow_source='tvl1'); t_tvf = time.perf_counter() - t
    a = annotate(image, seed_vol, flows=tvf)
    rows.append(row('our propagation on TV-L1 flows', to_slices(a.labels.array, prep.axis), truth3, ids, spacing3,
                    t_tvf + a.info['propagate_seconds']))
    # seed on the suggested slice instead of the largest one
    sug = suggest_slice(prep.work.numpy(), flows)
    s = sug['slice']
    seed_s = np.zeros_like(truth3); seed_s[s] = np.where(np.isin(truth3[s], ids), truth3[s], 0)
    present = [l for l in ids if (seed_s == l).any()]
    if present:
        a = annotate(image, truth_vol.with_array(from_slices(seed_s, prep.axis)), flows=flows)
        rows.append(row(f'flow2mask, seed on suggested slice {s}', to_slices(a.labels.array, prep.axis), truth3, ids,
                        spacing3, a.info['propagate_seconds'],
                        f'organs absent there score 0: {[l for l in ids if l not in present]}'))
    per_organ = {}
    for l in ids:
        rng = tuple(np.nonzero((truth3 == l).any(axis=(1, 2)))[0][[0, -1]].tolist())
        so = suggest_slice(prep.work.numpy(), flows, rng)['slice']
        sd = np.zeros_like(truth3); sd[so] = np.where(truth3[so] == l, l, 0); per_organ[l] = sd
    seed_po = np.max(np.stack(list(per_organ.values())), axis=0)
    a = annotate(image, truth_vol.with_array(from_slices(seed_po, prep.axis)), flows=flows)
    rows.append(row('flow2mask, seed on slice suggested within each organ range', to_slices(a.labels.array, prep.axis),
                    truth3, ids, spacing3, a.info['propagate_seconds'], 'range given by the user (here: the true one)'))
    return dict(case=name, shape=list(image.shape), rows=rows, suggested=s)


def completion_case(image, truth_vol, ids, every, fit_flows=None):
    "Mask completion: each organ annotated on every `every`-th slice of its range (ends included)."
    from flow2mask_nb.io import from_slices
    prep = prepare(image)
    truth3 = np.ascontiguousarray(to_slices(truth_vol.array, prep.axis))
    sp = image.spacing; spacing3 = (sp[prep.axis], *[s for k, s in enumerate(sp) if k != prep.axis])
    sparse = np.zeros_like(truth3)
    for l in ids:
        rng = np.nonzero((truth3 == l).any(axis=(1, 2)))[0]
        ks = sorted(set(range(rng[0], rng[-1] + 1, every)) | {rng[-1]})
        for k in ks: sparse[k][truth3[k] == l] = l
    rows = []
    t = time.perf_counter()
    a = annotate(image, truth_vol.with_array(from_slices(sparse, prep.axis)), flows=fit_flows)
    rows.append(row(f'flow2mask completion (every {every})', to_slices(a.labels.array, prep.axis), truth3, ids,
                    spacing3, time.perf_counter() - t, 'flows reused' if fit_flows is not None else ''))
    try:
        from flow2mask_nb.baselines import morphological_interpolation
        t = time.perf_counter(); mi = morphological_interpolation(sparse, axis=0)
        rows.append(row(f'morphological contour interpolation (every {every})', mi, truth3, ids, spacing3,
                        time.perf_counter() - t, 'ITK, 3D Slicer "Fill between slices"'))
    except ImportError as e:
        rows.append(dict(method=f'morphological contour interpolation (every {every})', note=f'not run: {e}'))
    return rows


def print_rows(title, rows, ids, names=NAMES):
    print(f'\n## {title}\n')
    print('| method | ' + ' | '.join(names.get(l, str(l)) for l in ids) + ' | mean Dice | mean HD95 mm | seconds | note |')
    print('|---|' + '---|' * (len(ids) + 4))
    for r in rows:
        if 'dice' not in r: print(f"| {r['method']} | " + ' | '.join('' for _ in ids) + f" | | | | {r['note']} |"); continue
        print(f"| {r['method']} | " + ' | '.join(f"{r['dice'][l]:.3f}" for l in ids) +
              f" | **{r['mean_dice']:.3f}** | {r['mean_hd95']:.1f} | {r['seconds']:.1f} | {r['note']} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--skip-completion', action='store_true')
    ap.add_argument('--skip-phantom', action='store_true')
    args = ap.parse_args()
    results = {}
    d = shared_data_dir()
    if d is None: print('shared data not found: skipping the CT cases')
    else:
        image = read_volume(d / 'abdomen_ct' / 'ct.nii.gz'); truth = read_labels(d / 'abdomen_ct' / 'labels.nii.gz', image)
        ct = run_case('abdomen CT', image, truth, ORGANS, args.repeats, {})
        print_rows(f"abdomen CT {ct['shape']}, five organs seeded on their largest slices, one call", ct['rows'], ORGANS)
        results['ct'] = ct
        if not args.skip_completion:
            comp = completion_case(image, truth, ORGANS, 5) + completion_case(image, truth, ORGANS, 10)
            print_rows('mask completion on the abdomen CT', comp, ORGANS)
            results['completion'] = comp
    if not args.skip_phantom:
        ph = make_phantom(n_slices=160, size=(96, 96), n_organs=3, span=(0.2, 0.25), seed=1)
        case = run_case('long phantom', ph.image, ph.labels, ph.organ_ids, 1, {})
        print_rows('long phantom (160 slices, 3 organs each spanning 30-40 slices)', case['rows'], ph.organ_ids, {l: f'organ {l}' for l in ph.organ_ids})
        results['phantom'] = case
    out = pathlib.Path(__file__).parent / 'results'; out.mkdir(exist_ok=True)
    (out / 'propagation.json').write_text(json.dumps(results, indent=1, default=float))
    print(f'\nwrote {out / "propagation.json"}')


if __name__ == '__main__':
    main()
