"""Annotation effort over the shared CT and every dev case: slices an annotator draws before each Dice, beside
contour interpolation (the protocol of ../shared/docs/evaluation.md, `flow2mask_nb.effort`).

Run:  .venv/bin/python bench/effort.py [--cases NAME,NAME] [--flows DIR]
      .venv/bin/python bench/effort.py --report-only [--cases NAME,NAME] [--without NAME,NAME]
      (the last run's report, bench/results/effort.json, over some of its cases: nothing is run or written)

Flows are read from DIR (default bench/results/flows; made there once per case, the default fit), so the run times
only the correction loop. Every structure is annotated by three simulated annotators through `Session.propagate`
(worst slice; following `session.advise`; both ends marked first, then worst slice), and by contour interpolation
with n evenly spaced slices and with the worst-slice annotator. Writes bench/results/effort.json, the table on
stdout (README) and bench/figures/effort.png (mean Dice against slices drawn; beside it, per structure, slices to
0.90 against how strict 0.90 is there: `metrics.one_pixel_dice`).
"""
import argparse, json, pathlib, sys

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))


def saved_report(cases: str | None, without: str) -> str:
    "The report of the last full run (bench/results/effort.json) over the named cases (None: all) less `without`."
    from flow2mask_nb.effort import effort_report
    results = json.loads((HERE / 'results' / 'effort.json').read_text())['results']
    keep = lambda name: (not cases or name in cases.split(',')) and name not in without.split(',')
    chosen = [r for r in results if keep(r['case'])]
    if not chosen: sys.exit(f"no case of {HERE / 'results' / 'effort.json'} is left by --cases/--without")
    return f"{len(chosen)} case{'s' * (len(chosen) > 1)}: {', '.join(r['case'] for r in chosen)}\n" + effort_report(chosen)


def main():
    from flow2mask_nb.effort import effort_case, summarise_effort, effort_report, plot_effort, structure_line
    from flow2mask_nb.cli import case_flows
    from flow2mask_nb.io import json_ready
    from cases import add_case_options, chosen_cases
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_case_options(ap)
    ap.add_argument('--report-only', action='store_true', help="print the report of bench/results/effort.json, over "
                    "--cases (default all) less --without, and stop")
    ap.add_argument('--without', default='', help='with --report-only: comma-separated case names to leave out')
    a = ap.parse_args()
    if a.report_only: return print(saved_report(a.cases, a.without))
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
