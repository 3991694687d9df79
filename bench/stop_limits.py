"""Where one seed cannot tell where a structure ends: what the stop cues and an extent prior would cost elsewhere.

Run:  .venv/bin/python bench/stop_limits.py [--cases NAME,NAME] [--tune-on sarcoma_001_mr]

The default stop carries the MR sarcoma 23 slices past its true ends (its ends are iso-intense with the muscle it
grows in). This asks whether any cue a stop could read would end it, and what that costs on the other cases.
Flows are fitted once per case (the default fit) and reused by every run; each structure is seeded on its largest
true slice (an oracle annotator), all structures of a case in one call; cells are mean Dice over the volume.

Cues, measured on each carried slice's refined mask, relative to the seed slice: the stop rule's own contrast and
intensity support, the area, the shift of the median intensity (smoothed, in the seed's standard deviations), the
density of fine bright or dark lines (e.g. the fasciae between muscles) and the orientation coherence of the texture.
For each cue, the threshold is TUNED ON THE CASE NAMED BY --tune-on (the best of a grid there: a deliberately
favourable choice for that case), added to the default stop, then run on every case. Beside them: an extent prior (a
track stops once it is carried further than K times its seed's equivalent radius, in mm), for every label or only
for faint seeds (those that do not stand out from their surroundings on the seed slice), and the oracle stop.
Last, the annotator's remedy on the tuning case (`session.user_ends`): after the one-seed run, the first slice past
each true end emptied by hand (chosen from the truth, as the annotator's eye would), and the run revised.
`--trace CASE` prints every cue on every slice of CASE's structures carried with no stop (no table, no file).
Writes bench/results/stop_limits.json.
"""
import argparse, json, math, pathlib, sys
import numpy as np, torch
from scipy import ndimage
import flow2mask_nb.propagate as propagate_module
from flow2mask_nb.benchmark import run_case, seed_slice_for, load_case
from flow2mask_nb.io import json_ready
from flow2mask_nb.io import to_slices
from flow2mask_nb.flows import Flows
from flow2mask_nb.preprocess import prepare
from flow2mask_nb.flowsource import estimate_flows
from flow2mask_nb.testing import shared_data_dir

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from cases import all_cases
from defaults import replaced, markdown

GRIDS = {   # cue -> thresholds tried on the tuning case; the first three stop below, the others above
    'contrast': (0.2, 0.5, 0.8), 'support': (0.7, 0.8, 0.9, 0.95), 'area': (0.3, 0.5, 0.6, 0.7, 0.8),
    'intensity shift': (0.5, 0.75, 1., 1.5, 2.), 'fine lines': (1.1, 1.2, 1.3, 1.5), 'coherence': (1.1, 1.2, 1.3, 1.5)}
BELOW = ('contrast', 'support', 'area')
TEXTURE = ('fine lines', 'coherence')
PRIORS = [('extent <= 1.3 seed radii, every label', 1.3, False), ('extent <= 2 seed radii, every label', 2., False),
          ('extent <= 1.3 seed radii, faint seeds only', 1.3, True)]
_track_slice = propagate_module._track_slice


def _core(mask, depth=3):
    "The mask eroded by `depth` pixels, or the mask itself when that leaves too little."
    core = ndimage.binary_erosion(mask, iterations=depth)
    return core if core.sum() >= 10 else mask


def texture(n: np.ndarray) -> dict:
    "Per-pixel texture maps of a normalised slice: smoothed intensity, fine-line response, orientation coherence."
    cross = ndimage.iterate_structure(ndimage.generate_binary_structure(2, 1), 2)
    lines = np.maximum(n - ndimage.grey_opening(n, footprint=cross), ndimage.grey_closing(n, footprint=cross) - n)
    gy, gx = np.gradient(ndimage.gaussian_filter(n, 1.))
    jxx, jyy, jxy = (ndimage.gaussian_filter(a, 4.) for a in (gx * gx, gy * gy, gx * gy))
    coherence = np.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2) / (jxx + jyy + 1e-8)
    return dict(smooth=ndimage.gaussian_filter(n, 2.), lines=lines, coherence=coherence)


def seed_stats(n: np.ndarray, mask: np.ndarray) -> dict:
    "The seed slice's reference values of the texture maps inside its structure."
    t, c = texture(n), _core(mask)
    return dict(median=np.median(t['smooth'][c]), sd=t['smooth'][c].std() + 1e-6,
                lines=max(np.percentile(t['lines'][c], 90), 1e-6), coherence=max(np.median(t['coherence'][c]), 1e-6))


