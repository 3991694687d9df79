"""Learned flows (issue 11): training curves per recipe option, inference with a model, and the bars.

  python bench/bench_learned.py train NAME [--exclude CASE] [--ship] -- [flow2mask train options]
      runs `flow2mask train` on the eight images of ../shared/data (abdomen_ct/ct.nii.gz and the seven dev cases'
      image.nii.gz; labels never read), minus --exclude (leave one out), or with --ship on the permissively licensed
      ones only (PERMISSIVE: the shared CT, the sarcoma CT and MR, the spinal cord); model folder
      bench/results/learned/NAME, with snapshots for the curve.
  python bench/bench_learned.py curve NAME [NAME ...]
      for every snapshot of each run: reconstruction error at distances 1..6 on volumes left out of training (the
      DICOM abdomen CT of ../shared/data and a synthetic phantom; on the run's excluded case too) and the Dice of the
      network's flows alone (no fitting: `flow_source='model'`) on the shared CT and the dev cases.
  python bench/bench_learned.py infer NAME [--steps 0,20,40,60] [--cases a,b]
      per case, in one process and interleaved: the default (fit from zero, 180 steps), the model's flows refined by
      N steps (`annotate(model=...)`), and N steps from zero flows without a model; Dice and wall seconds.
  python bench/bench_learned.py report
      the tables (markdown) and bench/figures/learned_curves.png from bench/results/learned/*.json.

Dice comes from `flow2mask_nb.benchmark.run_case` (each structure seeded on its largest true slice, an oracle
annotator; automatic stop; native resolution). Every timing is printed with the 1-minute load average: this
2-core machine is shared, so compare times measured in the same run only.
"""
import argparse, json, os, pathlib, sys, time
import numpy as np
import torch

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))
from cases import all_cases                                         # noqa: E402  (the benchmark's case list)
from flow2mask_nb.testing import shared_data_dir                    # noqa: E402
from flow2mask_nb.benchmark import run_case                         # noqa: E402
from flow2mask_nb.cli import main as cli_main                          # noqa: E402
from flow2mask_nb.io import json_ready                              # noqa: E402
from flow2mask_nb.io import read_volume                             # noqa: E402
from flow2mask_nb.preprocess import prepare                           # noqa: E402
from flow2mask_nb.flows import Flows                                # noqa: E402
from flow2mask_nb.losses import error_by_distance                   # noqa: E402
from flow2mask_nb.train import model_flows, fit                     # noqa: E402

OUT = HERE / 'results' / 'learned'
# a shipped model is trained on these only (README of ../shared/data: CC BY 4.0, CC BY 3.0, MIT); never on the
# CC BY-NC-SA glioma case, nor on cases whose licence the data README does not state as permissive
PERMISSIVE = ('abdomen_ct', 'sarcoma_001_ct', 'sarcoma_001_mr', 'spinal_cord_t2')
REACH = 6


def load() -> float: return round(os.getloadavg()[0], 2)


def training_images(data, exclude=(), ship=False) -> list:
    "The eight images: the shared CT and every dev case's image (minus `exclude`; with `ship`, the PERMISSIVE ones only)."
    return [c.image for c in all_cases(data) if c.name not in set(exclude) and (not ship or c.name in PERMISSIVE)]


def cmd_train(a, rest):
    data = shared_data_dir()
    imgs = training_images(data, a.exclude.split(',') if a.exclude else (), a.ship)
    out = OUT / a.name; out.parent.mkdir(parents=True, exist_ok=True)
    args = ['train', *map(str, imgs), '-o', str(out), '-q', *rest]
    meta = dict(name=a.name, command='flow2mask ' + ' '.join(args[:1] + ['<%d images>' % len(imgs)] + args[1 + len(imgs):]),
                images=[str(p.relative_to(data)) for p in imgs], exclude=a.exclude, load_start=load(),
                torch_threads=torch.get_num_threads())
    t = time.time(); code = cli_main(args); meta.update(wall_s=time.time() - t, load_end=load(), exit=code)
    (out / 'run.json').write_text(json.dumps(meta, indent=1)); print(json.dumps(meta))


def held_out_volumes(data) -> dict:
    "Volumes no training run sees: the DICOM abdomen CT (another scan geometry) and a synthetic phantom."
    from flow2mask_nb.phantom import make_phantom
    vols = {'abdomen_ct_dicom': read_volume(data / 'abdomen_ct_dicom' / 'series'),
            'phantom': make_phantom(n_slices=48, size=(96, 96), seed=1).image}
    return {k: prepare(v).work for k, v in vols.items()}


def references(work) -> dict:
    "Reconstruction error of zero flows and of the default per-volume fit (180 steps), per distance."
    zero = Flows(torch.zeros(work.shape[0] - 1, 2, *work.shape[1:]), torch.zeros(work.shape[0] - 1, 2, *work.shape[1:]))
    fitted, _ = fit(work, progress=False, threads=1)
    return dict(zero=error_by_distance(work, zero, REACH), fit=error_by_distance(work, fitted, REACH))


