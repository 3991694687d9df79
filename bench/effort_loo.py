"""A setting chosen by leave-one-case-out on the effort protocol (slices drawn to Dice 0.90).

Run:  .venv/bin/python bench/effort_loo.py [--setting past_reach] [--values none,1,2,3,4,5] [--cases NAME,NAME] [--flows DIR]

For every value of the `StopRule` field `--setting` (the others at their defaults), or of a module's setting written
MODULE.NAME (`fusion.GAP_FILL`), the worst-slice and the advice annotators (`effort.structure_effort`, flows from DIR
as `bench/effort.py` reads them) run on the shared CT and every dev case; per case, the value with the fewest slices
to Dice 0.90 on the OTHER cases (both annotators, mean over their structures, as the effort bars count) is scored on
it. Prints per value the means, the left-out mean and the per-case table, with flow2mask's completion from n evenly
spaced slices (slices to 0.90) beside them; writes bench/results/effort_SETTING_loo.json.

The settings it chose: `past_reach` (a slice drawn as a correction carries the structure at most that many slices
beyond it: with no limit a faint structure runs far past its true end), `reach_from_held` (off: counting that reach
from the far end of what the label held keeps the spills it trims) and `fusion.GAP_FILL` (a gap's slice keeps the
nearer anchor's mask and the larger carried one).
"""
import importlib, pathlib, sys
import numpy as np

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))
ANNOTATORS = ('worst', 'advice')
COMPLETION = 'completion (even)'   # reported beside them: flow2mask's completion from n evenly spaced slices


def case_scores(results: list) -> tuple:
    "({case: mean slices to 0.90 over structures and annotators}, {case: mean Dice after 3 slices}, {case: structures})."
    from flow2mask_nb.effort import slices_to_reach, dice_after
    curves = {r['case']: [s['runs'][a]['curve'] for s in r['structures'] for a in ANNOTATORS] for r in results}
    return ({n: float(np.mean([slices_to_reach(c, 0.9) for c in cs])) for n, cs in curves.items()},
            {n: float(np.mean([dice_after(c, 3) for c in cs])) for n, cs in curves.items()},
            {r['case']: len(r['structures']) for r in results})


def main():
    from flow2mask_nb.effort import effort_case, slices_to_reach
    from flow2mask_nb.io import write_json
    from flow2mask_nb.propagate import PropagateSettings
    from flow2mask_nb.stop import StopRule
    from cases import case_flows_from_command_line, leave_one_out, leave_one_out_table, stop_values
    a, cases, flows = case_flows_from_command_line(__doc__, {'--values': ('none,1,2,3,4,5', "values to compare ('none': off)"),
                                                             '--setting': ('past_reach', 'the StopRule field to vary')})
    module, _, constant = a.setting.rpartition('.')
    if module:       # a module's setting, e.g. fusion.GAP_FILL: values are its names
        module = importlib.import_module(f'flow2mask_nb.{module}')
        if not hasattr(module, constant): sys.exit(f'--setting {a.setting}: no such setting')
        default = getattr(module, constant)
        parse = type(default) if isinstance(default, (int, float)) else str     # a number's values are numbers
        name = (lambda v: f'{v:g}') if parse is not str else str
        values, default = [parse(v) for v in a.values.split(',')], name(default)
    else:
        values, name = stop_values(a.setting, a.values)
        default = name(getattr(StopRule(), a.setting))
    to90, after3, filled = {}, {}, {}
    for v in values:
        key = name(v)
        if module: setattr(module, constant, v)
        how = PropagateSettings(stop=StopRule(**({} if module else {a.setting: v})))
        results = [effort_case(c, flows=flows[c.name][0], annotators=ANNOTATORS, interpolation=True,
                               settings=how, **flows[c.name][1]) for c in cases]
        filled[key] = {r['case']: float(np.mean([slices_to_reach(st['runs'][COMPLETION]['curve'], 0.9)
                                                 for st in r['structures']])) for r in results}
        to90[key], after3[key], n = case_scores(results)
        for who in ANNOTATORS:
            print(f"  {who}: slices to 0.90, mean over structures {np.mean([slices_to_reach(st['runs'][who]['curve'], 0.9) for r in results for st in r['structures']]):.2f}")
        w = [n[k] for k in to90[key]]
        print(f"{a.setting} {key}: slices to 0.90 (worst slice and advice), mean over structures "
              f"{np.average(list(to90[key].values()), weights=w):.2f}; Dice after 3 "
              f"{np.average(list(after3[key].values()), weights=w):.3f} ({sum(w)} structures); completion from evenly spaced "
              f"slices: {np.average(list(filled[key].values()), weights=w):.2f} slices to 0.90", flush=True)
    left_out, chosen = leave_one_out(to90, higher_is_better=False, prefer=default, weights=n)
    print(f"left-out mean over structures: {np.average(list(left_out.values()), weights=[n[k] for k in left_out]):.2f} slices to 0.90 "
          f"(chosen: {', '.join(sorted({str(k) for k in chosen.values()}))}; the default is {default})")
    print(leave_one_out_table(to90, left_out, lambda k: f'{a.setting} {k}'))
    write_json(HERE / 'results' / f'effort_{a.setting}_loo.json', dict(slices_to_90=to90, dice_after_3=after3,
               completion_slices_to_90=filled, left_out=left_out, chosen=chosen))


if __name__ == '__main__':
    main()
