"""Nothing lost when `flow2mask propagate` is interrupted: SIGINT or SIGKILL while it works or writes.

After every interruption the target holds either the file that was there before or the complete new result (never a
partial one), the inputs are byte-identical, and SIGINT ends with exit code 130 and one line on stderr. A SIGKILL
mid-write may leave a hidden `.NAME.PID.*.partial.*` temp beside the target; the next run removes it. (So, today,
may a SIGINT that lands while the temp file is being created: see test_sigint_as_the_temp_file_appears_leaves_nothing.)

There is no hook in the library to stop it mid-write, so the test watches the output folder: the moment the temp file
appears it freezes the process (SIGSTOP), checks that the write is really in flight (temp present, target still the
old file), delivers the signal and resumes it (SIGCONT). Other runs are signalled at fixed fractions of the run time.
"""
import hashlib, json, os, pathlib, select, signal, subprocess, sys, time
import numpy as np
import pytest
from flow2mask_nb.io import read_volume, write_volume
from flow2mask_nb.phantom import make_phantom

# one torch thread: on a shared CPU the default thread count can make the fit 30x slower (oversubscription)
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONUNBUFFERED='1')
FIT_STEPS = 4


def sha(p) -> str:
    return hashlib.sha256(pathlib.Path(p).read_bytes()).hexdigest()


def partials(folder: pathlib.Path, target: pathlib.Path):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f'.{target.name}.') and '.partial' in p.name)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    exe = pathlib.Path(sys.executable).parent / 'flow2mask'
    if not exe.exists(): pytest.fail('the flow2mask console script is not installed (pip install -e .)')
    d = tmp_path_factory.mktemp('interrupt')
    ph = make_phantom(n_slices=20, size=(160, 160), n_organs=1, seed=1)
    lab = ph.labels.array
    k = int(np.argmax((lab == 1).sum(axis=(0, 1))))
    seed = np.zeros_like(lab); seed[..., k] = lab[..., k]
    image = write_volume(ph.image, d / 'image.nii.gz')
    seed_path = write_volume(ph.labels.with_array(seed), d / 'seed.nii.gz', labels=True)
    old = write_volume(ph.labels.with_array(np.zeros_like(lab)), d / 'old.nii.gz', labels=True).read_bytes()
    out_dir = d / 'out'; out_dir.mkdir()                      # old: "yesterday's result", to be replaced atomically
    s = dict(exe=exe, d=d, image=image, seed=seed_path, out_dir=out_dir, old=old,
             hashes={image: sha(image), seed_path: sha(seed_path)})
    # the uninterrupted reference, timed from the moment the CLI starts working (torch loaded) until it has written
    # the result ("wrote ..." on stdout; the interpreter then needs up to a second more to shut down)
    ref = out_dir / 'reference.nii.gz'
    p, t_work = _launch(s, ref)
    line = p.stdout.readline()
    work_s = time.monotonic() - t_work
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0 and line.startswith('wrote'), (line, err)
    s.update(reference=read_volume(ref).array, work_s=work_s)
    return s


def _torch_loaded(pid) -> bool:
    try: return 'libtorch' in pathlib.Path(f'/proc/{pid}/maps').read_text()
    except OSError: return False


