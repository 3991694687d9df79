"""The bad-input matrix: every case exits 2 with one line naming the problem, and inputs are never modified."""
import hashlib, pathlib, struct
import numpy as np
import pytest
import SimpleITK as sitk
from flow2mask_nb.cli import main
from flow2mask_nb.io import Volume, write_volume


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('bad')
    rng = np.random.default_rng(0)
    img = Volume(rng.integers(-1000, 400, (24, 20, 6)).astype(np.int16), (1.5, 1.5, 3), (10, -20, 5))
    seed = np.zeros(img.shape, np.uint8); seed[8:14, 6:12, 3] = 1
    f = dict(d=d, image=write_volume(img, d / 'image.nii.gz'),
             seed=write_volume(img.with_array(seed), d / 'seed.nii.gz', labels=True),
             empty_seed=write_volume(img.with_array(np.zeros_like(seed)), d / 'empty.nii.gz', labels=True))
    far = Volume(seed, img.spacing, (900, 900, 900)); f['far_seed'] = write_volume(far, d / 'far.nii.gz', labels=True)
    big = img.with_array(seed.astype(np.int32) * 70000); f['big_seed'] = write_volume(big, d / 'big.nii.gz')
    nan = img.with_array(img.array.astype(np.float32)); nan.array[0, 0, 0] = np.nan
    f['nan'] = write_volume(nan, d / 'nan.nrrd')
    f['nan_nifti'] = write_volume(nan, d / 'nan.nii.gz')   # ITK alone would read NaN as 0 here
    f['constant'] = write_volume(img.with_array(np.full(img.shape, 50, np.int16)), d / 'constant.nii.gz')
    one = Volume(img.array[:, :, :1], img.spacing); f['one_slice'] = write_volume(one, d / 'one.nii.gz')
    f['one_seed'] = write_volume(one.with_array(seed[:, :, 3:4]), d / 'one_seed.nii.gz', labels=True)
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((20, 24), np.int16)), str(d / 'flat.nii.gz'))
    vol3 = sitk.GetImageFromArray(np.zeros((3, 20, 24), np.int16))
    sitk.WriteImage(sitk.JoinSeries([vol3, vol3]), str(d / 'four.nii.gz'))   # a time series
    (d / 'notes.txt').write_text('not an image')
    (d / 'text.nii').write_text('not an image either, but named like one')
    (d / 'zero.nii.gz').write_bytes(b'')
    raw = (d / 'raw.nii'); write_volume(img, raw); b = raw.read_bytes(); (d / 'cut.nii').write_bytes(b[:len(b) // 3])
    (d / 'emptydir').mkdir()
    f['inputs'] = [p for p in d.iterdir() if p.is_file()]
    return f


def digest(paths):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


CASES = [
    ('missing image', lambda f: ['info', f['d'] / 'nope.nii.gz'], 'no such file'),
    ('missing seed', lambda f: ['propagate', f['image'], '--seed', f['d'] / 'nope.nii.gz', '-o', f['d'] / 'o.nii.gz'], 'no such file'),
    ('truncated file', lambda f: ['info', f['d'] / 'cut.nii'], 'truncated'),
    ('empty file', lambda f: ['info', f['d'] / 'zero.nii.gz'], 'cannot be read'),
    ('not an image', lambda f: ['info', f['d'] / 'text.nii'], 'cannot be read'),
    ('unsupported format', lambda f: ['info', f['d'] / 'notes.txt'], 'unsupported format'),
    ('2D image', lambda f: ['info', f['d'] / 'flat.nii.gz'], 'expected a 3D image'),
    ('4D image', lambda f: ['info', f['d'] / 'four.nii.gz'], 'expected a 3D image'),
    ('folder without DICOM', lambda f: ['info', f['d'] / 'emptydir'], 'no DICOM series'),
    ('empty seed', lambda f: ['propagate', f['image'], '--seed', f['empty_seed'], '-o', f['d'] / 'o.nii.gz'], 'seed is empty'),
    ('seed that cannot be mapped', lambda f: ['propagate', f['image'], '--seed', f['far_seed'], '-o', f['d'] / 'o.nii.gz'], 'do not overlap'),
    ('label values beyond uint16', lambda f: ['propagate', f['image'], '--seed', f['big_seed'], '-o', f['d'] / 'o.nii.gz'], '0..65535'),
    ('NaN voxels', lambda f: ['propagate', f['nan'], '--seed', f['seed'], '-o', f['d'] / 'o.nii.gz'], 'NaN'),
    ('NaN voxels in NIfTI', lambda f: ['info', f['nan_nifti']], 'NaN or infinite'),
    ('constant volume', lambda f: ['propagate', f['constant'], '--seed', f['seed'], '-o', f['d'] / 'o.nii.gz'], 'no contrast'),
    ('one slice', lambda f: ['propagate', f['one_slice'], '--seed', f['one_seed'], '-o', f['d'] / 'o.nii.gz'], 'at least 2'),
    ('output equal to an input', lambda f: ['propagate', f['image'], '--seed', f['seed'], '-o', f['seed']], 'overwrite an input'),
    ('missing output folder', lambda f: ['propagate', f['image'], '--seed', f['seed'], '-o', f['d'] / 'no' / 'o.nii.gz'], 'does not exist'),
    ('output is a folder', lambda f: ['propagate', f['image'], '--seed', f['seed'], '-o', f['d'] / 'emptydir'], 'is a folder'),
    ('unsupported output format', lambda f: ['propagate', f['image'], '--seed', f['seed'], '-o', f['d'] / 'o.png'], 'cannot write format'),
    ('bad axis', lambda f: ['propagate', f['image'], '--seed', f['seed'], '-o', f['d'] / 'o.nii.gz', '--axis', '5'], 'slice axis'),
    ('conflicting options', lambda f: ['propagate', f['image'], '--seed', f['seed'], '-o', f['d'] / 'o.nii.gz', '--budget', '5', '--fit-steps', '3'], 'not allowed with'),
    ('label not in the seed', lambda f: ['propagate', f['image'], '--seed', f['seed'], '-o', f['d'] / 'o.nii.gz', '--labels', '7'], 'not drawn'),
    ('bad label list', lambda f: ['evaluate', f['seed'], f['seed'], '--labels', 'liver'], 'comma-separated'),
    ('bad range', lambda f: ['suggest', f['image'], '--range', '5:2'], 'z0 <= z1'),
    ('negative budget', lambda f: ['propagate', f['image'], '--seed', f['seed'], '-o', f['d'] / 'o.nii.gz', '--budget', '-1'], 'budget'),
    ('zero fit steps', lambda f: ['propagate', f['image'], '--seed', f['seed'], '-o', f['d'] / 'o.nii.gz', '--fit-steps', '0'], 'fit-steps'),
    ('tiny working size', lambda f: ['propagate', f['image'], '--seed', f['seed'], '-o', f['d'] / 'o.nii.gz', '--size', '2'], 'size'),
    ('unknown device', lambda f: ['propagate', f['image'], '--seed', f['seed'], '-o', f['d'] / 'o.nii.gz', '--device', 'tpu'], 'device'),
    ('unknown subcommand', lambda f: ['frobnicate'], 'invalid choice'),
]


@pytest.mark.parametrize('name,argv,words', CASES, ids=[c[0] for c in CASES])
def test_bad_input(files, capsys, name, argv, words):
    before = digest(files['inputs'])
    code = main([str(a) for a in argv(files)])
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    assert err.count('\n') == 1 and err.startswith('flow2mask: error:'), err
    assert words in err, err
    assert 'Traceback' not in err
    assert digest(files['inputs']) == before                     # nothing modified
    assert not (files['d'] / 'o.nii.gz').exists()                # nothing half-written


def test_cuda_requested_without_cuda(files, capsys):
    import torch
    if torch.cuda.is_available(): pytest.skip('this machine has CUDA')
    code = main([str(a) for a in ['propagate', files['image'], '--seed', files['seed'], '-o', files['d'] / 'o.nii.gz',
                                  '--device', 'cuda', '-q']])
    err = capsys.readouterr().err
    assert code == 2 and err.count('\n') == 1 and 'CUDA is not available' in err, err
    assert not (files['d'] / 'o.nii.gz').exists()