def snapshots(folder: pathlib.Path) -> list:
    "(training seconds, path) of every snapshot and the final model, in time order."
    from flow2mask_nb.checkpoint import load_checkpoint
    out = []
    for p in folder.glob('model*.safetensors'):
        ck = load_checkpoint(p); out.append((float(ck.extra.get('seconds', 0)), int(ck.step or 0), p))
    return sorted(out)


def mean_dice(result: dict, method: str = 'flow2mask') -> float:
    "A `run_case` result's mean Dice over its structures, for `method` ('flow2mask', 'tvl1', 'copy')."
    return float(np.mean([s['dice'] for s in result[method].values()]))


def dice_alone(model, cases) -> dict:
    "Mean Dice per case of the network's flows alone (the finer flows near small structures: the network on the box)."
    out = {}
    for c in cases:
        r, _ = run_case(c, baselines=False, model=model, flow_source='model', progress=False, threads=1)
        out[c.name] = mean_dice(r)
    return out


def cmd_curve(a):
    data = shared_data_dir(); cases = all_cases(data)
    held = held_out_volumes(data)
    ref_path = OUT / 'references.json'
    refs = json.loads(ref_path.read_text()) if ref_path.exists() else {k: references(w) for k, w in held.items()}
    ref_path.write_text(json.dumps(refs, indent=1))
    for name in a.names:
        folder = OUT / name
        run = json.loads((folder / 'run.json').read_text()) if (folder / 'run.json').exists() else {}
        excl = [c for c in cases if run.get('exclude') and c.name in run['exclude'].split(',')]
        vols = dict(held, **{c.name: prepare(read_volume(c.image), c.axis).work for c in excl})
        points = []
        for seconds, step, path in snapshots(folder)[-1:] if a.last else snapshots(folder):
            t = time.time()
            rec = {k: error_by_distance(w, model_flows(path, w, steps=0)[0], REACH) for k, w in vols.items()}
            d = dice_alone(path, cases if not a.quick else cases[:1])
            points.append(dict(file=path.name, seconds=seconds, step=step, recon=rec, dice_alone=d,
                               ct=d.get('abdomen_ct'), dev_mean=_dev_mean(d), eval_s=time.time() - t, load=load()))
            print(f"{name} {path.name}: {seconds / 60:.1f} min, step {step}: held-out MSE d=1..6 "
                  + ' | '.join(f"{k} {np.mean(v):.5f}" for k, v in rec.items())
                  + f"; Dice alone CT {d.get('abdomen_ct', float('nan')):.3f} dev {_dev_mean(d):.3f} (load {load()})", flush=True)
        (OUT / f'{name}.curve{a.tag}.json').write_text(json.dumps(json_ready(dict(name=name, run=run, points=points)), indent=1))


def _dev_mean(d: dict) -> float:
    v = [x for k, x in d.items() if k != 'abdomen_ct']
    return float(np.mean(v)) if v else float('nan')


def _case_row(c, **kw) -> dict:
    r, _ = run_case(c, baselines=False, progress=False, **kw)
    return dict(dice=mean_dice(r), seconds=r['seconds'],
                flow_s=r['info'].get('flow_seconds'), local_s=r['info'].get('local_seconds', 0.), load=load())


def cmd_infer(a):
    data = shared_data_dir(); cases = all_cases(data)
    if a.cases: cases = [c for c in cases if c.name in a.cases.split(',')]
    model = OUT / a.name / 'model.safetensors'
    steps = [int(s) for s in a.steps.split(',')]
    rows = []
    for c in cases:
        row = dict(case=c.name, default=_case_row(c, threads=1))
        for n in steps:
            row[f'model+{n}'] = _case_row(c, model=model, fit_steps=n or None, flow_source='model' if n == 0 else 'auto', threads=1)
            if n: row[f'zero+{n}'] = _case_row(c, fit_steps=n, threads=1)
        if a.tvl1:
            r, _ = run_case(c, progress=False, flow_source='tvl1')
            row['tvl1'] = dict(dice=mean_dice(r, 'tvl1'), seconds=r['tvl1_seconds'])
        rows.append(row)
        print(c.name + ': ' + ', '.join(f"{k} {v['dice']:.3f} ({v['seconds']:.1f} s)" for k, v in row.items() if k != 'case')
              + f" (load {load()})", flush=True)
    (OUT / f'{a.name}.infer{a.tag}.json').write_text(json.dumps(json_ready(dict(name=a.name, steps=steps, rows=rows)), indent=1))


