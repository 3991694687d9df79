"""Propagation benchmark over the shared abdomen CT and every case of ../shared/data/dev/cases.json.

Run:  .venv/bin/python bench/cases.py [--cases NAME,NAME] [--no-suggested] [--no-completion] [--every 5]

For every case, all its structures are seeded in ONE call, each on its largest true slice (an oracle annotator, as
in the paper's protocol), propagated with the default pipeline (flows fitted on the volume, automatic stop), and
scored per structure at native resolution: Dice over the volume and inside the true slice range, HD95 (mm), slices
past / short of the true ends, wall time of the whole call. Beside it, in the same run: the seed copied over the
true range (an oracle floor) and slice-to-slice TV-L1 on the same intensities. Then the same with each structure
seeded on the slice `suggest` picks inside its true range, and mask completion from every 5th slice of each
structure's range (ends included) beside morphological contour interpolation (needs `pip install -e ".[interp]"`).

Writes bench/results/cases.json and the per-case bar plot bench/figures/cases.png (shown in the README).
"""
import argparse, json, pathlib, sys
import numpy as np
from flow2mask_nb.benchmark import Case, load_cases, run_case, completion_case, summarise, format_cases, plot_cases
from flow2mask_nb.io import json_ready
from flow2mask_nb.testing import shared_data_dir

HERE = pathlib.Path(__file__).parent
CT_ORGANS = {1: 'spleen', 2: 'kidney_right', 3: 'kidney_left', 5: 'liver', 6: 'stomach'}


def all_cases(data: pathlib.Path) -> list:
    "The shared abdomen CT (five organs) and every dev case."
    ct = Case('abdomen_ct', data / 'abdomen_ct' / 'ct.nii.gz', data / 'abdomen_ct' / 'labels.nii.gz', None, CT_ORGANS)
    return [ct] + load_cases(data / 'dev')


def add_case_options(ap):
    "The options every per-case bench takes: --cases NAME,NAME and --flows DIR (flows files read there, made once)."
    ap.add_argument('--cases', default=None, help='comma-separated case names (default: the shared CT and every dev case)')
    ap.add_argument('--flows', default=str(HERE / 'results' / 'flows'), help='folder of flows files, one per case')


def chosen_cases(args) -> list:
    "The cases `--cases` names (all by default), with the flows folder made; exits when the shared data is absent."
    data = shared_data_dir()
    if data is None: sys.exit('shared data not found: ../shared/data (or $FLOW2MASK_DATA)')
    cases = all_cases(data)
    if args.cases: cases = [c for c in cases if c.name in args.cases.split(',')]
    pathlib.Path(args.flows).mkdir(parents=True, exist_ok=True)
    return cases


def case_flows_from_command_line(doc: str, options: dict) -> tuple:
    "(args, cases, {case: (Flows, intensity options)}): a bench's `options` {flag: (default, help)}, --cases, --flows."
    import argparse
    from flow2mask_nb.cli import case_flows
    ap = argparse.ArgumentParser(description=doc.split('\n')[0])
    for flag, (default, help) in options.items(): ap.add_argument(flag, default=default, help=help)
    add_case_options(ap)
    args = ap.parse_args()
    cases = chosen_cases(args)
    return args, cases, {c.name: case_flows(c, args.flows) for c in cases}     # flows read or made once per case


def setting_values(settings: type, setting: str, text: str) -> tuple:
    "([values], name) of the field `setting` of the dataclass `settings` from 'none,0.5,...', parsed by its default's type."
    if setting not in settings.__dataclass_fields__: sys.exit(f'--setting {setting}: {settings.__name__} has no such field')
    default = getattr(settings(), setting)
    if isinstance(default, tuple):   # a tuple's items are written with '/': --values 2/1,4/2/1
        item = type(default[0]) if default else float
        return ([tuple(item(x) for x in v.split('/')) for v in text.split(',')],
                lambda v: '/'.join(f'{x:g}' if isinstance(x, float) else str(x) for x in v))
    kind = float if default is None else type(default)
    parse = {bool: lambda v: v.lower() in ('true', 'yes', '1'), int: lambda v: int(float(v)), str: str}.get(kind, float)
    name = lambda v: 'none' if v is None else f'{v:g}' if isinstance(v, float) else str(v)
    return [None if v == 'none' else parse(v) for v in text.split(',')], name


def stop_values(setting: str, text: str) -> tuple:
    "([values], name) of the `StopRule` field `setting` (see `setting_values`)."
    from flow2mask_nb.stop import StopRule
    return setting_values(StopRule, setting, text)


