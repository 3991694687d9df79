"""The stop rule chosen by leave-one-case-out: every candidate rule scored on every case, the default picked without
the case it is scored on.

Run:  .venv/bin/python bench/stop_loo.py [--cases NAME,NAME] [--flows DIR] [--record-only | --from-records]

1. Record (slow part, once): every structure of every case (the shared CT and ../shared/data/dev) is seeded on its
   largest true slice (an oracle annotator) and propagated in one call per case with a stop that never fires (only
   a mask the flows lose ends a track; where the intensities erase it, the row says so and a rule counts it as
   'vanished'). For every propagated slice the report row holds what every
   stop criterion reads (pixels, intensity support, contrast) and the scorer adds how many of its pixels are right.
   Flows come from DIR (default bench/results/flows, made there on the first run) and the finer flows near small
   structures are fitted as the default pipeline fits them.
2. Replay (seconds): a stop rule ends each track at the first slice its criteria fail on, so the Dice of any rule is
   the Dice of the recorded masks cut there. Masks do not depend on the stop in composed propagation (each slice is
   one warp of the seed); where several labels share a case, a cut label leaves its pixels empty instead of giving
   them to a neighbour, a small difference the last column checks against a real run of the chosen rule.
3. Leave one case out: for each case, the rule with the best mean over the OTHER cases is chosen and scored on it.
   The table gives, per rule family, the in-sample best and the left-out score per case; the left-out mean decides.

Writes bench/results/stop_records.json (the records) and bench/results/stop_loo.json (every rule's scores).
"""
import argparse, itertools, json, pathlib, sys, time
import numpy as np

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / 'results'


