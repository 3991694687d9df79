"""A second opinion on the flows, chosen by leave-one-case-out: the fit alone, or kept only where a second, independent
flow field carries the structure too.

Run:  .venv/bin/python bench/second_opinion.py [--cases NAME,NAME] [--flows DIR] [--second-fit yes|no] [--every 5]

For every case (the shared CT and ../shared/data/dev), the fitted flows of DIR (as `bench/effort.py` reads them) are
used three ways, everything else the default: alone; with TV-L1 flows of the same working grid (made and timed
here) as the second opinion (`FlowSettings.second_opinion`, the default); with a second fit from another random seed as the second opinion (twice
the fitting time; `--second-fit no` skips it). `propagate` keeps a structure where both carry it. Scored as
`bench/cases.py` scores: every structure seeded on its largest true slice, all in one call, Dice over the volume at
native resolution; and mask completion from every 5th slice of each structure's range, ends included (`--every`),
beside contour interpolation. Per case, the candidate with the best mean over the OTHER cases is scored on it; the
left-out mean decides. Prints the tables; writes bench/results/second_opinion.json.
"""
import pathlib, sys, time
import numpy as np

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))
CANDIDATES = ('fit alone', 'fit, TV-L1 agreeing', 'fit, a second fit agreeing')


def candidate_flows(case, flows, intensity: dict, second_fit: bool) -> tuple:
    "({candidate: Flows}, {what: seconds}): the cached fit alone, with TV-L1 flows, with a second fit (seed 1); timed."
    from flow2mask_nb.flows import Flows
    from flow2mask_nb.flowsource import tvl1_flows, estimate_flows, FlowSettings
    from flow2mask_nb.io import read_volume
    from flow2mask_nb.preprocess import prepare
    alone = Flows(flows.forward, flows.backward)
    prep = prepare(read_volume(case.image), case.axis, intensity['modality'], intensity['window'])
    t0 = time.perf_counter(); tv = tvl1_flows(prep.work); seconds = {'TV-L1 flows': time.perf_counter() - t0}
    out = {CANDIDATES[0]: alone, CANDIDATES[1]: Flows(flows.forward, flows.backward, second=tv)}
    if second_fit:
        other, info = estimate_flows(prep, FlowSettings(rng=1, second_opinion=False, threads=1))
        out[CANDIDATES[2]] = Flows(flows.forward, flows.backward, second=other)
        seconds['a fit'] = info['flow_seconds']
    return out, seconds


def mean_dice(record: dict, key: str = 'flow2mask') -> float:
    return float(np.mean([v['dice'] for v in record[key].values()]))


def main():
    from flow2mask_nb.benchmark import run_case, completion_case
    from flow2mask_nb.io import write_json
    from cases import case_flows_from_command_line, leave_one_out, leave_one_out_table
    a, cases, flows = case_flows_from_command_line(__doc__, {'--second-fit': ('yes', "the second-fit candidate too ('no': skip it)"),
                                                             '--every': (5, 'completion: every n-th slice drawn')})
    one, completion, interpolation, seconds, made = {}, {}, {}, {}, {}
    for c in cases:
        fl, intensity = flows[c.name]
        t0 = time.perf_counter()
        candidates, made[c.name] = candidate_flows(c, fl, intensity, a.second_fit != 'no')
        for name, f in candidates.items():
            r, _ = run_case(c, flows=f, baselines=False, **intensity)
            one.setdefault(name, {})[c.name] = mean_dice(r)
            r, _ = completion_case(c, int(a.every), flows=f, interpolation=name == CANDIDATES[0], **intensity)
            completion.setdefault(name, {})[c.name] = mean_dice(r)
            if 'interpolation' in r: interpolation[c.name] = mean_dice(r, 'interpolation')
        seconds[c.name] = time.perf_counter() - t0
        print(f"{c.name}: " + ', '.join(f"{n} {one[n][c.name]:.3f} (completion {completion[n][c.name]:.3f})" for n in one)
              + f"; contour interpolation {interpolation.get(c.name, float('nan')):.3f} ({seconds[c.name]:.0f} s; "
              + ', '.join(f'{k} {v:.1f} s' for k, v in made[c.name].items()) + ')', flush=True)
    left_out, chosen = leave_one_out(one, prefer=CANDIDATES[0])
    print(f"\none seed per structure: left-out mean {np.mean(list(left_out.values())):.3f} "
          f"(chosen: {', '.join(sorted(set(chosen.values())))})")
    print(leave_one_out_table(one, left_out, str, digits=3))
    print('\ncompletion from every 5th slice (ends included):')
    print('| case | ' + ' | '.join(completion) + ' | contour interpolation |\n' + '|---' * (len(completion) + 2) + '|')
    for n in interpolation:
        print(f'| {n} | ' + ' | '.join(f'{completion[k][n]:.3f}' for k in completion) + f' | {interpolation[n]:.3f} |')
    for name in one:
        print(f"{name}: one seed, mean over the cases {np.mean(list(one[name].values())):.3f}, over the dev cases "
              f"{np.mean([v for k, v in one[name].items() if k != 'abdomen_ct']):.3f}; completion "
              f"{np.mean(list(completion[name].values())):.3f}")
    for what in next(iter(made.values())):
        v = [m[what] for m in made.values()]
        print(f"{what}: {min(v):.1f}-{max(v):.1f} s per volume (median {np.median(v):.1f} s)")
    write_json(HERE / 'results' / 'second_opinion.json', dict(one_seed=one, completion=completion, interpolation=interpolation,
               left_out=left_out, chosen=chosen, seconds=seconds, made_seconds=made))


if __name__ == '__main__':
    main()
