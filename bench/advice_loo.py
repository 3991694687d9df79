"""The advice's weights, chosen by leave-one-case-out on the effort protocol's advice annotator.

Run:  .venv/bin/python bench/advice_loo.py [--setting BEYOND_DRAWN] [--weights 0.5,1,2,3,4] [--cases NAME,NAME] [--flows DIR]

`session.advise` scores a candidate slice by its area times its distance from the nearest known slice; a slice
outside the span of the drawn ones counts `session.BEYOND_DRAWN` times more; a slice there that the stop rule
doubted may instead count the structure beyond it, `session.DOUBT_WEIGHT` times; the slice just past an automatic
stop counts the last slice kept `session.OPEN_END_WEIGHT` times (0: never proposed). `--setting` names the weight to
vary (0 is without); the others stay at their defaults. For every weight, the annotator who
follows the advice (`effort.structure_effort(..., 'advice')`, flows from DIR as `bench/effort.py` reads them) runs
on the shared CT and every dev case; then, per case, the weight with the fewest slices to Dice 0.90 on the OTHER
cases is scored on it. Prints per weight the mean over structures and over cases, the left-out mean, and the
per-case table; writes bench/results/advice_loo.json (advice_<setting>_loo.json for the others).
"""
import json, pathlib, sys
import numpy as np

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))
WEIGHTS = ('BEYOND_DRAWN', 'DOUBT_WEIGHT', 'OPEN_END_WEIGHT')   # the module settings of `session.advise` this bench may vary


def case_table(results: list) -> dict:
    "{case: (mean slices to 0.90, mean Dice after 3 slices, structures)} of the advice annotator."
    from flow2mask_nb.effort import slices_to_reach, dice_after
    out = {}
    for r in results:
        curves = [s['runs']['advice']['curve'] for s in r['structures']]
        out[r['case']] = (float(np.mean([slices_to_reach(c, 0.9) for c in curves])),
                          float(np.mean([dice_after(c, 3) for c in curves])), len(curves))
    return out


def main():
    from flow2mask_nb import session
    from flow2mask_nb.effort import effort_case
    from flow2mask_nb.io import json_ready
    from cases import case_flows_from_command_line, leave_one_out, leave_one_out_table
    a, cases, flows = case_flows_from_command_line(__doc__, {
        '--weights': ('0.5,1,2,3,4', 'comma-separated weights to compare'),
        '--setting': ('BEYOND_DRAWN', f'the weight of session.advise to vary: one of {WEIGHTS}')})
    if a.setting not in WEIGHTS: sys.exit(f'--setting is one of {WEIGHTS}, not {a.setting}')
    default, tables = getattr(session, a.setting), {}
    try:
        for w in (float(v) for v in a.weights.split(',')):
            setattr(session, a.setting, w)                # `advise` reads it at every call
            results = [effort_case(c, flows=flows[c.name][0], annotators=('advice',), interpolation=False,
                                   **flows[c.name][1]) for c in cases]
            tables[w] = case_table(results)
            t = tables[w]
            print(f"weight {w:g}: slices to 0.90, mean over structures "
                  f"{np.average([v[0] for v in t.values()], weights=[v[2] for v in t.values()]):.2f}, over cases "
                  f"{np.mean([v[0] for v in t.values()]):.2f}; Dice after 3 slices "
                  f"{np.average([v[1] for v in t.values()], weights=[v[2] for v in t.values()]):.3f}", flush=True)
    finally: setattr(session, a.setting, default)
    names = list(next(iter(tables.values())))
    left_out, chosen = leave_one_out({w: {n: t[n][0] for n in names} for w, t in tables.items()}, higher_is_better=False,
                                     prefer=default)
    print(f"left-out mean over cases: {np.mean(list(left_out.values())):.2f} slices to 0.90 "
          f"(weights chosen: {', '.join(sorted({f'{w:g}' for w in chosen.values()}))}; the default is {default:g})")
    print(leave_one_out_table({w: {n: t[n][0] for n in names} for w, t in tables.items()}, left_out, lambda w: f'weight {w:g}', 1))
    out = HERE / 'results'; out.mkdir(exist_ok=True)
    name = 'advice_loo.json' if a.setting == 'BEYOND_DRAWN' else f'advice_{a.setting.lower()}_loo.json'
    (out / name).write_text(json.dumps(json_ready(dict(setting=a.setting, tables={f'{w:g}': t for w, t in tables.items()},
                                                       left_out=left_out, chosen=chosen)), indent=1))


if __name__ == '__main__':
    main()
