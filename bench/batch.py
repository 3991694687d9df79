"""Whole-dataset completion (`flow2mask batch complete`) on Dask: two LocalCluster workers against one, and the
per-case Dice against `flow2mask benchmark --completion K` on the same cases.

The dataset: ../shared/data/dev (its cases.json: twelve real cases, dense labels) with each structure drawn on every
5th slice of its range, ends included (`--every 5`, the benchmark's completion protocol), default settings (flows
fitted on each volume). Every run is the command line in a fresh process writing into a fresh folder (nothing
skipped), timed from launch to exit, the start of the cluster included. One worker (two torch threads) and two
workers (one thread each) alternate, `--repeats` times each; the figure is the ratio of the medians. The 1-minute
load average is recorded before and after every run (the machine is shared).

Agreement: `flow2mask benchmark CASES --completion 5 --no-baselines --json` on the same cases (it also runs its
one-seed protocol, untimed here); per structure, the Dice of the batch (its last 2-worker run) against the
benchmark's completion.

Writes bench/results/batch.json.
Usage: .venv/bin/python bench/batch.py [--repeats 3] [--cases NAME,NAME] [--every 5] [--no-speed] [--no-agreement]
"""
import argparse, json, os, pathlib, statistics, subprocess, sys, tempfile, time
from flow2mask_nb.testing import shared_data_dir

HERE = pathlib.Path(__file__).parent
EXE = str(pathlib.Path(sys.executable).parent / 'flow2mask')


def write_cases(data: pathlib.Path, names, folder: pathlib.Path) -> pathlib.Path:
    "A cases.json of the chosen dev cases (all by default), pointing at the shared data by absolute paths."
    spec = json.loads((data / 'dev' / 'cases.json').read_text())
    names = names or list(spec)
    path = folder / 'cases.json'
    path.write_text(json.dumps({k: dict(spec[k], folder=str(data / 'dev' / k)) for k in names}, indent=1))
    return path


def timed(cmd) -> dict:
    "Run `cmd`, timing it from launch to exit; the load average before and after."
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if p.returncode != 0: sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return dict(seconds=seconds, load_before=load0, load_after=os.getloadavg()[0], stdout=p.stdout)


def speed(cases, every, repeats, tmp) -> dict:
    runs = []
    for r in range(repeats):
        for w in ((1, 2) if r % 2 == 0 else (2, 1)):
            out = tmp / f'workers{w}_run{r}'
            t = timed([EXE, 'batch', 'complete', str(cases), '-o', str(out), '--every', str(every), '--workers', str(w), '-q'])
            s = json.loads((out / 'summary.json').read_text())
            if s['counts']['done'] != s['cases']: sys.exit(f"run {out}: not every case done: {s['counts']}")
            runs.append(dict(workers=w, repeat=r, seconds=round(t['seconds'], 2), load_before=t['load_before'],
                             load_after=t['load_after'], summary=str(out / 'summary.json')))
            print(f"workers {w}, run {r}: {t['seconds']:.1f} s (load {t['load_before']:.2f} -> {t['load_after']:.2f})",
                  flush=True)
    med = {w: statistics.median(x['seconds'] for x in runs if x['workers'] == w) for w in (1, 2)}
    return dict(runs=runs, median_seconds=med, ratio=med[2] / med[1])


def agreement(cases, every, batch_summary: pathlib.Path, tmp) -> dict:
    "The benchmark's completion on the same cases, structure by structure, beside the batch's."
    js = tmp / 'benchmark.json'
    timed([EXE, 'benchmark', str(cases), '--completion', str(every), '--no-baselines', '--json', str(js)])
    bench = {r['case']: r['flow2mask'] for r in json.loads(js.read_text())['completion']['results']}
    batch = {r['case']: r['dice'] for r in json.loads(batch_summary.read_text())['records']}
    rows = [dict(case=c, label=l, batch=batch[c][l]['dice'], benchmark=s['dice'],
                 difference=batch[c][l]['dice'] - s['dice']) for c, scores in bench.items() for l, s in scores.items()]
    per_case = {c: dict(batch=sum(batch[c][l]['dice'] for l in s) / len(s), benchmark=sum(v['dice'] for v in s.values()) / len(s))
                for c, s in bench.items()}
    return dict(structures=rows, per_case=per_case, max_abs_difference=max(abs(r['difference']) for r in rows),
                benchmark_json=str(js))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--repeats', type=int, default=3, help='runs per worker count (medians)')
    ap.add_argument('--cases', default=None, help='comma-separated dev case names (default: all twelve)')
    ap.add_argument('--every', type=int, default=5, help='draw every K-th slice')
    ap.add_argument('--no-speed', action='store_true', help='skip the timing (then one 2-worker run for the agreement)')
    ap.add_argument('--no-agreement', action='store_true', help='skip the comparison with the benchmark')
    ap.add_argument('--json', default=str(HERE / 'results' / 'batch.json'))
    args = ap.parse_args()
    data = shared_data_dir()
    if data is None: sys.exit('real data not found: ../shared/data (or $FLOW2MASK_DATA)')
    tmp = pathlib.Path(tempfile.mkdtemp(prefix='flow2mask_bench_batch_'))
    cases = write_cases(data, args.cases and args.cases.split(','), tmp)
    res = dict(cases=list(json.loads(cases.read_text())), every=args.every, cores=os.cpu_count(), scratch=str(tmp))
    if not args.no_speed:
        res['speed'] = speed(cases, args.every, args.repeats, tmp)
        m = res['speed']['median_seconds']
        print(f"\nmedian wall time: 1 worker {m[1]:.1f} s, 2 workers {m[2]:.1f} s: ratio {res['speed']['ratio']:.2f} "
              f"(bar: <= 0.65)", flush=True)
    if not args.no_agreement:
        last = [r for r in res.get('speed', {}).get('runs', []) if r['workers'] == 2]
        if last: summary = pathlib.Path(last[-1]['summary'])
        else:
            out = tmp / 'agreement'
            timed([EXE, 'batch', 'complete', str(cases), '-o', str(out), '--every', str(args.every), '--workers', '2', '-q'])
            summary = out / 'summary.json'
        res['agreement'] = a = agreement(cases, args.every, summary, tmp)
        print('\n| case | batch complete --every 5 | benchmark --completion 5 |\n|---|---|---|')
        for c, v in a['per_case'].items(): print(f"| {c} | {v['batch']:.4f} | {v['benchmark']:.4f} |")
        print(f"largest difference over {len(a['structures'])} structures: {a['max_abs_difference']:.2e}")
    pathlib.Path(args.json).write_text(json.dumps(res, indent=1))
    print(f"wrote {args.json}")


if __name__ == '__main__':
    main()
