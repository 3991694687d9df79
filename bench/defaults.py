"""The table that chose the defaults: each default of propagation against its alternatives, on every case.

Run:  .venv/bin/python bench/defaults.py [--cases NAME,NAME] [--no-ncc]

Flows are fitted once per case (the default fit) and reused by every row, so rows differ only in what they name.
Each structure is seeded on its largest true slice (an oracle annotator), all structures of a case in one call;
cells are the case's mean Dice over the volume at native resolution. The last row fits the flows with local
normalised cross-correlation instead of squared error (about 3x slower; `--no-ncc` skips it). Writes
bench/results/defaults.json.
"""
import argparse, json, pathlib, sys, time
import numpy as np
from flow2mask_nb.benchmark import run_case, summarise
from flow2mask_nb.cli import _jsonable
from flow2mask_nb.testing import shared_data_dir
from flow2mask_nb.model import Flows
from flow2mask_nb.pipeline import prepare, estimate_flows
from flow2mask_nb.propagate import StopRule
from flow2mask_nb.io import read_volume, choose_slice_axis

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from cases import all_cases

NO_INTENSITY_STOP = dict(support_fraction=None, separation_fraction=None, faint_separation_fraction=None)
ROWS = [   # (name, annotate options, oracle stop)
    ('default', {}, False),
    ('no refinement (flow alone, threshold 0.5)', dict(refine=None), False),
    ('no finer flows near small structures', dict(local=False), False),
    ('stop: intensity support 0.3 instead of 0.5', dict(stop=StopRule(support_fraction=0.3)), False),
    ('stop: contrast 0.25 instead of 0.35', dict(stop=StopRule(separation_fraction=0.25)), False),
    ('stop: no rule for faint seeds', dict(stop=StopRule(faint_separation_fraction=None)), False),
    ('stop: area 0.2 instead of 0.05', dict(stop=StopRule(area_fraction=0.2)), False),
    ('stop: only vanished / area (no intensity criteria)', dict(stop=StopRule(**NO_INTENSITY_STOP)), False),
    ('sequential slice-to-slice warping instead of composed flows', dict(mode='sequential'), False),
    ('our propagation on TV-L1 flows instead of fitted flows', dict(flow_source='tvl1'), False),
    ('oracle stop at the true extent (comparison only)', {}, True),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--cases', default=None, help='comma-separated case names (default: all)')
    ap.add_argument('--no-ncc', action='store_true', help='skip the row with flows fitted with local NCC')
    a = ap.parse_args()
    data = shared_data_dir()
    if data is None: sys.exit('shared data not found: ../shared/data (or $FLOW2MASK_DATA)')
    cases = all_cases(data)
    if a.cases: cases = [c for c in cases if c.name in a.cases.split(',')]
    rows = list(ROWS) + ([] if a.no_ncc else [('flows fitted with local NCC instead of MSE', dict(rho='ncc'), False)])
    table = {name: {} for name, _, _ in rows}
    for c in cases:
        image = read_volume(c.image)
        prep = prepare(image, choose_slice_axis(image.spacing, c.axis))
        t = time.perf_counter(); flows, _ = estimate_flows(prep); fit_s = time.perf_counter() - t
        for name, kw, oracle in rows:
            kw = dict(kw)
            fl = None
            if kw.pop('rho', None) == 'ncc':
                from flow2mask_nb.train import fit
                fl, _ = fit(prep.work, rho='ncc', progress=False)
            if kw.get('flow_source') == 'tvl1': given = None          # TV-L1 flows are computed by the run
            else: given = Flows(flows.forward, flows.backward) if fl is None else fl
            r = run_case(c, baselines=False, flows=given, oracle_stop=oracle, **kw)
            table[name][c.name] = float(np.mean([s['dice'] for s in r['flow2mask'].values()]))
            print(f"{c.name:18s} {name:55s} {table[name][c.name]:.3f}", flush=True)
        print(f"{c.name}: fit {fit_s:.1f} s", flush=True)
    names = [c.name for c in cases]
    dev = [n for n in names if n != 'abdomen_ct']
    print('\n| variant | ' + ' | '.join(names) + ' | mean over dev cases |')
    print('|---|' + '---|' * (len(names) + 1))
    for name, _, _ in rows:
        t = table[name]
        print(f"| {name} | " + ' | '.join(f"{t[n]:.3f}" for n in names) + f" | **{np.mean([t[n] for n in dev]):.3f}** |")
    out = pathlib.Path(__file__).parent / 'results'; out.mkdir(exist_ok=True)
    (out / 'defaults.json').write_text(json.dumps(_jsonable(table), indent=1))


if __name__ == '__main__':
    main()