def leave_one_out(scores: dict, higher_is_better: bool = True, prefer=None, weights: dict | None = None) -> tuple:
    "(left-out score per case, the candidate chosen for it): each case scored by the candidate best on the OTHER cases."
    names = list(next(iter(scores.values())))
    sign, weights = (1 if higher_is_better else -1), weights or {}
    def best_without(n):           # ties go to `prefer` (the default), then to the first candidate
        others = [m for m in names if m != n]
        if not others: return prefer if prefer in scores else next(iter(scores))   # one case: nothing to choose on
        return max(scores, key=lambda k: (sign * np.average([scores[k][m] for m in others],
                                                            weights=[weights.get(m, 1) for m in others]), k == prefer))
    chosen = {n: best_without(n) for n in names}
    return {n: scores[chosen[n]][n] for n in names}, chosen


def leave_one_out_table(scores: dict, left_out: dict, heading, digits: int = 2) -> str:
    "Markdown: per case, every candidate's score (`heading(candidate)` names its column) and the left-out one."
    lines = ['| case | ' + ' | '.join(heading(k) for k in scores) + ' | left out |', '|---' * (len(scores) + 2) + '|']
    lines += [f'| {n} | ' + ' | '.join(f'{scores[k][n]:.{digits}f}' for k in scores) + f' | {left_out[n]:.{digits}f} |'
              for n in left_out]
    return '\n'.join(lines)


def long_phantom_case(folder: pathlib.Path) -> Case:
    "A 160-slice phantom whose three small organs span 30-40 slices each: there the stop decides whole-volume Dice."
    from flow2mask_nb.io import write_volume
    from flow2mask_nb.phantom import make_phantom
    ph = make_phantom(n_slices=160, size=(96, 96), n_organs=3, span=(0.2, 0.25), seed=1)
    write_volume(ph.image, folder / 'image.nii.gz'); write_volume(ph.labels, folder / 'label.nii.gz', labels=True)
    return Case('long_phantom', folder / 'image.nii.gz', folder / 'label.nii.gz', 2, {l: f'organ {l}' for l in ph.organ_ids})


def structure_table(results, method='flow2mask') -> str:
    "Per structure: Dice, Dice inside the true range, HD95, slices past / short of the true ends."
    lines = ['| case | structure | Dice | in range | HD95 mm | past | short | copy | TV-L1 |', '|' + '---|' * 9]
    for r in results:
        for l, s in r[method].items():
            c, t = r.get('copy', {}).get(l, {}), r.get('tvl1', {}).get(l, {})
            h = '' if s['hd95_mm'] is None else f"{s['hd95_mm']:.1f}"
            lines.append(f"| {r['case']} | {r['structures'][l]} | {s['dice']:.3f} | {s['dice_in_range']:.3f} | {h} | "
                         f"{s['past']} | {s['short']} | {c.get('dice', float('nan')):.3f} | {t.get('dice', float('nan')):.3f} |")
    return '\n'.join(lines)


def dev_rows(summary) -> list:
    "The rows of the real dev cases (not the shared CT, not the phantom)."
    return [r for r in summary['rows'] if r['case'] not in ('abdomen_ct', 'long_phantom')]


def dev_mean(summary, key='flow2mask') -> float:
    "Mean over the real dev cases."
    return float(np.mean([r[key] for r in dev_rows(summary) if key in r]))


def cell(v, *rivals) -> str:
    "`v` to 3 decimals ('' when absent), in bold when rivals are given and it beats every one of them."
    rivals = [r for r in rivals if r is not None]
    if v is None: return ''
    return f'**{v:.3f}**' if rivals and all(v > r for r in rivals) else f'{v:.3f}'


def page_row(name, one: dict, filled: dict, seconds: str) -> str:
    "One row of `page_table`: the one-seed run beside its baselines, then completion beside contour interpolation."
    cells = [name, cell(one.get('flow2mask'), one.get('copy'), one.get('tvl1')), cell(one.get('copy')),
             cell(one.get('tvl1')), cell(one.get('flow2mask_in_range')), seconds,
             cell(filled.get('flow2mask'), filled.get('interpolation')), cell(filled.get('interpolation'))]
    return '| ' + ' | '.join(cells) + ' |'


