"""The table that chose the defaults: each default of propagation against its alternatives, on every case.

Run:  .venv/bin/python bench/defaults.py [--cases NAME,NAME] [--no-ncc] [--no-completion | --no-propagation]

Flows are fitted once per case (the default fit) and reused by every row, so rows differ only in what they name.
Each structure is seeded on its largest true slice (an oracle annotator), all structures of a case in one call;
cells are the case's mean Dice over the volume at native resolution. The last row fits the flows with local
normalised cross-correlation instead of squared error (about 3x slower; `--no-ncc` skips it).

A second table does the same for mask completion (each structure drawn on every 5th slice of its range, ends
included, with the same flows), beside morphological contour interpolation: how the gap between two drawn slices
is filled (probabilities blended by distance, the warped outlines' signed distances, or both weighted by
`propagate.shape_weight`, the default) and whether a label drawn on several slices gets one intensity model from all
of them (the default) or one per drawn slice. The alternatives are set by replacing that one function for the row.
Writes bench/results/defaults.json.
"""
import argparse, contextlib, json, pathlib, sys, time
import numpy as np
import flow2mask_nb.propagate as propagate_module
from flow2mask_nb.benchmark import run_case, completion_case, summarise
from flow2mask_nb.io import json_ready
from flow2mask_nb.testing import shared_data_dir
from flow2mask_nb.flows import Flows
from flow2mask_nb.preprocess import prepare
from flow2mask_nb.flowsource import estimate_flows
from flow2mask_nb.stop import StopRule
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


_own_model = propagate_module.seed_model
COMPLETION_ROWS = [   # (name, {attribute of propagate_module or of its Fusion: replacement})
    ('default', {}),
    ('gaps: probabilities only (shape weight 0)', {'shape_weight': lambda area, gap, spacing: 0.}),
    ('gaps: interpolated outlines only (shape weight 1)', {'shape_weight': lambda area, gap, spacing: 1.}),
    ('one intensity model per drawn slice', {'seed_model': lambda image, mask, *a, others=(), **k: _own_model(image, mask, *a, **k)}),
]


@contextlib.contextmanager
def replaced(changes: dict):
    "Replace attributes of the propagate module (or of its classes, 'Class.attr') for one row, then restore them."
    old = {}
    try:
        for path, new in changes.items():
            *owner, attr = path.split('.')
            obj = getattr(propagate_module, owner[0]) if owner else propagate_module
            old[path] = (obj, attr, getattr(obj, attr)); setattr(obj, attr, new)
        yield
    finally:
        for obj, attr, value in old.values(): setattr(obj, attr, value)


def completion_rows(c, flows, table):
    "Completion from every 5th slice with each row's fill-in, and contour interpolation, for case `c`."
    for name, changes in COMPLETION_ROWS:
        with replaced(changes):
            r, _ = completion_case(c, 5, flows=Flows(flows.forward, flows.backward), interpolation=name == 'default')
        table[name][c.name] = float(np.mean([s['dice'] for s in r['flow2mask'].values()]))
        print(f"{c.name:18s} completion: {name:50s} {table[name][c.name]:.3f}", flush=True)
        if 'interpolation' in r:
            table['contour interpolation'][c.name] = float(np.mean([s['dice'] for s in r['interpolation'].values()]))


def markdown(table: dict, names: list) -> str:
    dev = [n for n in names if n != 'abdomen_ct']
    lines = ['| variant | ' + ' | '.join(names) + ' | mean over dev cases |', '|---|' + '---|' * (len(names) + 1)]
    for name, t in table.items():
        if all(n in t for n in names):
            lines.append(f"| {name} | " + ' | '.join(f"{t[n]:.3f}" for n in names) + f" | **{np.mean([t[n] for n in dev]):.3f}** |")
    return '\n'.join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--cases', default=None, help='comma-separated case names (default: all)')
    ap.add_argument('--no-ncc', action='store_true', help='skip the row with flows fitted with local NCC')
    ap.add_argument('--no-completion', action='store_true', help='skip the completion table')
    ap.add_argument('--no-propagation', action='store_true', help='only the completion table')
    a = ap.parse_args()
    data = shared_data_dir()
    if data is None: sys.exit('shared data not found: ../shared/data (or $FLOW2MASK_DATA)')
    cases = all_cases(data)
    if a.cases: cases = [c for c in cases if c.name in a.cases.split(',')]
    rows = list(ROWS) + ([] if a.no_ncc else [('flows fitted with local NCC instead of MSE', dict(rho='ncc'), False)])
    if a.no_propagation: rows = []
    table = {name: {} for name, _, _ in rows}
    completion = {name: {} for name, _ in COMPLETION_ROWS} | {'contour interpolation': {}}
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
            r, _ = run_case(c, baselines=False, flows=given, oracle_stop=oracle, **kw)
            table[name][c.name] = float(np.mean([s['dice'] for s in r['flow2mask'].values()]))
            print(f"{c.name:18s} {name:55s} {table[name][c.name]:.3f}", flush=True)
        if not a.no_completion: completion_rows(c, flows, completion)
        print(f"{c.name}: fit {fit_s:.1f} s", flush=True)
    names = [c.name for c in cases]
    if rows: print('\n' + markdown(table, names))
    if not a.no_completion: print('\ncompletion from every 5th slice\n' + markdown(completion, names))
    out = pathlib.Path(__file__).parent / 'results'; out.mkdir(exist_ok=True)
    parts = dict(propagation=table if rows else None, completion=None if a.no_completion else completion)
    name = 'defaults.json' if rows and not a.no_completion else f"defaults_{'completion' if not rows else 'propagation'}.json"
    (out / name).write_text(json.dumps(json_ready({k: v for k, v in parts.items() if v is not None}), indent=1))

if __name__ == '__main__':
    main()
