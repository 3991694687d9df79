"""Nothing lost when `flow2mask propagate` is interrupted: SIGINT or SIGKILL while it works or writes.

After every interruption the target holds either the file that was there before or the complete new result (never a
partial one), the inputs are byte-identical, and SIGINT ends with exit code 130 and one line on stderr. A SIGKILL
mid-write may leave a hidden `.NAME.PID.*.partial.*` temp beside the target; the next run removes it.

There is no hook in the library to stop it mid-write, so the test watches the output folder: the moment the temp file
appears it freezes the process (SIGSTOP), checks that the write is really in flight (temp present, target still the
old file), delivers the signal and resumes it (SIGCONT). Other runs are signalled at fixed fractions of the run time.
"""
import hashlib, os, pathlib, signal, subprocess, sys, time
import numpy as np
import pytest
from flow2mask_nb.io import read_volume, write_volume
from flow2mask_nb.phantom import make_phantom

# one torch thread: on a shared CPU the default thread count can make the fit 30x slower (oversubscription)
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
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
    # the uninterrupted reference, timed from the moment the CLI starts working (torch loaded) to its exit
    ref = out_dir / 'reference.nii.gz'
    p, t_work = _launch(s, ref)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    s.update(reference=read_volume(ref).array, work_s=time.monotonic() - t_work)
    return s


def _torch_loaded(pid) -> bool:
    try: return 'libtorch' in pathlib.Path(f'/proc/{pid}/maps').read_text()
    except OSError: return False


def _launch(s, target):
    "Start `flow2mask propagate`; return (process, monotonic time when it started working: torch being loaded)."
    p = subprocess.Popen([s['exe'], 'propagate', str(s['image']), '--seed', str(s['seed']), '-o', str(target),
                          '--fit-steps', str(FIT_STEPS), '-q'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=ENV)
    end = time.monotonic() + 60
    if os.path.exists(f'/proc/{p.pid}/maps'):          # Linux: wait until the CLI is inside main() (imports torch)
        while not _torch_loaded(p.pid) and p.poll() is None and time.monotonic() < end: time.sleep(0.005)
    else: time.sleep(1.0)
    return p, time.monotonic()


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
                os.kill(p.pid, signal.SIGSTOP)
                mid_write = any(n.startswith(prefix) for n in os.listdir(s['out_dir'])) and sha(target) == old_sha
                break
            time.sleep(0.0002)
    else:
        time.sleep(when)
        if p.poll() is None: os.kill(p.pid, signal.SIGSTOP)
    delivered = p.poll() is None
    if delivered:
        os.kill(p.pid, sig); os.kill(p.pid, signal.SIGCONT)
    out, err = p.communicate(timeout=300)
    return dict(sig=sig, when=when, delivered=delivered, mid_write=mid_write, code=p.returncode, err=err,
                target=target, old_sha=old_sha, pid=p.pid)


def check_nothing_lost(s, r):
    "The target is the old file or the complete new result; the inputs are untouched."
    assert all(sha(p) == h for p, h in s['hashes'].items()), 'an input was modified'
    t = r['target']
    assert t.exists(), 'the old output disappeared'
    if sha(t) != r['old_sha']:
        np.testing.assert_array_equal(read_volume(t).array, s['reference'], err_msg='partial or wrong output')


WHEN = (0.15, 0.45, 0.75)        # fractions of the working time


def test_sigint(setup):
    s = setup
    runs = [interrupt(s, signal.SIGINT, f * s['work_s']) for f in WHEN] + [interrupt(s, signal.SIGINT, 'write')]
    for r in runs:
        check_nothing_lost(s, r)
        if r['delivered']:
            assert r['code'] == 130, r
            assert r['err'] == 'flow2mask: interrupted\n', r          # one line, no traceback
        else:
            assert r['code'] == 0, r                                   # finished before the signal: complete result
        assert partials(s['out_dir'], r['target']) == [], r           # a SIGINT leaves no temp file behind
    assert sum(r['delivered'] for r in runs) >= 3, runs
    print('\nSIGINT:', [(r['when'] if r['when'] == 'write' else round(r['when'], 2), r['code'], r['mid_write'])
                        for r in runs])


def test_sigkill_then_rerun(setup):
    s = setup
    runs = [interrupt(s, signal.SIGKILL, f * s['work_s']) for f in WHEN]
    for _ in range(3):                                  # a few tries at the short write window
        runs.append(interrupt(s, signal.SIGKILL, 'write'))
        if runs[-1]['mid_write']: break
    print('\nSIGKILL:', [(r['when'] if r['when'] == 'write' else round(r['when'], 2), r['code'], r['mid_write'])
                         for r in runs])
    target = runs[0]['target']
    killed = {r['pid'] for r in runs if r['delivered']}
    for r in runs:
        check_nothing_lost(s, r)
        if r['delivered']: assert r['code'] == -signal.SIGKILL, r
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


def test_some_signal_hit_mid_write(setup):
    "The watcher really catches the write in flight (else the two tests above only test before/after the write)."
    s = setup
    hits = []
    for _ in range(3):
        r = interrupt(s, signal.SIGINT, 'write')
        check_nothing_lost(s, r)
        hits.append(r['mid_write'])
        if r['mid_write']:
            assert r['code'] == 130 and r['err'] == 'flow2mask: interrupted\n', r
            assert sha(r['target']) == r['old_sha']       # interrupted before os.replace: the old file stands
            break
    assert any(hits), 'never caught the output being written: the write window was too short to hit'


@pytest.mark.xfail(strict=False, reason="a SIGINT in the first ~0.2 s lands while cli.py imports numpy and SimpleITK "
                   "(module level, before main()'s try): Python prints a KeyboardInterrupt traceback and exits -2 or 1. "
                   "Fix in cli.py: install an early SIGINT handler at the top of the module (print the one line, exit "
                   "130) and/or move the heavy imports into main()")
def test_sigint_during_startup(setup):
    s = setup
    target = s['out_dir'] / 'startup.nii.gz'
    p = subprocess.Popen([s['exe'], 'propagate', str(s['image']), '--seed', str(s['seed']), '-o', str(target),
                          '--fit-steps', str(FIT_STEPS), '-q'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=ENV)
    time.sleep(0.1); p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=300)
    assert not target.exists()
    assert (p.returncode, err) == (130, 'flow2mask: interrupted\n')