def record(cases, flows_dir) -> list:
    "Run every case with a stop that never fires; per structure and direction, the per-slice evidence and overlap."
    import torch
    from flow2mask_nb.benchmark import run_case, load_case, seed_slice_for
    from flow2mask_nb.cli import case_flows
    from flow2mask_nb.stop import StopRule
    from flow2mask_nb.seedmodel import seed_model
    from flow2mask_nb.io import to_slices
    never = StopRule(min_pixels=1, area_fraction=None, support_fraction=None, separation_fraction=None,
                     faint_separation_fraction=None, faint_beyond_anchors=False, agreement=None)
    out = []
    for c in cases:
        t0 = time.perf_counter()
        flows, intensity = case_flows(c, flows_dir)
        r, ann = run_case(c, flows=flows, stop=never, **intensity)
        image, truth, axis, truth3, ids, spacing3 = load_case(c)
        pred3 = to_slices(ann.labels.array, axis)
        raw = ann.prepared.raw
        structures = []
        for l in ids:
            s = r['seeds'][l]
            T = truth3 == l
            model = seed_model(torch.from_numpy(np.ascontiguousarray(raw[s], dtype=np.float32)), torch.from_numpy(T[s]))
            rows = {rec['slice']: rec for rec in ann.propagation.records if rec['label'] == l}
            P = pred3 == l
            inter = (P & T).reshape(len(T), -1).sum(1); area = P.reshape(len(T), -1).sum(1)
            tracks = {}
            for name, step in (('up', 1), ('down', -1)):
                seq, j = [], s + step
                while j in rows and 0 <= j < len(T):
                    q = rows[j]
                    seq.append(dict(slice=j, pixels=int(q['area']), support=float(q['support']),
                                    vanished=q.get('doubt') == 'vanished',     # the intensities erased what the flows carry
                                    contrast=None if q['contrast'] is None or q['contrast'] != q['contrast'] else float(q['contrast']),
                                    inter=int(inter[j]), area=int(area[j]),
                                    dissimilarity=_finite(q.get('dissimilarity')), cycle_error=_finite(q.get('cycle_error'))))
                    j += step
                tracks[name] = seq
            structures.append(dict(label=l, name=r['structures'][l], seed=s, seed_area=int(T[s].sum()), depth=len(T),
                                   seed_inter=int(inter[s]), seed_pred=int(area[s]), truth=int(T.sum()),
                                   separation=float(model.separation), tracks=tracks,
                                   copy=r['copy'][l]['dice'], tvl1=r['tvl1'][l]['dice']))
        out.append(dict(case=c.name, structures=structures))
        print(f"{c.name}: recorded {len(structures)} structure(s) in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def _finite(v):
    "A float, or None for a missing or NaN value."
    return None if v is None or v != v else float(v)


# ---- rules --------------------------------------------------------------------------------------------------------
GRID = dict(   # every combination is a candidate rule; None switches a criterion off
    area=[None, 0.05, 0.2],             # area-collapse: below this share of the seed's area
    growth=[None, 2., 3., 5.],          # growth: above this multiple of the seed's area
    support=[None, 0.3, 0.5, 0.7],      # intensity: the seed's intensities support less of the warped mask
    contrast=[None, 0.2, 0.35, 0.5],    # contrast: below this share of the seed's, for a clearly standing-out seed
    clear=[0.1, 0.2],                   # what 'clearly standing out' means (rank separation)
    faint=[None, 0.],                   # for a faint seed: None never stops on contrast, 0. stops on a reversal
    patience=[1, 2, 3],                 # consecutive failing slices before the stop (the first of them is cut)
    dissim=[None],                      # dissimilarity: the slice differs from the warped seed image this many times
)                                       # more than the first slices beside the seed did (its own family below)
BEFORE = dict(area=0.05, growth=None, support=0.5, contrast=0.35, clear=0.1, faint=0., patience=1, dissim=None)   # tuned in-sample
NOW = dict(area=0.2, growth=None, support=None, contrast=0.5, clear=0.2, faint=0., patience=2, dissim=None)   # stop.StopRule()
FAMILIES = [   # (name, the grid a fold may choose from): each row of the README's table
    ('the rule before (thresholds tuned on seven cases)', {k: [v] for k, v in BEFORE.items()}),
    ('every criterion, every threshold', GRID),
    ('no intensity-support criterion', {**GRID, 'support': [None]}),
    ('no contrast criterion', {**GRID, 'contrast': [None]}),
    ('no rule for faint seeds', {**GRID, 'faint': [None]}),
    ('area and growth only', {**GRID, 'support': [None], 'contrast': [None], 'faint': [None]}),
    ('a stop at the first failing slice (patience 1)', {**GRID, 'patience': [1]}),
    ('area, contrast, faint reversal; 2 slices in a row', {**GRID, 'support': [None], 'growth': [None], 'patience': [2]}),
    ('the default now, or with a dissimilarity criterion (2-6x)', {**{k: [v] for k, v in NOW.items()},
                                                                    'dissim': [None, 2., 3., 4., 6.]}),
    ('the default now', {k: [v] for k, v in NOW.items()}),
]

def fails(row: dict, st: dict, rule: dict) -> bool:
    "Whether one recorded slice fails `rule` (the criteria of `stop.stop_reason`, plus growth)."
    if row['pixels'] < 4 or row.get('vanished'): return True
    ratio = row['pixels'] / max(st['seed_area'], 1)
    if rule['area'] is not None and ratio < rule['area']: return True
    if rule['growth'] is not None and ratio > rule['growth']: return True
    if rule['support'] is not None and row['support'] < rule['support']: return True
    clear = abs(st['separation']) >= rule['clear']
    limit = rule['contrast'] if clear else rule['faint']
    c = row['contrast']
    if limit is not None and abs(st['separation']) > 1e-3 and c is not None and c < limit: return True
    d = row.get('dissimilarity')
    return rule.get('dissim') is not None and d is not None and d > rule['dissim'] * near_seed_dissimilarity(st)


def near_seed_dissimilarity(st: dict) -> float:
    "Mean dissimilarity of the two slices each side of the seed (the scale a dissimilarity criterion is relative to)."
    if '_near' not in st:
        v = [r['dissimilarity'] for tr in st['tracks'].values() for r in tr[:2] if r.get('dissimilarity') is not None]
        st['_near'] = max(float(np.mean(v)) if v else 1., 1e-3)
    return st['_near']


def cut(track: list, st: dict, rule: dict) -> int:
    "How many slices of a track the rule keeps: up to the first of `patience` consecutive failures (as `propagate`)."
    bad = [fails(r, st, rule) for r in track]
    p = rule['patience']
    at_end = bool(track) and track[-1]['slice'] in (0, st['depth'] - 1)   # the track reached the volume's end
    for i in range(len(bad)):
        if all(bad[i:i + p]) and not (at_end and i + p > len(bad)): return i
    return len(track)                            # at the volume's end, slices still in doubt are kept


def structure_dice(st: dict, rule: dict) -> float:
    inter, pred = st['seed_inter'], st['seed_pred']
    for track in st['tracks'].values():
        n = cut(track, st, rule)
        inter += sum(r['inter'] for r in track[:n]); pred += sum(r['area'] for r in track[:n])
    return 2 * inter / (pred + st['truth'])


def case_scores(records: list, rule: dict) -> dict:
    return {c['case']: float(np.mean([structure_dice(st, rule) for st in c['structures']])) for c in records}


def rules(grid: dict = GRID) -> list:
    keys = list(grid)
    return [dict(zip(keys, v)) for v in itertools.product(*grid.values())]


def leave_one_out(scores: list, names: list) -> tuple:
    "(left-out score per case, the rule index chosen for each) from scores[rule][case] (`cases.leave_one_out`)."
    from cases import leave_one_out as by_case
    return by_case({i: {n: s[n] for n in names} for i, s in enumerate(scores)})


def describe(rule: dict) -> str:
    parts = []
    if rule['area'] is not None: parts.append(f"area < {rule['area']:g}")
    if rule['growth'] is not None: parts.append(f"growth > {rule['growth']:g}x")
    if rule['support'] is not None: parts.append(f"support < {rule['support']:g}")
    if rule['contrast'] is not None: parts.append(f"contrast < {rule['contrast']:g} (clear >= {rule['clear']:g})")
    parts.append('faint: never' if rule['faint'] is None else f"faint: contrast < {rule['faint']:g}")
    if rule.get('dissim') is not None: parts.append(f"dissimilarity > {rule['dissim']:g}x the seed's neighbours'")
    if rule['patience'] > 1: parts.append(f"{rule['patience']} slices in a row")
    return ', '.join(parts)


def family_row(records: list, name: str, grid: dict) -> dict:
    "One row of the table: the in-sample best rule of `grid` and the left-out score per case."
    names = [c['case'] for c in records]
    cands = rules(grid)
    scores = [case_scores(records, r) for r in cands]
    loo, chosen = leave_one_out(scores, names)
    best = int(np.argmax([np.mean(list(s.values())) for s in scores]))
    return dict(name=name, candidates=len(cands), in_sample=float(np.mean(list(scores[best].values()))),
                best=cands[best], left_out=loo, left_out_mean=float(np.mean(list(loo.values()))),
                chosen={n: cands[i] for n, i in chosen.items()})


def spread(records: list) -> str:
    "Medians of the per-slice cues on slices mostly inside the true structure against those mostly outside it."
    out = []
    for key in ('dissimilarity', 'cycle_error', 'contrast', 'support'):
        rows = [r for c in records for st in c['structures'] for tr in st['tracks'].values() for r in tr
                if r.get(key) is not None and r['area']]
        inside = [r[key] for r in rows if r['inter'] > 0.5 * r['area']]
        outside = [r[key] for r in rows if r['inter'] <= 0.5 * r['area']]
        if inside and outside:
            out.append(f"{key}: median {np.median(inside):.3f} on {len(inside)} slices mostly inside the structure, "
                       f"{np.median(outside):.3f} on {len(outside)} mostly outside")
    return '\n'.join(out)


def markdown(rows: list, names: list) -> str:
    lines = ['| rules a fold may choose from | candidates | in-sample best | left-out mean | ' + ' | '.join(names) + ' |',
             '|---' * (len(names) + 4) + '|']
    for r in rows:
        lines.append(f"| {r['name']} | {r['candidates']} | {r['in_sample']:.3f} | **{r['left_out_mean']:.3f}** | "
                     + ' | '.join(f"{r['left_out'][n]:.3f}" for n in names) + ' |')
    return '\n'.join(lines)


def main():
    from cases import add_case_options, chosen_cases
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_case_options(ap)
    ap.add_argument('--from-records', action='store_true', help='replay bench/results/stop_records.json, no propagation')
    a = ap.parse_args()
    RESULTS.mkdir(exist_ok=True)
    rec_path = RESULTS / 'stop_records.json'
    if a.from_records: records = json.loads(rec_path.read_text())
    else:
        records = record(chosen_cases(a), a.flows)
        rec_path.write_text(json.dumps(records))
    names = [c['case'] for c in records]
    rows = [family_row(records, name, grid) for name, grid in FAMILIES]
    print(markdown(rows, names))
    for r in rows: print(f"{r['name']}: in-sample best {describe(r['best'])}")
    print(spread(records))
    copy = {c['case']: float(np.mean([s['copy'] for s in c['structures']])) for c in records}
    tvl1 = {c['case']: float(np.mean([s['tvl1'] for s in c['structures']])) for c in records}
    print('| seed copy (true range) | | | ' + f"{np.mean(list(copy.values())):.3f} | " + ' | '.join(f"{copy[n]:.3f}" for n in names) + ' |')
    print('| TV-L1 | | | ' + f"{np.mean(list(tvl1.values())):.3f} | " + ' | '.join(f"{tvl1[n]:.3f}" for n in names) + ' |')
    (RESULTS / 'stop_loo.json').write_text(json.dumps(dict(names=names, rows=rows, copy=copy, tvl1=tvl1)))


if __name__ == '__main__':
    main()
