"""Where the two flows' masks part, the structure ends (`StopRule.agreement`): chosen by leave-one-case-out.

Run:  .venv/bin/python bench/agreement_loo.py [--values none,0.5,0.6,0.7,0.8] [--setting agreement] [--cases NAME,NAME] [--flows DIR]

For every case (the shared CT and ../shared/data/dev), with its flows from DIR and their TV-L1 second opinion (as
`bench/effort.py` reads them), every structure is seeded on its largest true slice, all in one call, and scored as
`bench/cases.py` scores (Dice over the volume at native resolution), once per value of `StopRule.agreement`: past
the drawn slice, a track ends where the fit's and TV-L1's masks overlap (IoU) less than the value times their
overlap on the track's first slice, `patience` slices in a row ('none': only their common part is kept). Per case,
the value with the best mean over the OTHER cases is scored on it; the left-out mean decides. Prints the table;
writes bench/results/agreement_loo.json (per case and per structure).

`--setting NAME` varies another field of `StopRule` the same way, with the others at their defaults (the stop as it
is now, the agreement included); it writes bench/results/stop_NAME_loo.json.
"""
import pathlib, sys
import numpy as np

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))


def main():
    from flow2mask_nb.benchmark import run_case
    from flow2mask_nb.io import write_json
    from flow2mask_nb.stop import StopRule
    from cases import case_flows_from_command_line, leave_one_out, leave_one_out_table, stop_values
    from second_opinion import mean_dice
    a, cases, flows = case_flows_from_command_line(__doc__, {'--values': ('none,0.5,0.6,0.7,0.8', 'comma-separated values to compare'),
                                                             '--setting': ('agreement', 'the StopRule field to vary')})
    values, name = stop_values(a.setting, a.values)
    default = getattr(StopRule(), a.setting)
    scores, per_structure = {}, {}
    for c in cases:
        fl, intensity = flows[c.name]
        if fl.second is None: sys.exit(f'{c.name}: its flows in {a.flows} carry no second opinion: remake them')
        for v in values:
            r, _ = run_case(c, flows=fl, baselines=False, stop=StopRule(**{a.setting: v}), **intensity)
            scores.setdefault(name(v), {})[c.name] = mean_dice(r)
            per_structure.setdefault(name(v), {})[c.name] = {l: s['dice'] for l, s in r['flow2mask'].items()}
        print(f'{c.name}: ' + ', '.join(f'{k} {scores[k][c.name]:.3f}' for k in scores), flush=True)
    left_out, chosen = leave_one_out(scores, prefer=name(default))
    print(f"\nleft-out mean {np.mean(list(left_out.values())):.3f} (chosen: {', '.join(sorted(set(chosen.values())))})")
    print(leave_one_out_table(scores, left_out, lambda k: f'{a.setting} {k}', digits=3))
    for k, s in scores.items():
        print(f"{a.setting} {k}: mean over the cases {np.mean(list(s.values())):.3f}, over the dev cases "
              f"{np.mean([v for n, v in s.items() if n != 'abdomen_ct']):.3f}")
    out = 'agreement_loo.json' if a.setting == 'agreement' else f'stop_{a.setting}_loo.json'
    write_json(HERE / 'results' / out, dict(scores=scores, per_structure=per_structure, left_out=left_out, chosen=chosen))


if __name__ == '__main__':
    main()
