"""How far a structure goes beyond a slice drawn past where it had stopped, chosen by leave-one-case-out on the effort protocol.

Run:  .venv/bin/python bench/past_reach_loo.py [--reach none,1,2,3,4,5] [--cases NAME,NAME] [--flows DIR]

When the annotator draws a slice past where the last run had stopped, the structure goes on from there; with no
limit it can run far past its true end (a faint structure has no contrast to stop on). `StopRule.past_reach` lets it
go at most that many slices beyond the drawn slice. For every candidate, the worst-slice and the advice annotators
(`effort.structure_effort`, flows from DIR as `bench/effort.py` reads them) run on the shared CT and every dev case;
per case, the candidate with the fewest slices to Dice 0.90 on the OTHER cases (both annotators, mean over their
structures, as the effort bars count) is scored on it. Prints per candidate the means, the left-out mean and the per-case table; writes
bench/results/past_reach_loo.json.
"""
import pathlib, sys
import numpy as np

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))
ANNOTATORS = ('worst', 'advice')


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
    from cases import case_flows_from_command_line, leave_one_out, leave_one_out_table
    a, cases, flows = case_flows_from_command_line(__doc__, {'--reach': ('none,1,2,3,4,5', "limits to compare ('none': no limit)")})
    default = StopRule().past_reach
    to90, after3 = {}, {}
    for v in a.reach.split(','):
        reach = None if v == 'none' else int(v)
        how = PropagateSettings(stop=StopRule(past_reach=reach))
        results = [effort_case(c, flows=flows[c.name][0], annotators=ANNOTATORS, interpolation=False, settings=how,
                               **flows[c.name][1]) for c in cases]
        to90[reach], after3[reach], n = case_scores(results)
        for who in ANNOTATORS:
            print(f"  {who}: slices to 0.90, mean over structures {np.mean([slices_to_reach(st['runs'][who]['curve'], 0.9) for r in results for st in r['structures']]):.2f}")
        w = [n[k] for k in to90[reach]]
        print(f"past_reach {reach}: slices to 0.90 (worst slice and advice), mean over structures "
              f"{np.average(list(to90[reach].values()), weights=w):.2f}; Dice after 3 "
              f"{np.average(list(after3[reach].values()), weights=w):.3f} ({sum(w)} structures)", flush=True)
    left_out, chosen = leave_one_out(to90, higher_is_better=False, prefer=default, weights=n)
    print(f"left-out mean over structures: {np.average(list(left_out.values()), weights=[n[k] for k in left_out]):.2f} slices to 0.90 "
          f"(chosen: {', '.join(sorted({str(k) for k in chosen.values()}))}; the default is {default})")
    print(leave_one_out_table(to90, left_out, lambda k: f'reach {k}'))
    write_json(HERE / 'results' / 'past_reach_loo.json', dict(slices_to_90={str(k): t for k, t in to90.items()},
               dice_after_3={str(k): t for k, t in after3.items()}, left_out=left_out,
               chosen={n: str(k) for n, k in chosen.items()}))


if __name__ == '__main__':
    main()