def _start(s, target):
    "Start `flow2mask propagate` on the fixture's image and seed, writing `target`."
    return subprocess.Popen([s['exe'], 'propagate', str(s['image']), '--seed', str(s['seed']), '-o', str(target),
                          '--fit-steps', str(FIT_STEPS), '-q'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=ENV)


def _launch(s, target):
    "Start `flow2mask propagate`; return (process, monotonic time when it started working: torch being loaded)."
    p = _start(s, target)
    end = time.monotonic() + 60
    if os.path.exists(f'/proc/{p.pid}/maps'):          # Linux: wait until the CLI is inside main() (imports torch)
        while not _torch_loaded(p.pid) and p.poll() is None and time.monotonic() < end: time.sleep(0.005)
    else: time.sleep(1.0)
    return p, time.monotonic()


def _stop(pid: int, timeout: float = 5.):
    "SIGSTOP `pid` and wait until every thread of it has stopped."
    # the signal is asynchronous: a writer still running on the other core could finish its write between our look
    # at the folder and its stop (a mid-write kill then found no temp file, once in five fresh-clone runs)
    os.kill(pid, signal.SIGSTOP)
    tasks, end = pathlib.Path(f'/proc/{pid}/task'), time.monotonic() + timeout
    while tasks.exists() and time.monotonic() < end:
        try: states = [(t / 'stat').read_text().rsplit(')', 1)[1].split()[0] for t in tasks.iterdir()]
        except (OSError, IndexError): return          # gone meanwhile
        if all(st in 'TtZX' for st in states): return
        time.sleep(0.0002)


def interrupt(s, sig, when):
    """Run with the old file at the target and deliver `sig`: `when` is a delay (s) after the CLI started working,
    or 'write' (the moment the temp file of the output appears). Returns a dict describing what happened."""
    target = s['out_dir'] / 'labels.nii.gz'
    target.write_bytes(s['old']); old_sha = sha(target)      # (not write_volume: it would clean up stale temps)
    p, t0 = _launch(s, target)
    mid_write = False
    if when == 'write':
        prefix = f'.{target.name}.{p.pid}.'
        end = time.monotonic() + 300
        while p.poll() is None and time.monotonic() < end:
            if any(n.startswith(prefix) for n in os.listdir(s['out_dir'])):
                _stop(p.pid)
                mid_write = any(n.startswith(prefix) for n in os.listdir(s['out_dir'])) and sha(target) == old_sha
                break
            time.sleep(0.0002)
    else:
        time.sleep(when)
        if p.poll() is None: _stop(p.pid)
    # a run that has already printed "wrote ..." is past its work (the ~1 s shutdown, see test_sigint_after_the_result_is_written): it counts
    # as finished, its exit code is not checked here
    late = p.poll() is not None or bool(select.select([p.stdout], [], [], 0)[0])
    delivered = p.poll() is None
    if delivered:
        os.kill(p.pid, sig); os.kill(p.pid, signal.SIGCONT)
    out, err = p.communicate(timeout=300)
    r = dict(sig=sig, when=when, delivered=delivered, late=late, mid_write=mid_write, code=p.returncode, err=err,
             target=target, old_sha=old_sha, pid=p.pid)
    check_nothing_lost(s, r)                            # right away, before the next run touches the target
    r['kept_old'] = sha(target) == old_sha
    r['leaked'] = _leaks(s, r) if sig == signal.SIGINT else None
    return r


def check_nothing_lost(s, r):
    "The target is the old file or the complete new result; the inputs are untouched."
    assert all(sha(p) == h for p, h in s['hashes'].items()), 'an input was modified'
    t = r['target']
    assert t.exists(), 'the old output disappeared'
    if sha(t) != r['old_sha']:
        np.testing.assert_array_equal(read_volume(t).array, s['reference'], err_msg='partial or wrong output')


def _leaks(s, r):
    "Temp files a run left beside its target: hidden, of a dead writer (so the next write reclaims them)."
    left = partials(s['out_dir'], r['target'])
    for n in left:
        pid = int(n[len(r['target'].name) + 2:].split('.')[0])
        assert not pathlib.Path(f'/proc/{pid}').exists(), (n, 'its writer is still alive')
    return left


def _show(runs):
    return [(r['when'] if r['when'] == 'write' else round(r['when'], 2), r['code'],
             'mid-write' if r['mid_write'] else 'after the write' if r['late'] else '') for r in runs]


@pytest.mark.slow
def test_sigint(setup):
    s = setup
    runs = []
    for f in (0.15, 0.5, 0.8):                         # fractions of the working time: loading, fitting, propagating
        runs.append(interrupt(s, signal.SIGINT, f * s['work_s']))
    for _ in range(3):                                  # the write itself (a few ms): retry until caught in flight
        runs.append(interrupt(s, signal.SIGINT, 'write'))
        if runs[-1]['mid_write'] and runs[-1]['kept_old']: break
    print('\nSIGINT (when, exit code):', _show(runs))
    for r in runs:
        if not r['late']:
            assert r['code'] == 130, r
            assert r['err'] == 'flow2mask: interrupted\n', r          # one line, no traceback
        elif not r['delivered']:
            assert r['code'] == 0, r                                   # finished before the signal: complete result
    # (r['leaked']: temp files of dead writers, reclaimed by the next write)
    assert sum(not r['late'] for r in runs) >= 3, runs
    hit = [r for r in runs if r['mid_write']]
    assert hit, 'never caught the output being written: the write window was too short to hit'
    # stopped before os.replace, the old file stands; a signal stopped in flight can still land just after the
    # replace (Python runs its handler between bytecodes), leaving the complete new result (`check_nothing_lost`)
    assert any(r['kept_old'] for r in hit), hit


@pytest.mark.slow
def test_sigkill_then_rerun(setup):
    s = setup
    runs = [interrupt(s, signal.SIGKILL, f * s['work_s']) for f in (0.3, 0.7)]
    for _ in range(3):
        runs.append(interrupt(s, signal.SIGKILL, 'write'))
        if runs[-1]['mid_write']: break
    print('\nSIGKILL (when, exit code):', _show(runs))
    target = runs[0]['target']
    killed = {r['pid'] for r in runs if r['delivered']}
    for r in runs:
        if r['delivered']: assert r['code'] == -signal.SIGKILL, r
    assert sum(not r['late'] for r in runs) >= 2, runs
    left = partials(s['out_dir'], target)
    # temp files left behind belong to killed writers only, and a writer killed mid-write does leave one
    assert {int(n[len(target.name) + 2:].split('.')[0]) for n in left} <= killed, (left, runs)
    if runs[-1]['mid_write']: assert any(f".{runs[-1]['pid']}." in n for n in left), (left, runs[-1])
    # the rerun succeeds, writes the complete result and removes the stale temp files of the dead writers
    p = subprocess.run([s['exe'], 'propagate', str(s['image']), '--seed', str(s['seed']), '-o', str(target),
                        '--fit-steps', str(FIT_STEPS), '-q'], capture_output=True, text=True, env=ENV, timeout=300)
    assert p.returncode == 0, p.stderr
    np.testing.assert_array_equal(read_volume(target).array, s['reference'])
    assert partials(s['out_dir'], target) == []
    assert all(sha(p) == h for p, h in s['hashes'].items())


MKSTEMP_SIGINT = r"""
import json, os, signal, sys
import numpy as np
from flow2mask_nb.io import Volume, write_volume
# a child inherits an ignored SIGINT from its parent (the test runner, after some earlier test), and Python then
# installs no KeyboardInterrupt handler: restore the one an interactive user has
signal.signal(signal.SIGINT, signal.default_int_handler)
real_open = os.open
def open_then_sigint(path, *a, **k):          # a real SIGINT, arriving the moment the temp file exists
    fd = real_open(path, *a, **k)
    if '.partial' in str(path): signal.raise_signal(signal.SIGINT)
    return fd
os.open = open_then_sigint
target = sys.argv[1]
try: write_volume(Volume(np.zeros((8, 8, 4), np.uint8)), target, labels=True); print(json.dumps('no interrupt'))
except KeyboardInterrupt: print(json.dumps(sorted(os.listdir(os.path.dirname(target)))))
"""


def test_sigint_as_the_temp_file_appears_leaves_nothing(tmp_path):
    target = tmp_path / 'labels.nii.gz'
    p = subprocess.run([sys.executable, '-c', MKSTEMP_SIGINT, str(target)], capture_output=True, text=True,
                       env=ENV, timeout=120)
    assert p.returncode == 0, p.stderr
    left = json.loads(p.stdout)
    assert left != 'no interrupt'
    assert left == [], f'temp files left after a SIGINT: {left}'


def test_sigint_after_the_result_is_written(setup):
    s = setup
    target = s['out_dir'] / 'late.nii.gz'
    p = _start(s, target)
    assert p.stdout.readline().startswith('wrote')
    time.sleep(0.2)
    if p.poll() is None: p.send_signal(signal.SIGINT)
    p.communicate(timeout=300)
    np.testing.assert_array_equal(read_volume(target).array, s['reference'])     # the result is complete anyway
    assert p.returncode in (0, 130)


def test_sigint_during_startup(setup):
    s = setup
    target = s['out_dir'] / 'startup.nii.gz'
    p = _start(s, target)
    time.sleep(0.1); p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=300)
    assert not target.exists()
    assert (p.returncode, err) == (130, 'flow2mask: interrupted\n')
