"""`flow2mask batch complete` over whole datasets, as processes: killed with SIGKILL and restarted, bad cases beside
good ones, a separately started `dask scheduler` + `dask worker`, and the benchmark's completion on real cases.

Phantom datasets keep it quick (TV-L1 flows, or a short fit where the cases must take a few seconds each).
"""
import json, os, pathlib, signal, socket, subprocess, sys, time
import numpy as np
import pytest

pytest.importorskip('distributed', reason='flow2mask batch needs Dask: pip install -e ".[batch]"')
import psutil
from flow2mask_nb.batch import LOCK_NAME, sparsify
from flow2mask_nb.io import read_volume, write_volume
from flow2mask_nb.phantom import make_phantom

BIN = pathlib.Path(sys.executable).parent
EXE = BIN / 'flow2mask'


def run(*args, timeout=300):
    p = subprocess.run([str(EXE), *map(str, args)], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def nnunet_dataset(root: pathlib.Path, n: int, every: int = 4, n_slices: int = 16, size=(64, 64)) -> pathlib.Path:
    "n phantom cases in the nnU-Net layout, organs drawn on every `every`-th slice; dense labels in root/dense."
    if not EXE.exists(): pytest.fail('the flow2mask console script is not installed (pip install -e .)')
    for d in ('imagesTr', 'labelsTr', 'dense'): (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        ph = make_phantom(n_slices=n_slices, size=size, n_organs=2, seed=i)
        name = f'case_{i:03d}'
        write_volume(ph.image, root / 'imagesTr' / f'{name}_0000.nii.gz')
        write_volume(ph.labels, root / 'dense' / f'{name}.nii.gz', labels=True)
        dense3 = np.moveaxis(ph.labels.array, 2, 0)
        sparse3, _ = sparsify(dense3, [int(v) for v in np.unique(dense3) if v], every)
        write_volume(ph.labels.with_array(np.moveaxis(sparse3, 0, 2)), root / 'labelsTr' / f'{name}.nii.gz', labels=True)
    return root


def summary(out: pathlib.Path) -> dict:
    return json.loads((out / 'summary.json').read_text())


def group_alive(pgid: int) -> list:
    "Processes of process group `pgid` that still run (zombies waiting for a reaper do not)."
    alive = []
    for p in psutil.process_iter(['pid', 'status']):
        try:
            if os.getpgid(p.pid) == pgid and p.info['status'] != psutil.STATUS_ZOMBIE: alive.append(p.pid)
        except (ProcessLookupError, psutil.Error): pass
    return alive


def kill_group(pgid: int):
    try: os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError: pass


@pytest.mark.slow
def test_killed_and_restarted_recomputes_nothing_finished(tmp_path):
    n = 4
    data = nnunet_dataset(tmp_path / 'data', n, n_slices=24)
    out = tmp_path / 'out'
    # one worker, cases one after the other, each a few seconds of fitting: the kill lands between cases or inside one
    cmd = [str(EXE), 'batch', 'complete', str(data), '-o', str(out), '--workers', '1', '--fit-steps', '60', '-q']
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and p.poll() is None and len(list((out / 'reports').glob('*.json'))) < 2:
            time.sleep(0.05)
        assert p.poll() is None, 'the run ended before it could be killed'
        os.kill(p.pid, signal.SIGKILL)                    # the client only, as a crash or `kill -9 PID` would
        p.wait()
        deadline = time.time() + 30                       # its Dask workers follow it (they watch their parent)
        while group_alive(p.pid) and time.time() < deadline: time.sleep(0.2)
        assert not group_alive(p.pid), 'Dask worker processes outlived their killed client'
    finally:
        kill_group(p.pid)
    done = sorted(r.stem for r in (out / 'reports').glob('*.json'))
    assert 2 <= len(done) < n, done
    assert all(json.loads((out / 'reports' / f'{c}.json').read_text())['status'] == 'done' for c in done)
    files = [f for c in done for f in (out / f'{c}.nii.gz', out / 'reports' / f'{c}.json')]
    stamps = {f: (f.stat().st_ino, f.stat().st_mtime_ns) for f in files}
    # temporaries as writers killed mid-write leave them (the kill above may or may not have made one), beside files
    # the restart does not rewrite
    (out / f'.{done[0]}.nii.gz.4194000.0123456789ab.partial.nii.gz').write_bytes(b'half a file')
    (out / 'reports' / f'.{done[0]}.json.k2j4x9.tmp').write_bytes(b'{"case": ')

    rc, so, se = run(*cmd[1:])
    assert rc == 0, se[-2000:]
    s = summary(out)
    status = {r['case']: r['status'] for r in s['records']}
    assert sorted(c for c, v in status.items() if v == 'skipped') == done
    assert all(v == 'done' for c, v in status.items() if c not in done) and len(status) == n
    assert {f: (f.stat().st_ino, f.stat().st_mtime_ns) for f in files} == stamps      # finished cases untouched
    assert s['temporaries_removed'] >= 2
    assert [q.name for q in out.rglob('.*') if q.name != LOCK_NAME] == []           # no partial file left
    for i in range(n):                                                              # every output whole
        assert read_volume(out / f'case_{i:03d}.nii.gz').array.max() == 2


@pytest.mark.slow
def test_bad_cases_are_reported_and_the_rest_completed(tmp_path):
    data = nnunet_dataset(tmp_path / 'data', 5)
    img = data / 'imagesTr' / 'case_002_0000.nii.gz'                  # corrupt: the gzip stream cut in half
    img.write_bytes(img.read_bytes()[:img.stat().st_size // 2])
    lab = read_volume(data / 'labelsTr' / 'case_003.nii.gz')          # empty: nothing drawn
    write_volume(lab.with_array(np.zeros_like(lab.array)), data / 'labelsTr' / 'case_003.nii.gz', labels=True)
    other = make_phantom(n_slices=12, size=(64, 64), n_organs=2)      # labels of another volume's grid
    write_volume(other.labels, data / 'labelsTr' / 'case_004.nii.gz', labels=True)
    out = tmp_path / 'out'
    rc, so, se = run('batch', 'complete', data, '-o', out, '--workers', '2', '--flow-source', 'tvl1',
                     '--reference', data / 'dense', '-q')
    assert rc == 2, (rc, se[-2000:])
    assert '3 of 5 cases failed' in se
    s = summary(out)
    rec = {r['case']: r for r in s['records']}
    assert s['counts'] == {'done': 2, 'skipped': 0, 'failed': 3}
    assert 'truncated' in rec['case_002']['error'] and 'empty' in rec['case_003']['error']
    assert "not on the image's grid" in rec['case_004']['error']
    assert {rec[c]['error_kind'] for c in ('case_002', 'case_003', 'case_004')} == {'input'}
    for c in ('case_002', 'case_003', 'case_004'):
        assert c in so and not (out / f'{c}.nii.gz').exists()
        assert json.loads((out / 'reports' / f'{c}.json').read_text())['status'] == 'failed'
    for c in ('case_000', 'case_001'):
        assert rec[c]['status'] == 'done' and rec[c]['mean_dice'] > 0.8 and (out / f'{c}.nii.gz').is_file()
    csv = (out / 'summary.csv').read_text().splitlines()
    assert len(csv) == 6 and (out / 'summary.png').stat().st_size > 1000


def test_command_line_errors_are_one_line(tmp_path):
    rc, so, se = run('batch', 'complete', tmp_path / 'nowhere', '-o', tmp_path / 'out')
    assert rc == 2 and 'no such dataset' in se and len(se.strip().splitlines()) == 1
    rc, so, se = run('batch', 'complete', tmp_path, '-o', tmp_path / 'out', '--workers', '2', '--scheduler', 'tcp://x:1')
    assert rc == 2 and 'not allowed with' in se
    rc, so, se = run('batch')
    assert rc == 2 and 'STEP' in se


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.mark.slow
def test_runs_on_a_separately_started_dask_scheduler_and_worker(tmp_path):
    data = nnunet_dataset(tmp_path / 'data', 3)
    port = free_port()
    address = f'tcp://127.0.0.1:{port}'
    logs = {k: open(tmp_path / f'{k}.log', 'w') for k in ('scheduler', 'worker')}
    start = lambda *a, log: subprocess.Popen([str(BIN / 'dask'), *a], stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True)
    scheduler = start('scheduler', '--host', '127.0.0.1', '--port', str(port), '--no-dashboard', log=logs['scheduler'])
    worker = None
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try: socket.create_connection(('127.0.0.1', port), timeout=1).close(); break
            except OSError: time.sleep(0.2)
        worker = start('worker', address, '--nworkers', '1', '--nthreads', '1', '--no-dashboard', log=logs['worker'])
        out = tmp_path / 'out'
        rc, so, se = run('batch', 'complete', data, '-o', out, '--scheduler', address, '--flow-source', 'tvl1',
                         '--reference', data / 'dense', '-q')
        assert rc == 0, (se[-2000:], (tmp_path / 'worker.log').read_text()[-2000:])
        s = summary(out)
        assert s['counts'] == {'done': 3, 'skipped': 0, 'failed': 0} and s['workers'] == 1
        ran_on = {r['pid'] for r in s['records']}
        worker_pids = {q.pid for q in psutil.Process(worker.pid).children(recursive=True)}
        assert ran_on <= worker_pids, (ran_on, worker_pids)        # the cases ran in the `dask worker` process
        assert all(r['mean_dice'] > 0.8 for r in s['records'])
        assert all((out / f'case_{i:03d}.nii.gz').is_file() for i in range(3))
    finally:
        for p in (worker, scheduler):
            if p is not None:
                kill_group(p.pid); p.wait(timeout=30)
        for f in logs.values(): f.close()


@pytest.mark.slow
def test_every_k_matches_the_benchmark_completion_on_real_cases(data_dir, tmp_path):
    from flow2mask_nb.benchmark import completion_case, load_case, load_cases
    from flow2mask_nb.flowfile import read_flows_file
    names = ('spinal_cord_t2', 'lung_tumour_ct_02')             # slice axis 1 and 2; a short fit keeps it quick
    spec = json.loads((data_dir / 'dev' / 'cases.json').read_text())
    (tmp_path / 'cases.json').write_text(json.dumps({k: dict(spec[k], folder=str(data_dir / 'dev' / k)) for k in names}))
    out, flows = tmp_path / 'out', tmp_path / 'flows'
    rc, so, se = run('batch', 'complete', tmp_path / 'cases.json', '-o', out, '--every', '5', '--fit-steps', '20',
                     '--flows', flows, '-q')
    assert rc == 0, se[-2000:]
    got = {r['case']: {int(l): d['dice'] for l, d in r['dice'].items()} for r in summary(out)['records']}
    for case in load_cases(tmp_path / 'cases.json'):
        # the benchmark on the flows the batch made and wrote (fitting them again would only double the time)
        image, _, axis, *_ = load_case(case)
        fl, meta = read_flows_file(flows / f'{case.name}.safetensors', image, axis)
        want, _ = completion_case(case, 5, flows=fl, fit_steps=20, interpolation=False, modality=meta['modality'],
                                  window=tuple(meta['window']))
        assert got[case.name] == pytest.approx({l: s['dice'] for l, s in want['flow2mask'].items()}, abs=1e-9)


@pytest.mark.slow
def test_flows_of_a_batch_are_picked_up_by_an_annotator(tmp_path):
    "`batch flows` over a dataset, then an annotator opens one of its images: the session reads those flows, no fit."
    from flow2mask_nb.session import Session
    ds = nnunet_dataset(tmp_path / 'ds', 2)
    rc, out, err = run('batch', 'flows', ds, '-o', tmp_path / 'flows', '--flow-source', 'tvl1', '--workers', '1', '-q')
    assert rc == 0, err[-3000:]
    sess = Session(read_volume(ds / 'imagesTr' / 'case_001_0000.nii.gz'))
    stages = []
    sess.compute_flows(lambda stage, done, total: stages.append(stage))
    assert sess.flows_path == (tmp_path / 'flows' / 'case_001.safetensors').resolve(), sess.flows_path
    assert 'flows' not in stages and 'fit' not in stages, stages           # nothing estimated
    assert sess.flows.depth == 16                                           # one per slice