def page_table(out: dict) -> str:
    "The table of docs/results.md from cases.json: per case one seed and completion beside their baselines; dev mean."
    one, done = out['largest']['summary'], out.get('completion', dict(summary=dict(rows=[])))['summary']
    filled = {r['case']: r for r in done['rows']}
    lines = ['| case | flow2mask | seed copy (true range) | TV-L1 | flow2mask in range | s | '
             f"completion every {out.get('completion', {}).get('every', 5)}th | contour interpolation |", '|---' * 8 + '|']
    lines += [page_row(r['case'], r, filled.get(r['case'], {}), f"{r['seconds']:.0f}") for r in one['rows']]
    means = lambda s, keys: {k: dev_mean(s, k) for k in keys if any(k in r for r in dev_rows(s))}
    lines.append(page_row(f'**mean of the {len(dev_rows(one))} dev cases**',
                          means(one, ('flow2mask', 'copy', 'tvl1', 'flow2mask_in_range')),
                          means(done, ('flow2mask', 'interpolation')), ''))
    return '\n'.join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--cases', default=None, help='comma-separated case names (default: all)')
    ap.add_argument('--no-suggested', action='store_true', help='skip seeding on the suggested slice')
    ap.add_argument('--no-completion', action='store_true', help='skip mask completion')
    ap.add_argument('--every', type=int, default=5, help='completion: annotate every k-th slice')
    ap.add_argument('--no-phantom', action='store_true', help='skip the long phantom')
    a = ap.parse_args()
    data = shared_data_dir()
    if data is None or not (data / 'dev' / 'cases.json').exists():
        sys.exit('shared data not found: ../shared/data (or $FLOW2MASK_DATA) with dev/cases.json')
    import tempfile
    tmp = tempfile.TemporaryDirectory(prefix='flow2mask_cases_')
    cases = all_cases(data) + ([] if a.no_phantom else [long_phantom_case(pathlib.Path(tmp.name))])
    if a.cases: cases = [c for c in cases if c.name in a.cases.split(',')]
    out = {}
    runs = [('largest', 'largest', {})] + ([] if a.no_suggested else [('suggested', 'suggested', {})])
    for key, rule, kw in runs:
        results = []
        for c in cases:
            r, _ = run_case(c, seed_rule=rule, **kw)
            results.append(r)
            print(f"[{key}] {c.name}: " + ', '.join(f"{r['structures'][l]} {s['dice']:.3f}" for l, s in r['flow2mask'].items())
                  + f" | copy {np.mean([s['dice'] for s in r['copy'].values()]):.3f}"
                  + f" | TV-L1 {np.mean([s['dice'] for s in r['tvl1'].values()]):.3f} | {r['seconds']:.1f} s", flush=True)
        s = summarise(results)
        out[key] = dict(results=results, summary=s)
        print(f"\n## seed: {key}{' (an oracle: each structure on its largest true slice)' if rule == 'largest' else ''}\n")
        print(format_cases(s))
        print(f"\nmean over the dev cases: flow2mask {dev_mean(s):.3f}, copy {dev_mean(s, 'copy'):.3f}, "
              f"TV-L1 {dev_mean(s, 'tvl1'):.3f}; confidence vs slice Dice, Spearman pooled {s['spearman_pooled']:.3f}\n")
        print(structure_table(results))
    if not a.no_completion:
        results = []
        for c in cases:
            r, _ = completion_case(c, a.every); results.append(r)
            print(f"[completion] {c.name}: flow2mask {np.mean([s['dice'] for s in r['flow2mask'].values()]):.3f}"
                  + (f", interpolation {np.mean([s['dice'] for s in r['interpolation'].values()]):.3f}"
                     if 'interpolation' in r else f" ({r.get('interpolation_error', '')})") + f" | {r['seconds']:.1f} s", flush=True)
        s = summarise(results)
        out['completion'] = dict(every=a.every, results=results, summary=s)
        print(f"\n## mask completion, every {a.every}th slice of each structure's range (ends included)\n")
        print(format_cases(s))
        print(structure_table(results))
    print('\n## the table of docs/results.md (bench/results_page.py writes it there)\n\n' + page_table(out))
    (HERE / 'results').mkdir(exist_ok=True); (HERE / 'figures').mkdir(exist_ok=True)
    (HERE / 'results' / 'cases.json').write_text(json.dumps(json_ready(out), indent=1))
    import matplotlib; matplotlib.use('Agg')
    plot_cases(out['largest']['summary'], HERE / 'figures' / 'cases.png',
               title='mean Dice per case, each structure seeded on one slice (largest)')
    print(f"\nwrote {HERE / 'results' / 'cases.json'} and {HERE / 'figures' / 'cases.png'}")


if __name__ == '__main__':
    main()
