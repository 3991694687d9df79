"""Scale benchmark: propagate on 512 x 512 x N volumes (N = 50, 100, 300, one seeded label), and on a 256^3
brain-like parcellation with 188 labels, each drawn on its own largest slice (`--parcellation`).

Each N runs in a fresh child process that does what `flow2mask propagate` does (read image, read seed, annotate with
the per-volume fit at a fixed small step count, write the label map), so its peak RSS is the CLI's. Printed per N:
time per slice for the whole run and for the propagation stage alone, the peak RSS of the process (VmHWM), and where
the memory goes: the peak of every stage above the memory held when the stage began (the kernel's high-water mark
is reset at each stage boundary through /proc/self/clear_refs). Then the ratios of time per slice at the largest N
to the smallest (1.0 = linear time).

Targets: peak memory <= 3 GB at 512 x 512 x 300 (issue 7) and for the 188-label parcellation (issue 10: it peaked at
13.8 GB when propagation held a float per label and voxel), time linear in the number of slices.

The volumes: `make_phantom` at 512 px costs ~1 GB of true flows per 300 slices and minutes, so the phantom is rendered
at 128 x 128 and upsampled x4 in-plane (image bilinear plus fresh noise at full resolution, labels nearest).

Usage: .venv/bin/python bench/scale.py [--sizes 50,100,300] [--parcellation] [--fit-steps 20] [--threads 1] [--json PATH]
"""
import argparse, json, os, pathlib, re, subprocess, sys, tempfile, time

GB = 1024 ** 3


def vm(field='VmHWM'):
    "A /proc/self/status memory field in bytes (Linux)."
    m = re.search(rf'{field}:\s+(\d+) kB', pathlib.Path('/proc/self/status').read_text())
    return int(m.group(1)) * 1024 if m else 0


# ---------------------------------------------------------------- the volumes

def make_volume(n, folder: pathlib.Path, factor=4, base=128, seed=0):
    "Write image and one-label seed for a (base*factor)^2 x n phantom; returns their paths."
    import numpy as np, torch, torch.nn.functional as F
    from flow2mask_nb.io import Volume, write_volume
    from flow2mask_nb.phantom import make_phantom
    ph = make_phantom(n_slices=n, size=(base, base), n_organs=3, seed=seed)
    rng = np.random.default_rng(seed)
    H = base * factor
    img = np.empty((H, H, n), np.int16); lab = np.empty((H, H, n), np.uint8)
    for k0 in range(0, n, 25):                                  # in chunks: bounded memory
        sl = torch.from_numpy(np.moveaxis(ph.image.array[..., k0:k0 + 25], 2, 0).astype(np.float32))[:, None]
        up = F.interpolate(sl, size=(H, H), mode='bilinear', align_corners=False)[:, 0].numpy()
        up += rng.normal(0, 8, up.shape).astype(np.float32)
        img[..., k0:k0 + 25] = np.moveaxis(np.round(up), 0, 2).astype(np.int16)
        lab[..., k0:k0 + 25] = ph.labels.array[..., k0:k0 + 25].repeat(factor, 0).repeat(factor, 1)
    sp = tuple(s / factor for s in ph.image.spacing[:2]) + (ph.image.spacing[2],)
    image = Volume(img, sp, ph.image.origin)
    k = int(np.argmax((lab == 1).sum(axis=(0, 1))))             # label 1 drawn on its largest slice
    seed_arr = np.zeros_like(lab); seed_arr[..., k][lab[..., k] == 1] = 1
    return (write_volume(image, folder / f'image_{n}.nii.gz'),
            write_volume(image.with_array(seed_arr), folder / f'seed_{n}.nii.gz', labels=True))