LABELS = {  # what each run of the curve tried (all: `flow2mask train` on the eight images; options beside the recipe's)
    'final': 'recipe (2D pairwise, flows at 1/2, crops, augmentation, L2G), 25 min',
    's_2d_stride2': 'the recipe, 8 min budget',
    'B2d': '2D, full-resolution flows, 5 min',
    'A3d': '3D whole-stack, full-resolution flows, 5 min',
    's_3d_stride2': '3D whole-stack, flows at 1/2',
    's_2d_whole': '2D, whole slices, no augmentation',
    's_2d_lr3': '2D, lr 3e-3',
    's_2d_iss': '2D, ISS weight 0.1',
    's_2d_global': '2D, L2G to the global reach',
    's_2d_vol2flow': '2D, Vol2Flow loss instead of L2G',
    's_2d_teacher': '2D, + distillation from per-volume fits',
    's_2d_s2_teacher': 'the recipe + distillation',
}


def curve_table(curves) -> str:
    lines = ['| run | minutes | steps | held-out MSE d=1..6, DICOM CT | phantom | Dice alone: CT | dev mean |', '|' + '---|' * 7]
    for c in curves:
        for p in {p['step']: p for p in c['points']}.values():   # a run's last snapshot can be listed twice
            r = p['recon']
            lines.append(f"| {LABELS.get(c['name'], c['name'])} | {p['seconds'] / 60:.1f} | {p['step']} | {np.mean(r['abdomen_ct_dicom']):.5f} | "
                         f"{np.mean(r['phantom']):.5f} | {_f(p.get('ct'))} | {_f(p.get('dev_mean'))} |")
    return '\n'.join(lines)


def _f(v): return '' if v is None or (isinstance(v, float) and np.isnan(v)) else f'{v:.3f}'


def tvl1_reference() -> dict:
    "TV-L1's mean Dice on the shared CT and over the dev cases from bench/cases.py's last run, or {} without one."
    p = HERE / 'results' / 'cases.json'
    if not p.exists(): return {}
    rows = {r['case']: r['tvl1'] for r in json.loads(p.read_text())['largest']['summary']['rows']}
    dev = [rows[c.name] for c in all_cases(shared_data_dir()) if c.name != 'abdomen_ct' and c.name in rows]
    return dict(ct=rows.get('abdomen_ct'), dev=float(np.mean(dev)) if dev else None)


def plot_curves(curves, refs, path, full=()):
    "Quality against training minutes, per run: held-out reconstruction error, Dice of the network alone (CT, dev)."
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    fig, axs = plt.subplots(1, 3, figsize=(15, 4.6))
    for i, c in enumerate(curves):
        m, kw = [p['seconds'] / 60 for p in c['points']], dict(color=f'C{i % 10}', ls='-' if i < 10 else '--', marker='o', ms=4)
        label = LABELS.get(c['name'], c['name'])
        axs[0].plot(m, [np.mean(p['recon']['abdomen_ct_dicom']) for p in c['points']], label=label, **kw)
        axs[1].plot(m, [p.get('ct') for p in c['points']], label=label, **kw)
        points = c['points'] + [p for f in full if f['name'] == c['name'] for p in f['points']]
        pts = {(p['seconds'] / 60, p['dev_mean']) for p in points if _f(p.get('dev_mean'))}   # runs without dev Dice: none
        if pts: axs[2].plot(*zip(*sorted(pts)), label=label, **kw)
    for k, ls in (('zero', ':'), ('fit', '--')):
        axs[0].axhline(np.mean(refs['abdomen_ct_dicom'][k]), color='k', ls=ls, lw=1, label='zero flows' if k == 'zero' else 'per-volume fit')
    runs = list(axs[1].get_lines())
    tvl1 = tvl1_reference()                                                # bench/cases.py, same protocol
    for ax, value in ((axs[1], tvl1.get('ct')), (axs[2], tvl1.get('dev'))):
        if value is not None: ax.legend(fontsize=7, handles=[ax.axhline(value, color='r', ls='--', lw=1, label=f'TV-L1 {value:.3f}')])
    axs[0].set_ylabel('MSE, distances 1..6'); axs[0].set_title('held out of training: DICOM abdomen CT')
    axs[1].set_title('Dice, network flows alone: shared CT'); axs[2].set_title('Dice, network flows alone: dev mean')
    for ax in axs: ax.set_xlabel('training minutes (2-core CPU shared, load 3-7)')
    axs[0].legend(fontsize=7, handles=axs[0].get_lines()[-2:])
    fig.legend(runs, [l.get_label() for l in runs], loc='lower center', ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0.2, 1, 1)); fig.savefig(path, dpi=100)


def _mean_of(rows, key, field='dice'):
    return float(np.mean([r[key][field] for r in rows])) if rows and all(key in r for r in rows) else float('nan')


