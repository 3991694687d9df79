"""Annotation effort over the shared CT and every dev case: slices an annotator draws before each Dice, beside
contour interpolation (the protocol of ../shared/docs/evaluation.md, `flow2mask_nb.effort`).

Run:  .venv/bin/python bench/effort.py [--cases NAME,NAME] [--flows DIR]

Flows are read from DIR (default bench/results/flows; made there once per case, the default fit), so the run times
only the correction loop. Every structure is annotated by three simulated annotators through `Session.propagate`
(worst slice; following `session.advise`; both ends marked first, then worst slice), and by contour interpolation
with n evenly spaced slices and with the worst-slice annotator. Writes bench/results/effort.json, the table on
stdout (README) and bench/figures/effort.png (mean Dice against slices drawn; beside it, per structure, slices to
0.90 against how strict 0.90 is there: `metrics.one_pixel_dice`).
"""
import argparse, json, pathlib, sys
import numpy as np

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))


def main():
    from flow2mask_nb.effort import effort_case, summarise_effort, effort_report, plot_effort, structure_line
    from flow2mask_nb.cli import case_flows
    from flow2mask_nb.io import json_ready
    from cases import add_case_options, chosen_cases
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_case_options(ap)
    a = ap.parse_args()
    cases = chosen_cases(a)
    results = []
    for c in cases:
        flows, intensity = case_flows(c, a.flows)
        r = effort_case(c, flows=flows, **intensity)
        results.append(r)
        for s in r['structures']: print(structure_line(c.name, s), flush=True)
    summary = summarise_effort(results)
    print('\n' + effort_report(results))
    out = HERE / 'results'; out.mkdir(exist_ok=True)
    (out / 'effort.json').write_text(json.dumps(json_ready(dict(results=results, summary=summary)), indent=1))
    import matplotlib; matplotlib.use('Agg')
    (HERE / 'figures').mkdir(exist_ok=True)
    plot_effort(results, HERE / 'figures' / 'effort.png',
                title=f'annotation effort: {sum(len(r["structures"]) for r in results)} structures, {len(results)} cases')
    print(f"wrote {out / 'effort.json'} and {HERE / 'figures' / 'effort.png'}")


if __name__ == '__main__':
    main()