def make_parcellation(folder: pathlib.Path, n_labels=188, size=256, seed=0):
    "Write a size^3 brain-like volume cut into `n_labels` parcels (Voronoi cells in an ellipsoid) and a seed that draws"
    "every parcel on its own largest slice; returns their paths."
    import numpy as np
    from scipy.spatial import cKDTree
    from flow2mask_nb.io import Volume, write_volume
    from flow2mask_nb.metrics import oracle_seed
    rng = np.random.default_rng(seed)
    c = (size - 1) / 2
    pts = rng.uniform(-1, 1, (4 * n_labels, 3)); pts = pts[(pts ** 2).sum(1) < 0.8][:n_labels] * 0.42 * size + c
    lab = np.zeros((size,) * 3, np.uint8)
    img = np.zeros((size,) * 3, np.int16)
    tone = rng.uniform(200, 800, n_labels + 1); tone[0] = 20
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing='ij'), -1).reshape(-1, 2)
    tree = cKDTree(pts)
    for z in range(size):                                       # slice by slice: bounded memory
        q = np.concatenate([grid, np.full((len(grid), 1), z)], 1).astype(np.float32)
        inside = (((q - c) / (0.45 * size)) ** 2).sum(1) < 1
        l = np.zeros(len(q), np.uint8); l[inside] = tree.query(q[inside])[1] + 1
        lab[..., z] = l.reshape(size, size)
        img[..., z] = (tone[lab[..., z]] + rng.normal(0, 15, (size, size))).astype(np.int16)
    present = [int(v) for v in np.unique(lab) if v]
    image = Volume(img, (1., 1., 1.), (0., 0., 0.))
    return (write_volume(image, folder / 'parcellation.nii.gz'),
            write_volume(image.with_array(oracle_seed(lab, present, axis=2)), folder / 'parcellation_seed.nii.gz', labels=True),
            len(present))


# ---------------------------------------------------------------- the measured child

class Stages:
    "Per-stage wall time and peak RSS above the RSS at the stage's start (high-water mark reset per stage)."
    def __init__(self):
        self.rows, self.name, self.reset_ok = [], None, True
        self.t0 = time.perf_counter()

    def start(self, name):
        self.stop()
        try: pathlib.Path('/proc/self/clear_refs').write_text('5')     # reset VmHWM to the current RSS
        except OSError: self.reset_ok = False
        self.name, self.t, self.base = name, time.perf_counter(), vm('VmRSS')

    def stop(self):
        if self.name is None: return
        self.rows.append(dict(stage=self.name, seconds=time.perf_counter() - self.t, rss_start=self.base,
                              peak=vm('VmHWM'), rss_end=vm('VmRSS')))
        self.name = None


def child(image_path, seed_path, out_path, fit_steps, threads):
    import torch
    torch.set_num_threads(threads)
    st = Stages()
    from flow2mask_nb import flowsource, session
    from flow2mask_nb.io import read_volume, read_labels, write_volume
    # stage marks inside annotate (the bench wraps the library's functions; it changes nothing in them)
    def mark(name, f):
        def g(*a, **k):
            st.start(name); return f(*a, **k)
        return g
    session.prepare = mark('prepare: intensity window, slice-first float copy, working size', session.prepare)
    flowsource.estimate_flows = mark('flows: fit', flowsource.estimate_flows)     # `flowfile.make_flows` imports it per call
    session.local_flows = mark('flows: finer flows near small structures', session.local_flows)
    session.propagate = mark('propagate: warp, refine, stop and fuse slice by slice', session.propagate)
    orig_from = session.from_slices
    def from_slices(*a, **k):
        st.start('annotate: back to image layout'); return orig_from(*a, **k)
    session.from_slices = from_slices

    t0 = time.perf_counter()
    st.start('read image'); image = read_volume(image_path)
    st.start('read seed (onto the image grid)'); seed = read_labels(seed_path, image)
    st.start('annotate: checks'); t_ann = time.perf_counter()
    ann = session.annotate(image, seed, flow_source='fit', fit_steps=fit_steps, device='cpu')
    t_ann = time.perf_counter() - t_ann
    st.start('write labels'); write_volume(ann.labels, out_path, labels=True)
    st.stop()
    total = time.perf_counter() - t0
    print(json.dumps(dict(shape=list(image.shape), total_s=total, annotate_s=t_ann, flow_s=ann.info['flow_seconds'],
                          propagate_s=ann.info['propagate_seconds'], stages=st.rows,
                          hwm_reset=st.reset_ok, rss_end=vm('VmRSS'), threads=torch.get_num_threads(),
                          labelled_slices=int((ann.labels.array > 0).any(axis=(0, 1)).sum()),
                          working_shape=ann.info['working_shape'])))