def cue_value(cue: str, n: np.ndarray, mask: np.ndarray, seed: dict, info: dict) -> float:
    "One cue on one carried slice (normalised roi image `n`, refined `mask`), relative to the seed."
    if cue in BELOW: return info[cue]
    t, c = texture(n), _core(mask)
    if cue == 'intensity shift': return abs(np.median(t['smooth'][c]) - seed['median']) / seed['sd']
    if cue == 'fine lines': return np.percentile(t['lines'][c], 90) / seed['lines']
    return np.median(t['coherence'][c]) / seed['coherence']


def cue_stop(cue: str, threshold: float, vol: np.ndarray, truth3: np.ndarray, faint_only: bool = False, trace=None):
    "A `_track_slice` that also stops a track once `cue` passes `threshold`; with `trace` a list, records all cues instead."
    seeds = {}
    def track_slice(t, p, x_raw, seed_image, cyc, j, distance, rule, refine, label, depth):
        res = _track_slice(t, p, x_raw, seed_image, cyc, j, distance, rule, refine, label, depth)
        mask = None if res is None else (res[0] >= 0.5).numpy()
        faint = abs(t.model.separation) < rule.clear_separation
        if mask is None or not t.judged or not mask.any() or (faint_only and not faint): return res
        if label not in seeds:
            s = seed_slice_for(truth3, label)
            seeds[label] = seed_stats(t.model.normalise(torch.from_numpy(vol[s])).numpy(), truth3[s] == label)
        n = t.model.normalise(x_raw).numpy()
        if trace is not None:
            trace.append(dict(label=label, slice=j, distance=distance, faint=faint, true_pixels=int((truth3[j] == label).sum()),
                              **{c: float(cue_value(c, n, mask, seeds[label], res[1])) for c in GRIDS}))
            return res
        value = cue_value(cue, n, mask, seeds[label], res[1])
        if (value < threshold) if cue in BELOW else (value > threshold):
            t.reason = 'cue'; return None
        return res
    return track_slice


def extent_stop(k: float, faint_only: bool, spacing):
    "A `_track_slice` that also stops a track carried further than `k` seed radii (mm) from its seed."
    def track_slice(t, p, x_raw, seed_image, cyc, j, distance, rule, refine, label, depth):
        radius = math.sqrt(t.model.area * spacing[1] * spacing[2] / math.pi)
        faint = abs(t.model.separation) < rule.clear_separation
        if t.judged and (faint or not faint_only) and distance * spacing[0] > k * radius:
            t.reason = 'extent'; return None
        return _track_slice(t, p, x_raw, seed_image, cyc, j, distance, rule, refine, label, depth)
    return track_slice


class FittedCase:
    "One case's volume, truth and fitted flows, and its mean Dice under a replaced `_track_slice`."
    def __init__(self, case):
        image, _, axis, self.truth3, _, self.spacing = load_case(case)
        self.case, self.vol = case, to_slices(np.asarray(image.array), axis).astype(np.float32)
        self.flows, _ = estimate_flows(prepare(image, axis))

    def dice(self, track_slice=None, **kw) -> float:
        with replaced({'_track_slice': track_slice} if track_slice else {}):
            r, _ = run_case(self.case, baselines=False, flows=Flows(self.flows.forward, self.flows.backward), **kw)
        return float(np.mean([s['dice'] for s in r['flow2mask'].values()]))


def tune(case: 'FittedCase') -> dict:
    "Per cue, the threshold of its grid that gives `case` its best Dice, and that Dice."
    best = {}
    for cue, grid in GRIDS.items():
        scores = {th: case.dice(cue_stop(cue, th, case.vol, case.truth3)) for th in grid}
        best[cue] = max(scores, key=scores.get)
        print(f"tuning on {case.case.name}: {cue:16s} " + ' '.join(f"{th:g}: {v:.3f}" for th, v in scores.items()), flush=True)
    return best


def rows(case: 'FittedCase', thresholds: dict) -> dict:
    "Mean Dice of the case: default, each tuned cue added to the stop, each extent prior, oracle stop."
    out = {'default': case.dice()}
    for cue, th in thresholds.items():
        out[f"stop also when {cue} {'<' if cue in BELOW else '>'} {th:g}"] = case.dice(cue_stop(cue, th, case.vol, case.truth3))
    for cue in TEXTURE:
        out[f"stop also when {cue} > {thresholds[cue]:g}, faint seeds only"] = \
            case.dice(cue_stop(cue, thresholds[cue], case.vol, case.truth3, faint_only=True))
    for name, k, faint_only in PRIORS: out[name] = case.dice(extent_stop(k, faint_only, case.spacing))
    out['oracle stop at the true extent (comparison only)'] = case.dice(oracle_stop=True)
    return out


