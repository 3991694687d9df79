"""Hostile files: randomly corrupted NIfTI (.nii, .nii.gz), NRRD and DICOM files, read by `read_volume`.

Each file must give a clean `Flow2MaskError` (one line) or a valid `Volume`: never another exception, a crash
(segfault in ITK/GDCM), a hang, or an allocation far beyond what the file could hold. The reading runs in child
processes (address-space limit, a time limit per file), so a C-level crash or a runaway allocation is seen and
attributed to one file instead of killing pytest; a worker that dies is restarted on the files after the culprit.

Every case is reproducible from (format, case number): the corruption is drawn from a seeded RNG and recorded.
"""
import gzip, json, os, pathlib, re, selectors, shutil, signal, struct, subprocess, sys, tempfile, time, zlib
import numpy as np
import pytest
import SimpleITK as sitk
from flow2mask_nb.io import write_volume
from flow2mask_nb.testing import shared_data_dir
from flow2mask_nb.phantom import make_phantom

N_CASES = 200              # per format (NRRD: half raw, half gzip-encoded; DICOM: half real CT, half phantom)
PER_FILE_S = 10.           # a read that takes longer is a hang
AS_LIMIT = 2 << 30         # address-space limit of a worker (bytes): a runaway allocation fails instead of swapping
# A corrupt header must not make the reader allocate more than the file can possibly hold: deflate expands at most
# ~1032:1, uncompressed data 1:1. Anything beyond this bound (and 64 MiB) is an allocation blow-up.
MAX_INFLATION = 1100

# ---------------------------------------------------------------- the reading worker (runs in a child process)

WORKER = r'''
import json, os, resource, sys, time, traceback
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
import numpy as np
import SimpleITK as sitk
from flow2mask_nb.errors import Flow2MaskError
from flow2mask_nb.io import read_volume, Volume

claims = []          # what ImageFileReader.Execute is about to allocate (bytes), per call
_execute = sitk.ImageFileReader.Execute
def _spy(self, *a, **k):
    try:
        n = int(np.prod(self.GetSize(), dtype=np.int64)) * self.GetNumberOfComponents()
        claims.append(n * sitk.Image([1, 1, 1], self.GetPixelID()).GetSizeOfPixelComponent())
    except Exception: pass
    return _execute(self, *a, **k)
sitk.ImageFileReader.Execute = _spy

def emit(**d): sys.stdout.write(json.dumps(d) + '\n'); sys.stdout.flush()

emit(event='ready')
for line in sys.stdin:
    path = line.rstrip('\n')
    if not path: break
    emit(event='start', path=path)
    claims.clear(); t0 = time.perf_counter()
    try:
        v = read_volume(path)
        a = v.array
        bad = []
        if not isinstance(v, Volume): bad.append(f'not a Volume: {type(v).__name__}')
        if a.ndim != 3 or a.size == 0: bad.append(f'array shape {a.shape}')
        if not (np.all(np.isfinite(v.origin)) and np.all(np.isfinite(v.direction))): bad.append('non-finite geometry')
        out = dict(outcome='invalid' if bad else 'ok', detail='; '.join(bad), shape=list(a.shape), dtype=str(a.dtype))
    except Flow2MaskError as e:
        out = dict(outcome='error', type=type(e).__name__, message=str(e))
    except BaseException as e:
        out = dict(outcome='unexpected', type=type(e).__name__, message=str(e)[:500],
                   tb=traceback.format_exc()[-1500:])
    emit(event='done', path=path, seconds=time.perf_counter() - t0, alloc=max(claims, default=0),
         maxrss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, **out)
'''