def infer_table(res) -> str:
    keys = [k for k in res['rows'][0] if k != 'case']
    lines = ['| case | ' + ' | '.join(keys) + ' |', '|' + '---|' * (len(keys) + 1)]
    for r in res['rows']:
        lines.append(f"| {r['case']} | " + ' | '.join(f"{r[k]['dice']:.3f} ({r[k]['seconds']:.1f} s)" for k in keys) + ' |')
    dev = [r for r in res['rows'] if r['case'] != 'abdomen_ct']
    if len(dev) > 1:
        lines.append('| **dev mean** | ' + ' | '.join(f"{_mean_of(dev, k):.3f} ({_mean_of(dev, k, 'seconds'):.1f} s)" for k in keys) + ' |')
    return '\n'.join(lines)


def bars(res, refine='model+40') -> list:
    "The issue's bars, from one `infer` run with --tvl1 (all in the same process, so the times compare)."
    out = []
    for name, rows in (('shared CT', [r for r in res['rows'] if r['case'] == 'abdomen_ct']),
                       ('dev mean', [r for r in res['rows'] if r['case'] != 'abdomen_ct'])):
        if not rows: continue
        alone, tv = _mean_of(rows, 'model+0'), _mean_of(rows, 'tvl1')
        d, ds = _mean_of(rows, 'default'), _mean_of(rows, 'default', 'seconds')
        m, ms = _mean_of(rows, refine), _mean_of(rows, refine, 'seconds')
        out.append(f"{name}: network flows alone {alone:.3f} vs TV-L1 {tv:.3f} -> {'met' if alone > tv else 'NOT met'}; "
                   f"{refine} {m:.3f} in {ms:.1f} s vs default {d:.3f} in {ds:.1f} s (a third: {ds / 3:.1f} s) -> "
                   f"{'met' if m >= d - 0.01 and ms <= ds / 3 else 'NOT met'}")
    return out


def cmd_report(a):
    curves = [json.loads(p.read_text()) for p in sorted(OUT.glob('*.curve.json'))]
    refs = json.loads((OUT / 'references.json').read_text())
    print(curve_table(curves))
    print('\nreferences (held-out MSE, distances 1..6, mean): ' + '; '.join(
        f"{k}: zero {np.mean(v['zero']):.5f}, per-volume fit {np.mean(v['fit']):.5f}" for k, v in refs.items()))
    for p in sorted(OUT.glob('*.infer*.json')):
        res = json.loads(p.read_text())
        print(f"\n{p.name}\n" + infer_table(res))
        if any('tvl1' in r for r in res['rows']): print('\n'.join(bars(res)))
    (HERE / 'figures').mkdir(exist_ok=True)
    full = [json.loads(p.read_text()) for p in sorted(OUT.glob('*.curve_full.json'))]
    if full:
        print('\nthe last model of each run, network flows alone, Dice per case\n| run | minutes | steps | ' + ' | '.join(
            full[0]['points'][0]['dice_alone']) + ' | dev mean |\n|' + '---|' * (len(full[0]['points'][0]['dice_alone']) + 4))
        for f in full:
            p = f['points'][-1]
            print(f"| {LABELS.get(f['name'], f['name'])} | {p['seconds'] / 60:.0f} | {p['step']} | "
                  + ' | '.join(f'{v:.3f}' for v in p['dice_alone'].values()) + f" | {p['dev_mean']:.3f} |")
    if curves: plot_curves(curves, refs, HERE / 'figures' / 'learned_curves.png', full); print('\nwrote bench/figures/learned_curves.png')


def main():
    torch.set_num_threads(1)
    argv = sys.argv[1:]
    rest = argv[argv.index('--') + 1:] if '--' in argv else []
    argv = argv[:argv.index('--')] if '--' in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0]); sub = ap.add_subparsers(dest='cmd', required=True)
    t = sub.add_parser('train'); t.add_argument('name'); t.add_argument('--exclude', default=None); t.add_argument('--ship', action='store_true')
    c = sub.add_parser('curve'); c.add_argument('names', nargs='+')
    c.add_argument('--quick', action='store_true', help='Dice on the shared CT only'); c.add_argument('--last', action='store_true', help='the final model only')
    c.add_argument('--tag', default='', help='suffix of the JSON file')
    i = sub.add_parser('infer'); i.add_argument('name'); i.add_argument('--steps', default='0,20,40,60')
    i.add_argument('--cases', default=None); i.add_argument('--tvl1', action='store_true'); i.add_argument('--tag', default='')
    sub.add_parser('report')
    a = ap.parse_args(argv)
    if shared_data_dir() is None: sys.exit('shared data not found: ../shared/data (or $FLOW2MASK_DATA)')
    dict(train=lambda: cmd_train(a, rest), curve=lambda: cmd_curve(a), infer=lambda: cmd_infer(a), report=lambda: cmd_report(a))[a.cmd]()


if __name__ == '__main__':
    main()