def trace(case: 'FittedCase'):
    "Print every cue on every slice each structure of `case` is carried to, with no stop, beside the true pixels there."
    from flow2mask_nb.stop import StopRule
    never = StopRule(min_pixels=1, area_fraction=None, support_fraction=None, separation_fraction=None,
                     faint_separation_fraction=None, agreement=None)
    seen = []
    case.dice(cue_stop(None, None, case.vol, case.truth3, trace=seen), stop=never)
    print('label slice distance faint true_pixels ' + ' '.join(c.replace(' ', '_') for c in GRIDS))
    for r in sorted(seen, key=lambda r: (r['label'], r['slice'])):
        print(f"{r['label']} {r['slice']} {r['distance']} {r['faint']} {r['true_pixels']} " + ' '.join(f"{r[c]:.2f}" for c in GRIDS))


def emptied_ends(case) -> dict:
    "The annotator's remedy on `case`: one seed, then the first slice past each true end of each structure emptied."
    import time
    from flow2mask_nb.metrics import dice
    from flow2mask_nb.session import Session
    image, _, axis, truth3, ids, _ = load_case(case)
    seed = np.zeros(truth3.shape, np.uint8)
    for l in ids: k = seed_slice_for(truth3, l); seed[k][truth3[k] == l] = l
    sess = Session(image, axis); sess.compute_flows()
    first, rev = sess.propagate(seed)
    emptied, erased = first.copy(), 0
    for l in ids:
        z = np.nonzero((truth3 == l).any((1, 2)))[0]
        for k in (z[0] - 1, z[-1] + 1):
            if 0 <= k < len(first) and (first[k] == l).any(): emptied[k][emptied[k] == l] = 0; erased += 1
    t = time.perf_counter(); ended, _ = sess.propagate(emptied, rev); seconds = time.perf_counter() - t
    score = lambda out: float(np.mean([dice(out == l, truth3 == l) for l in ids]))
    return dict(case=case.name, one_seed=score(first), emptied_slices=erased, after_emptying=score(ended), seconds=seconds)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--cases', default=None, help='comma-separated case names (default: all)')
    ap.add_argument('--tune-on', default='sarcoma_001_mr', help='the case each cue threshold is tuned on')
    ap.add_argument('--trace', default=None, metavar='CASE', help='only print the cues on every slice of CASE, no stop')
    a = ap.parse_args()
    data = shared_data_dir()
    if data is None: sys.exit('shared data not found: ../shared/data (or $FLOW2MASK_DATA)')
    cases = {c.name: c for c in all_cases(data)}
    for name in (a.tune_on, a.trace):
        if name is not None and name not in cases: sys.exit(f'unknown case {name!r}: one of {sorted(cases)}')
    if a.trace: return trace(FittedCase(cases[a.trace]))
    names = [n for n in cases if not a.cases or n in a.cases.split(',')]
    tuning = FittedCase(cases[a.tune_on])
    thresholds = tune(tuning)
    table = {}
    for n in names:
        table[n] = rows(tuning if n == a.tune_on else FittedCase(cases[n]), thresholds)
        print(n, {k: round(v, 3) for k, v in table[n].items()}, flush=True)
    by_row = {row: {n: table[n][row] for n in names} for row in table[names[0]]}
    print(f'\nmean Dice per case; cue thresholds tuned on {a.tune_on}\n' + markdown(by_row, names))
    remedy = emptied_ends(cases[a.tune_on])
    print(f"\n{a.tune_on}: one seed {remedy['one_seed']:.3f}; the first slice past each end emptied "
          f"({remedy['emptied_slices']} slices): {remedy['after_emptying']:.3f}, in {remedy['seconds']:.2f} s")
    out = pathlib.Path(__file__).parent / 'results'; out.mkdir(exist_ok=True)
    (out / 'stop_limits.json').write_text(json.dumps(json_ready(dict(
        tuned_on=a.tune_on, thresholds=thresholds, dice=table, emptied_ends=remedy)), indent=1))

if __name__ == '__main__':
    main()
