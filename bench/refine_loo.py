"""The refinement's defaults (how far the warped mask is trusted, how far the flows may be off) checked by
leave-one-case-out on the one-seed protocol of bench/cases.py.

Run:  .venv/bin/python bench/refine_loo.py [--trust 0.9,0.8,0.97] [--sigma 1,0.5,2] [--cases NAME,NAME] [--flows DIR]
      (docs/results.md: the default grid, then --trust 0.9 --sigma 1,0.5,0.25)

`seedmodel.refine_posterior` turns a warped mask into a posterior with the seed's intensity model: the mask, blurred
by `sigma` pixels, is a prior capped at `trust`. For every pair (the finer flows near small structures are fitted
once, under the first pair listed, then reused), every structure of the shared CT and the dev
cases is seeded on its largest true slice and all of a case's structures propagated in one call (`benchmark.run_case`,
flows from DIR as the other benches read them); then, per case, the pair with the best mean over the OTHER cases is
scored on it. Prints the in-sample mean per pair, the left-out mean, and the per-case table; writes
bench/results/refine_loo.json.
"""
import itertools, json, pathlib, sys
import numpy as np

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))


def main():
    from flow2mask_nb.seedmodel import refine_posterior
    from flow2mask_nb.benchmark import run_case
    from flow2mask_nb.io import json_ready
    from cases import case_flows_from_command_line, leave_one_out, leave_one_out_table
    a, cases, flows = case_flows_from_command_line(__doc__, {'--trust': ('0.9,0.8,0.97', 'priors inside the warped mask'),
                                                            '--sigma': ('1,0.5,2', 'blurs of the prior in pixels')})
    pairs = list(itertools.product([float(v) for v in a.trust.split(',')], [float(v) for v in a.sigma.split(',')]))
    default, scores = refine_posterior.__defaults__, {}
    try:
        for trust, sigma in pairs:
            refine_posterior.__defaults__ = (sigma, trust, False)   # what every call of the refinement now uses
            scores[(trust, sigma)] = {}
            for c in cases:
                f, intensity = flows[c.name]
                r, _ = run_case(c, baselines=False, flows=f, **intensity)
                scores[(trust, sigma)][c.name] = float(np.mean([s['dice'] for s in r['flow2mask'].values()]))
            print(f"trust {trust:g}, sigma {sigma:g}: mean over cases {np.mean(list(scores[(trust, sigma)].values())):.4f}",
                  flush=True)
    finally: refine_posterior.__defaults__ = default
    left_out, chosen = leave_one_out(scores, prefer=pairs[0])
    print(f"left-out mean {np.mean(list(left_out.values())):.4f}, the first pair's {np.mean(list(scores[pairs[0]].values())):.4f}"
          f" (pairs chosen: {', '.join(sorted({f'trust {p[0]:g} sigma {p[1]:g}' for p in chosen.values()}))})")
    print(leave_one_out_table(scores, left_out, lambda p: f'trust {p[0]:g}, sigma {p[1]:g}', 3))
    out = HERE / 'results'; out.mkdir(exist_ok=True)
    (out / 'refine_loo.json').write_text(json.dumps(json_ready(dict(
        scores={f'trust {t:g} sigma {s:g}': v for (t, s), v in scores.items()}, left_out=left_out,
        chosen={n: list(p) for n, p in chosen.items()})), indent=1))


if __name__ == '__main__':
    main()