def _start_worker(log):
    env = dict(os.environ, PYTHONFAULTHANDLER='1', ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS='1', OMP_NUM_THREADS='1')
    return subprocess.Popen([sys.executable, '-c', WORKER, str(AS_LIMIT)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True)


class _Lines:
    "Read JSON lines from a pipe with a deadline per line."
    def __init__(self, pipe):
        self.pipe, self.buf = pipe, b''
        self.sel = selectors.DefaultSelector(); self.sel.register(pipe, selectors.EVENT_READ)

    def next(self, timeout):
        end = time.monotonic() + timeout
        while b'\n' not in self.buf:
            left = end - time.monotonic()
            if left <= 0 or not self.sel.select(left): return 'timeout'
            chunk = os.read(self.pipe.fileno(), 65536)
            if not chunk: return 'eof'
            self.buf += chunk
        line, self.buf = self.buf.split(b'\n', 1)
        return json.loads(line)


def read_all(paths, per_file_s=PER_FILE_S) -> dict:
    "Read every path in child processes; returns {path: result dict}. Crashes and hangs are results too."
    results, todo = {}, [str(p) for p in paths]
    with tempfile.TemporaryFile() as log:
        while todo:
            log.seek(0); log.truncate()
            w = _start_worker(log)
            lines = _Lines(w.stdout)
            try:
                first = lines.next(60)
                assert isinstance(first, dict) and first.get('event') == 'ready', f'worker did not start: {first}'
                w.stdin.write(('\n'.join(todo) + '\n\n').encode()); w.stdin.flush()
                current = None
                while todo:
                    msg = lines.next(per_file_s if current else 30)
                    if isinstance(msg, dict) and msg['event'] == 'start': current = msg['path']; continue
                    if isinstance(msg, dict) and msg['event'] == 'done':
                        results[msg['path']] = msg; todo.remove(msg['path']); current = None; continue
                    # the worker died or stopped answering while reading `current`
                    if msg == 'timeout': os.killpg(w.pid, signal.SIGKILL)
                    code = w.wait(30)
                    log.seek(0); err = log.read().decode(errors='replace')[-2000:]
                    culprit = current or todo[0]
                    results[culprit] = dict(path=culprit, outcome='hang' if msg == 'timeout' else 'crash',
                                            returncode=code, stderr=err)
                    todo.remove(culprit)
                    break
            finally:
                if w.poll() is None:
                    try: w.stdin.close()
                    except OSError: pass
                    try: w.wait(10)
                    except subprocess.TimeoutExpired: os.killpg(w.pid, signal.SIGKILL); w.wait()
                w.stdout.close()
    return results

# ---------------------------------------------------------------- valid base files

def _phantom():
    return make_phantom(n_slices=6, size=(32, 28), n_organs=2, seed=3)


def _write_dicom_series(image, folder: pathlib.Path):
    "Write an int16 Volume as a DICOM CT series, one file per slice (SimpleITK/GDCM)."
    folder.mkdir()
    img = sitk.GetImageFromArray(np.ascontiguousarray(image.array.transpose(2, 1, 0)))
    img.SetSpacing(image.spacing); img.SetOrigin(image.origin)
    series_uid, study_uid = '1.2.826.0.1.3680043.2.1125.7.1', '1.2.826.0.1.3680043.2.1125.7.2'
    writer = sitk.ImageFileWriter(); writer.KeepOriginalImageUIDOn()
    for k in range(img.GetDepth()):
        s = img[:, :, k]
        tags = {'0008|0060': 'CT', '0008|0016': '1.2.840.10008.5.1.4.1.1.2', '0020|000d': study_uid,
                '0020|000e': series_uid, '0008|0018': f'{series_uid}.{k + 1}', '0020|0013': str(k + 1),
                '0020|0032': '\\'.join(map(str, img.TransformIndexToPhysicalPoint((0, 0, k)))),
                '0020|0037': '1\\0\\0\\0\\1\\0', '0028|1052': '0', '0028|1053': '1', '0010|0010': 'Phantom^Hostile'}
        for key, val in tags.items(): s.SetMetaData(key, val)
        writer.SetFileName(str(folder / f'slice{k:03d}.dcm')); writer.Execute(s)
    return folder


def _split(data: bytes, fmt: str) -> int:
    "Offset where the header ends and the voxels start."
    if fmt == 'nii': return 352
    if fmt == 'nrrd': return data.index(b'\n\n') + 2
    if fmt == 'dicom':
        k = data.rfind(b'\xe0\x7f\x10\x00')          # (7FE0,0010) Pixel Data, little endian
        return k + 12 if k > 0 else len(data) // 2
    return min(len(data) // 2, 128)                 # gzip bytes: the first ones hold the start of the NIfTI header


def corrupt(data: bytes, fmt: str, rng) -> tuple:
    "Apply one random corruption; returns (new bytes, description)."
    split = _split(data, fmt)
    kind = ('header-flip', 'payload-flip', 'truncate')[int(rng.integers(3))]
    if kind == 'truncate':
        cut = int(rng.integers(0, split)) if rng.random() < 0.5 else int(rng.integers(split, len(data)))
        return data[:cut], dict(kind=kind, cut=cut, of=len(data))
    lo, hi = (0, split) if kind == 'header-flip' else (split, len(data))
    b = bytearray(data)
    n = int(rng.integers(1, 5 if kind == 'header-flip' else 17))
    flips = [(int(rng.integers(lo, hi)), int(rng.integers(1, 256))) for _ in range(n)]
    for off, x in flips: b[off] ^= x
    return bytes(b), dict(kind=kind, flips=flips)


class Case(dict):
    "One corrupted file: path, format, how it was made."


def make_bases(root: pathlib.Path, data_dir) -> dict:
    "Valid small files of every format (from a phantom; DICOM also three real CT slices when the data are there)."
    base = root / 'base'; base.mkdir()
    ph = _phantom()
    nii = base / 'image.nii'; write_volume(ph.image, nii)                 # uncompressed NIfTI
    nrrd_gz = base / 'image.nrrd'; write_volume(ph.image, nrrd_gz)         # gzip-encoded NRRD (write_volume compresses)
    nrrd_raw = base / 'raw.nrrd'; sitk.WriteImage(sitk.ReadImage(str(nrrd_gz)), str(nrrd_raw), False)
    niigz = base / 'image.nii.gz'; niigz.write_bytes(gzip.compress(nii.read_bytes(), mtime=0))
    b = dict(nii=nii, niigz=niigz, nrrd_raw=nrrd_raw, nrrd_gz=nrrd_gz, shape=ph.image.shape,
             dicom=[('dicom-phantom', _write_dicom_series(ph.image, base / 'dicom_phantom'))])
    if data_dir is not None:                 # three real CT slices, copied (the shared originals are never touched)
        real = base / 'dicom_real'; real.mkdir()
        for f in sorted((data_dir / 'abdomen_ct_dicom' / 'series').iterdir())[8:11]:
            shutil.copyfile(f, real / f.name)
        b['dicom'].insert(0, ('dicom-real', real))
    return b


def make_cases(root: pathlib.Path, bases: dict) -> list:
    "N_CASES corrupted files per format, deterministic."
    sources = dict(nii=[('nii', bases['nii'].read_bytes())], nrrd=[('nrrd-raw', bases['nrrd_raw'].read_bytes()),
                                                                 ('nrrd-gzip', bases['nrrd_gz'].read_bytes())])
    dicom_bases = bases['dicom']
    cases = []
    for fmt in ('nii', 'nii.gz', 'nrrd', 'dicom'):
        rng = np.random.default_rng({'nii': 1, 'nii.gz': 2, 'nrrd': 3, 'dicom': 4}[fmt])
        d = root / fmt.replace('.', '_'); d.mkdir()
        for i in range(N_CASES):
            if fmt == 'nii':
                (variant, data), = sources['nii']
                out, how = corrupt(data, 'nii', rng); path = d / f'case{i:03d}.nii'; path.write_bytes(out)
            elif fmt == 'nii.gz':
                raw = sources['nii'][0][1]
                path = d / f'case{i:03d}.nii.gz'
                if i % 2 == 0:       # a valid gzip stream around a corrupt NIfTI (the header is parsed, sizes trusted)
                    variant = 'inner'; out, how = corrupt(raw, 'nii', rng); path.write_bytes(gzip.compress(out, mtime=0))
                else:                # a corrupt gzip stream
                    variant = 'outer'; out, how = corrupt(gzip.compress(raw, mtime=0), 'gz', rng); path.write_bytes(out)
            elif fmt == 'nrrd':
                variant, data = sources['nrrd'][i % 2]
                out, how = corrupt(data, 'nrrd', rng); path = d / f'case{i:03d}.nrrd'; path.write_bytes(out)
            else:
                variant, src = dicom_bases[i % len(dicom_bases)]
                files = sorted(src.iterdir())
                victim = files[int(rng.integers(len(files)))]
                path = d / f'case{i:03d}'; path.mkdir()
                for f in files:
                    if f != victim: os.link(f, path / f.name)          # unchanged slices: hard links, no copies
                out, how = corrupt(victim.read_bytes(), 'dicom', rng); (path / victim.name).write_bytes(out)
                how['file'] = victim.name
            cases.append(Case(path=str(path), fmt=fmt, variant=variant, case=i, how=how,
                              size=sum(f.stat().st_size for f in path.iterdir()) if path.is_dir() else path.stat().st_size))
    return cases


# ---------------------------------------------------------------- the random matrix

@pytest.fixture(scope='module')
def bases(tmp_path_factory):
    return make_bases(tmp_path_factory.mktemp('hostile_base'), shared_data_dir())


@pytest.fixture(scope='module')
def outcomes(tmp_path_factory, bases):
    root = tmp_path_factory.mktemp('hostile')
    cases = make_cases(root, bases)
    controls = [bases['nii'], bases['niigz'], bases['nrrd_raw'], bases['nrrd_gz']] + [d for _, d in bases['dicom']]
    for p in controls:      # the uncorrupted originals, read by the same workers: the harness itself works
        cases.append(Case(path=str(p), fmt='control', variant=p.name, case=-1, how=dict(kind='none'), size=0))
    t0 = time.perf_counter()
    res = read_all([c['path'] for c in cases])
    for c in cases: c['result'] = res[c['path']]
    summary = {}
    for c in cases:
        key = (c['fmt'], c['variant'], c['how']['kind'], c['result']['outcome'])
        summary[key] = summary.get(key, 0) + 1
    print(f"\nread {len(cases)} files in {time.perf_counter() - t0:.1f} s (format, variant, corruption, outcome: count)")
    for k in sorted(summary): print('  ', *k, summary[k])
    return cases


def _show(cases):
    return '\n'.join(f"{c['fmt']}/{c['variant']} case {c['case']} {c['how']}: "
                     + json.dumps({k: v for k, v in c['result'].items() if k not in ('path',)})[:1200] for c in cases)


def test_controls_read_back(outcomes, bases):
    controls = [c for c in outcomes if c['fmt'] == 'control']
    assert controls and all(c['result']['outcome'] == 'ok' for c in controls), _show(controls)
    assert [c['result']['shape'] for c in controls[:4]] == [list(bases['shape'])] * 4


def test_every_format_has_its_cases(outcomes):
    by = {}
    for c in outcomes: by[c['fmt']] = by.get(c['fmt'], 0) + 1
    assert {k: v for k, v in by.items() if k != 'control'} == dict.fromkeys(('nii', 'nii.gz', 'nrrd', 'dicom'), N_CASES)
    kinds = {(c['fmt'], c['how']['kind']) for c in outcomes if c['fmt'] != 'control'}
    assert len(kinds) == 12                                  # every corruption on every format
    for fmt in ('nii', 'nii.gz', 'nrrd'):                   # the corruptions bite: refusals as well as readable results
        got = {c['result']['outcome'] for c in outcomes if c['fmt'] == fmt}
        assert {'ok', 'error'} <= got, (fmt, got)


def test_no_crash_or_hang(outcomes):
    bad = [c for c in outcomes if c['result']['outcome'] in ('crash', 'hang')]
    assert not bad, _show(bad)


def test_no_unexpected_exception_or_invalid_volume(outcomes):
    bad = [c for c in outcomes if c['result']['outcome'] in ('unexpected', 'invalid')]
    assert not bad, _show(bad)


def test_errors_are_one_line_naming_the_file(outcomes):
    errs = [c for c in outcomes if c['result']['outcome'] == 'error']
    bad = [c for c in errs if '\n' in c['result']['message'] or not c['result']['message'].strip()
           or pathlib.Path(c['path']).name not in c['result']['message']]
    assert not bad, _show(bad)


def _blowup(c) -> bool:
    r = c['result']
    return r.get('alloc', 0) > max(64 << 20, MAX_INFLATION * c['size']) or 'allocate' in r.get('message', '')


def test_no_allocation_blowup(outcomes):
    "The reader never allocates far more than the file could hold (a 10 kB file must not cost gigabytes)."
    bad = [c for c in outcomes if _blowup(c)]
    assert not bad, _show(bad)


# ---------------------------------------------------------------- generated reproducers
# Minimal files, built from the valid bases, for what the random matrix found (and targeted hostile headers).
# Each must be refused: a clean one-line error, no allocation beyond what the file can hold, no hang, no crash.
# Each entry's third field says what the library used to do with it, before io._check_payload and the DICOM
# series checks refused it.

def _gzip_body_flip_that_decodes(body: bytes) -> bytes:
    "A one-bit flip in a gzip member after which it inflates to a complete but longer stream (a CRC mismatch)."
    good = gzip.decompress(body)
    for off in range(10 + (len(body) - 18) // 3, len(body) - 8):
        for bit in range(8):
            b = bytearray(body); b[off] ^= 1 << bit
            d = zlib.decompressobj(-15)                 # raw deflate after the 10-byte gzip header
            try: out = d.decompress(bytes(b[10:]))
            except zlib.error: continue
            if d.eof and len(out) > len(good): return bytes(b)
    raise AssertionError('no such flip found')


def _nii_dims(raw: bytes, dims) -> bytes:
    b = bytearray(raw); struct.pack_into('<4h', b, 40, 3, *dims)
    return bytes(b)


def _r_nii_cut_tail(d, b):
    raw = b['nii'].read_bytes(); p = d / 'cut_tail.nii'; p.write_bytes(raw[:-100]); return p

def _r_niigz_stream_cut(d, b):
    z = b['niigz'].read_bytes(); p = d / 'stream_cut.nii.gz'; p.write_bytes(z[:int(len(z) * 0.6)]); return p

def _r_niigz_short_payload(d, b):
    raw = b['nii'].read_bytes(); p = d / 'short_payload.nii.gz'
    p.write_bytes(gzip.compress(raw[:int(len(raw) * 0.6)], mtime=0)); return p

def _r_niigz_claims_2gb(d, b):
    raw = _nii_dims(b['nii'].read_bytes(), (1024, 1024, 1000))          # int16: 2 GiB claimed by a ~7 kB file
    p = d / 'claims_2gb.nii.gz'; p.write_bytes(gzip.compress(raw, mtime=0)); return p

def _r_niigz_claims_80mb(d, b):
    raw = _nii_dims(b['nii'].read_bytes(), (512, 512, 160))             # 80 MiB: within the worker's limit
    p = d / 'claims_80mb.nii.gz'; p.write_bytes(gzip.compress(raw, mtime=0)); return p

def _r_nrrd_gzip_claims_2gb(d, b):
    raw = b['nrrd_gz'].read_bytes(); k = raw.index(b'\n\n')
    head = re.sub(rb'sizes: [0-9 ]+', b'sizes: 1024 1024 1000', raw[:k])
    p = d / 'claims_2gb.nrrd'; p.write_bytes(head + raw[k:]); return p

def _r_nrrd_gzip_bad_crc(d, b):
    raw = b['nrrd_gz'].read_bytes(); k = raw.index(b'\n\n') + 2
    p = d / 'bad_crc.nrrd'; p.write_bytes(raw[:k] + _gzip_body_flip_that_decodes(raw[k:])); return p

def _r_dicom_missing_slice(d, b):
    src = dict(b['dicom'])['dicom-phantom']; p = d / 'dicom_missing_slice'; p.mkdir()
    files = sorted(src.iterdir())
    for i, f in enumerate(files):
        data = f.read_bytes()
        (p / f.name).write_bytes(data[:len(data) // 2] if i == len(files) // 2 else data)   # a middle slice cut
    return p

def _nhdr(d, name, data_file, sizes):
    p = d / name
    p.write_text(f'NRRD0004\ntype: short\ndimension: 3\nsizes: {sizes}\nencoding: raw\nendian: little\n'
                 f'data file: {data_file}\n\n')
    return p

def _r_nhdr_data_file_fifo(d, b):
    fifo = d / 'voxels.fifo'; os.mkfifo(fifo)                            # nobody ever writes to it
    return _nhdr(d, 'fifo.nhdr', fifo, '32 28 6')

def _r_nrrd_data_file_dev_zero(d, b):
    return _nhdr(d, 'dev_zero.nrrd', '/dev/zero', '1024 1024 512')        # 1 GiB of zeros from a 130-byte file


_FIX_GZ = ("io._read_checked: for a gzip payload (.nii.gz; NRRD 'encoding: gzip'), stream-inflate it in Python "
           "(zlib, bounded chunks) before reader.Execute(), verifying CRC and that it holds vox_offset/header + "
           "n*itemsize bytes; refuse at once when n*itemsize > ~1032 x the compressed size")
REPRODUCERS = [
    ('nii cut inside the last voxels', _r_nii_cut_tail,
     "io._read_checked: the truncation check compares n*itemsize with the file size, ignoring the 352-byte "
     "header (vox_offset); ITK then fills the missing voxels silently"),
    ('nii.gz stream cut', _r_niigz_stream_cut, "ITK reads a truncated gzip stream without error; " + _FIX_GZ),
    ('nii.gz with a short payload', _r_niigz_short_payload, "ITK zero-fills the missing voxels; " + _FIX_GZ),
    ('nii.gz header claims 2 GiB', _r_niigz_claims_2gb,
     "a 7 kB file makes ITK allocate 2 GiB (up to 8 GiB with a float64 datatype; MAX_VOXELS counts voxels, "
     "not bytes) before it finds the payload short; " + _FIX_GZ),
    ('nii.gz header claims 80 MiB', _r_niigz_claims_80mb,
     "read as a valid 512x512x160 volume of zeros (3 copies in memory) from a 7 kB file; " + _FIX_GZ),
    ('gzip NRRD header claims 2 GiB', _r_nrrd_gzip_claims_2gb, "allocates 2 GiB before failing; " + _FIX_GZ),
    ('gzip NRRD with a CRC mismatch', _r_nrrd_gzip_bad_crc,
     "NrrdIO stops inflating at the expected length and never checks the gzip CRC or length: corrupt voxels read "
     "silently; "
     + _FIX_GZ),
    ('DICOM series with a cut slice', _r_dicom_missing_slice,
     "GDCM leaves an unreadable file out of the series silently: one slice fewer, geometry still 'valid'; "
     "io._read_dicom_series should refuse when a DICOM file (DICM magic) in the folder belongs to no series, "
     "and when the slice positions are not evenly spaced (missing slices)"),
    ('NRRD whose data file is a FIFO', _r_nhdr_data_file_fifo,
     "hangs forever on open(); io._read_checked should refuse a detached data file ('data file:' in NRRD, "
     "ElementDataFile in MHD) that is not a regular file, and apply the size check to it"),
    ('NRRD whose data file is /dev/zero', _r_nrrd_data_file_dev_zero,
     "reads 1 GiB from /dev/zero; under the worker's memory limit numpy's MemoryError escapes read_volume "
     "(volume_from_sitk is outside its try); refuse non-regular data files and turn MemoryError into InputError"),
]


@pytest.fixture(scope='module')
def reproduced(tmp_path_factory, bases):
    d = tmp_path_factory.mktemp('repro')
    paths = {name: make(d, bases) for name, make, _ in REPRODUCERS}
    res = read_all(list(paths.values()), per_file_s=4.)
    return {name: (str(p), res[str(p)]) for name, p in paths.items()}


def _refused(path, r) -> str:
    "Empty if `r` is a clean, cheap refusal; else what is wrong."
    if r['outcome'] != 'error': return f"outcome {r['outcome']}: {json.dumps(r)[:600]}"
    if '\n' in r['message'] or pathlib.Path(path).name not in r['message']: return f"message: {r['message']!r}"
    c = dict(size=sum(f.stat().st_size for f in pathlib.Path(path).iterdir()) if pathlib.Path(path).is_dir()
             else pathlib.Path(path).stat().st_size, result=r)
    if _blowup(c): return f"allocated {r['alloc']} bytes for a {c['size']}-byte file: {r['message']}"
    return ''


@pytest.mark.parametrize('name', [name for name, _, why in REPRODUCERS])
def test_reproducer_is_refused(reproduced, name):
    path, r = reproduced[name]
    problem = _refused(path, r)
    assert not problem, problem


def test_reproducers_never_crash(reproduced):
    "Whatever the library does with them today, none of the reproducers kills the reading process."
    bad = {n: r for n, (p, r) in reproduced.items() if r['outcome'] == 'crash'}
    assert not bad, bad