# ---------------------------------------------------------------- the driver

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes', default='50,100,300', help='slice counts (empty: none)')
    p.add_argument('--parcellation', action='store_true', help='also run the 188-label 256^3 parcellation')
    p.add_argument('--fit-steps', type=int, default=20, help='fixed fit budget (steps) for every N')
    p.add_argument('--threads', type=int, default=1, help='torch threads in the child (1: fair on a shared CPU)')
    p.add_argument('--json', default=None, help='also write the results here')
    p.add_argument('--keep', default=None, help='keep the generated volumes and outputs in this folder')
    p.add_argument('--child', nargs=3, metavar=('IMAGE', 'SEED', 'OUT'), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child: return child(*a.child, a.fit_steps, a.threads)
    sizes = [int(s) for s in a.sizes.split(',') if s.strip()]
    tmp = None if a.keep else tempfile.TemporaryDirectory(prefix='flow2mask_scale_')   # removed at the end
    folder = pathlib.Path(a.keep or tmp.name); folder.mkdir(exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    results = []
    jobs = [(f'N = {n}', n, lambda n=n: make_volume(n, folder)) for n in sizes]
    if a.parcellation: jobs.append(('188-label parcellation', None, lambda: make_parcellation(folder)[:2]))
    for title, n, make in jobs:
        t = time.perf_counter(); image, seed = make(); t_make = time.perf_counter() - t
        q = subprocess.run([sys.executable, __file__, '--child', str(image), str(seed), str(folder / f'out_{n}.nii.gz'),
                            '--fit-steps', str(a.fit_steps), '--threads', str(a.threads)],
                           capture_output=True, text=True, env=env)
        if q.returncode != 0: sys.exit(f'{title}: child failed ({q.returncode}):\n{q.stderr[-3000:]}')
        r = json.loads(q.stdout.strip().splitlines()[-1])
        # the process's peak RSS is the largest stage peak (each stage's high-water mark covers its interval; note
        # that resetting it also resets ru_maxrss, so getrusage(RUSAGE_CHILDREN) would only see the last stage)
        r.update(n=n or r['shape'][2], case=title, make_s=t_make, peak=max(s['peak'] for s in r['stages']))
        results.append(r)
        print(f"\n{title}: {' x '.join(map(str, r['shape']))} voxels (volume made in {t_make:.1f} s); "
              f"fit {a.fit_steps} steps at working size {r['working_shape'][-2:]}, {r['threads']} torch thread(s); "
              f"{r['labelled_slices']} slices labelled", flush=True)
        print(f"  total {r['total_s']:.1f} s = {1000 * r['total_s'] / r['n']:.0f} ms/slice | flows {r['flow_s']:.1f} s | "
              f"propagation alone {r['propagate_s']:.1f} s = {1000 * r['propagate_s'] / r['n']:.0f} ms/slice | "
              f"peak RSS {r['peak'] / GB:.2f} GB ({'within' if r['peak'] <= 3 * GB else 'OVER'} 3 GB)")
        print(f"  {'stage':58s} {'s':>7s} {'RSS at start':>13s} {'peak':>8s} {'+peak':>8s}")
        for s in r['stages']:
            print(f"  {s['stage']:58s} {s['seconds']:7.2f} {s['rss_start'] / GB:10.2f} GB {s['peak'] / GB:5.2f} GB "
                  f"{(s['peak'] - s['rss_start']) / GB:+5.2f} GB")
    results_n = [r for r in results if r['case'].startswith('N =')]
    if len(results_n) < 2:
        if a.json: pathlib.Path(a.json).write_text(json.dumps(results, indent=1))
        if tmp: tmp.cleanup()
        return
    results, all_results = results_n, results
    lo, hi = results[0], results[-1]
    per = lambda r, k: r[k] / r['n']
    print(f"\nsummary ({'CPU, ' + str(a.threads) + ' thread(s)'}; fit {a.fit_steps} steps):")
    print(f"  {'N':>5s} {'total ms/slice':>15s} {'propagation ms/slice':>21s} {'peak RSS GB':>12s}")
    for r in results:
        print(f"  {r['n']:5d} {1000 * per(r, 'total_s'):15.0f} {1000 * per(r, 'propagate_s'):21.0f} {r['peak'] / GB:12.2f}")
    print(f"  time per slice, N={hi['n']} / N={lo['n']}: total {per(hi, 'total_s') / per(lo, 'total_s'):.2f}, "
          f"propagation {per(hi, 'propagate_s') / per(lo, 'propagate_s'):.2f} (1.0 = linear)")
    print(f"  peak RSS at N={hi['n']}: {hi['peak'] / GB:.2f} GB "
          f"({'within' if hi['peak'] <= 3 * GB else 'OVER'} the 3 GB target)")
    if a.json: pathlib.Path(a.json).write_text(json.dumps(all_results, indent=1))
    if tmp: tmp.cleanup()


if __name__ == '__main__':
    main()
