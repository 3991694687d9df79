"""What the stop costs: one seed per structure with the default stop beside an oracle that stops at the true extent.

Run:  .venv/bin/python bench/oracle_stop.py [--cases NAME,NAME] [--flows DIR]

Every structure of the shared CT and the dev cases is seeded on its largest true slice and propagated in one call per
case (`benchmark.run_case`, flows from DIR as `bench/effort.py` reads them), once with the default stop and once with
`oracle_stop=True` (the propagation runs exactly over each structure's true slices: ground truth decides where it
stops, so this is an upper bound for any stop rule, never a result). Prints per structure and per case the two Dice
and the mean over cases; writes bench/results/oracle_stop.json.
"""
import pathlib, sys
import numpy as np

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))


def main():
    from flow2mask_nb.benchmark import run_case
    from flow2mask_nb.io import write_json
    from cases import case_flows_from_command_line
    _, cases, flows = case_flows_from_command_line(__doc__, {})
    out = {}
    for c in cases:
        fl, intensity = flows[c.name]
        runs = {how: run_case(c, flows=fl, baselines=False, oracle_stop=how == 'oracle', **intensity)[0]
                for how in ('stop', 'oracle')}
        out[c.name] = {how: {l: s['dice'] for l, s in r['flow2mask'].items()} for how, r in runs.items()}
        for l in out[c.name]['stop']:
            print(f"{c.name} {runs['stop']['structures'][l]}: stop {out[c.name]['stop'][l]:.3f}, "
                  f"oracle {out[c.name]['oracle'][l]:.3f}", flush=True)
    mean = {how: float(np.mean([np.mean(list(v[how].values())) for v in out.values()])) for how in ('stop', 'oracle')}
    print(f"mean over {len(out)} cases: the default stop {mean['stop']:.3f}, stopped at the true extent {mean['oracle']:.3f}")
    write_json(HERE / 'results' / 'oracle_stop.json', dict(cases=out, mean=mean))


if __name__ == '__main__':
    main()
