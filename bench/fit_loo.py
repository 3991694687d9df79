"""The per-volume fit's settings (`train.FitSettings`), chosen by leave-one-case-out.

Run:  .venv/bin/python bench/fit_loo.py --setting NAME --values V,V,... [--cases NAME,NAME] [--flows DIR] [--every 5] [--rng 0]

For every case (the shared CT and ../shared/data/dev), the flows are fitted afresh once per value of the
`FitSettings` field NAME (the other fields at their defaults; the finer flows near small structures, fitted in the
call, get the same value), with the TV-L1 second opinion of the case's flows in DIR beside them (made there once, as
`bench/effort.py` reads them). NAME `size` varies the working grid's longest in-plane side instead
(`Session(size=...)`, the second opinion made on that grid); a tuple field's values are written 2/1,4/2/1. Scored as `bench/cases.py` scores: every structure seeded on its largest true slice,
all in one call, Dice over the volume at native resolution; and flow2mask's completion from every `--every`-th slice
of each structure's range, ends included. Per case, the value with the best one-seed mean over the OTHER cases is
scored on it; the left-out mean decides. Prints the table and each value's fitting time; writes
bench/results/fit_NAME_loo.json (fit_NAME_loo_rngN.json with `--rng N`, another random seed for the fits).
"""
import contextlib, dataclasses, pathlib, sys, time
import numpy as np

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))


@contextlib.contextmanager
def fit_default(setting: str, value):
    "Within the block, every `train.fit` that is given no settings fits with `setting` = `value`."
    from flow2mask_nb import train
    if setting == 'steps':   # `FlowSettings` passes steps=None on to the fit: the default lives in `train.FIT_STEPS`
        original, train.FIT_STEPS = train.FIT_STEPS, int(value)
        try: yield
        finally: train.FIT_STEPS = original
        return
    original = train.FitSettings
    train.FitSettings = lambda **kw: original(**{setting: value, **kw})
    try: yield
    finally: train.FitSettings = original


def fitted(prep, second, rng: int = 0) -> tuple:
    "(Flows fitted on the prepared volume with the fit's current defaults and `second` beside them, seconds the fit took)."
    from flow2mask_nb.flowsource import estimate_flows, FlowSettings
    flows, info = estimate_flows(prep, FlowSettings(second_opinion=False, threads=1, rng=rng))
    return dataclasses.replace(flows, second=second), info['flow_seconds']


def main():
    from flow2mask_nb.benchmark import run_case, completion_case
    from flow2mask_nb.io import write_json
    from cases import case_flows_from_command_line, leave_one_out, leave_one_out_table, setting_values
    from flow2mask_nb.io import read_volume
    from flow2mask_nb.preprocess import prepare
    from flow2mask_nb.flowsource import tvl1_flows
    from second_opinion import mean_dice
    a, cases, flows = case_flows_from_command_line(__doc__, {'--setting': ('reach', 'the FitSettings field to vary'),
                                                             '--values': ('4,6,8', 'comma-separated values to compare'),
                                                             '--every': (5, 'completion: every n-th slice drawn'),
                                                             '--rng': (0, "the fits' random seed")})
    from flow2mask_nb.train import FitSettings
    sizes = a.setting == 'size'   # the working grid the flows are fitted on, not a fit setting
    if a.setting == 'budget_s':   # `FlowSettings` passes it to every fit, past the patched default
        sys.exit(f'--setting {a.setting}: the flows pass it to the fit themselves; vary it through FlowSettings, not here')
    values, name = ([int(v) for v in a.values.split(',')], str) if sizes else setting_values(FitSettings, a.setting, a.values)
    one, completion, seconds = {}, {}, {}
    for c in cases:
        cached, intensity = flows[c.name]
        image = read_volume(c.image)
        prep = prepare(image, c.axis, intensity['modality'], intensity['window'])   # once for every value
        for v in values:
            grid = dict(size=v) if sizes else {}
            on = prepare(image, c.axis, intensity['modality'], intensity['window'], v) if sizes else prep
            # the second opinion on the same grid as the fit (the cached one is on the default 128)
            second = tvl1_flows(on.work) if sizes and on.work.shape != prep.work.shape else cached.second
            with contextlib.nullcontext() if sizes else fit_default(a.setting, v):
                fl, seconds.setdefault(name(v), {})[c.name] = fitted(on, second, int(a.rng))
                r, _ = run_case(c, flows=fl, baselines=False, **grid, **intensity)
                one.setdefault(name(v), {})[c.name] = mean_dice(r)
                r, _ = completion_case(c, int(a.every), flows=fl, interpolation=False, **grid, **intensity)
                completion.setdefault(name(v), {})[c.name] = mean_dice(r)
        print(f'{c.name}: ' + ', '.join(f'{k} {one[k][c.name]:.3f} (completion {completion[k][c.name]:.3f}, '
                                        f'fit {seconds[k][c.name]:.1f} s)' for k in one), flush=True)
    default = '128' if sizes else name(FitSettings().step_count if a.setting == 'steps' else getattr(FitSettings(), a.setting))
    left_out, chosen = leave_one_out(one, prefer=default)
    print(f"\none seed per structure: left-out mean {np.mean(list(left_out.values())):.3f} "
          f"(chosen: {', '.join(sorted(set(chosen.values())))})")
    print(leave_one_out_table(one, left_out, lambda k: f'{a.setting} {k}', digits=3))
    c_left, _ = leave_one_out(completion, prefer=default)
    for k in one:
        print(f"{a.setting} {k}: one seed {np.mean(list(one[k].values())):.3f} (dev cases "
              f"{np.mean([v for n, v in one[k].items() if n != 'abdomen_ct']):.3f}), completion "
              f"{np.mean(list(completion[k].values())):.3f}, fit {np.median(list(seconds[k].values())):.1f} s median")
    print(f"completion left out {np.mean(list(c_left.values())):.3f}")
    write_json(HERE / 'results' / (f'fit_{a.setting}_loo' + (f'_rng{a.rng}' if int(a.rng) else '') + '.json'),
               dict(one_seed=one, completion=completion, fit_seconds=seconds, left_out=left_out, chosen=chosen,
                    completion_left_out=c_left))


if __name__ == '__main__':
    main()
