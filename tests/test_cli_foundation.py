"Foundation checks through the installed console script, on the shared real CT."
import json
import numpy as np
import pytest
from flow2mask_nb.io import read_volume, read_labels


def test_info_dicom_series(cli, data_dir):
    code, out, err = cli('info', data_dir / 'abdomen_ct_dicom' / 'series')
    assert code == 0, err
    assert '512 x 512 x 20 voxels' in out
    assert '0.9766 x 0.9766 x 2 mm' in out
    code, out, _ = cli('info', data_dir / 'abdomen_ct_dicom' / 'series', '--json')
    d = json.loads(out)
    assert d['shape'] == [512, 512, 20] and d['slice_axis'] == 2
    np.testing.assert_allclose(d['spacing_mm'], [0.977, 0.977, 2.0], atol=1e-3)
    assert d['min'] <= -1000 and d['max'] > 1000          # rescaled to Hounsfield units


def test_info_missing_file_is_one_line_exit_2(cli, tmp_path):
    code, out, err = cli('info', tmp_path / 'missing.nii.gz')
    assert code == 2 and out == ''
    assert err.count('\n') == 1 and 'no such file' in err and 'Traceback' not in err


def test_info_unsupported_and_unreadable(cli, tmp_path):
    (tmp_path / 'notes.txt').write_text('hello')
    (tmp_path / 'broken.nii.gz').write_bytes(b'\x1f\x8b not really gzip')
    for path, words in ((tmp_path / 'notes.txt', 'unsupported format'), (tmp_path / 'broken.nii.gz', 'cannot be read')):
        code, _, err = cli('info', path)
        assert code == 2 and err.count('\n') == 1 and words in err, err


def test_evaluate_against_itself(cli, data_dir):
    labels = data_dir / 'abdomen_ct' / 'labels.nii.gz'
    code, out, err = cli('evaluate', labels, labels, '--labels', '1,5', '--json')
    assert code == 0, err
    rows = json.loads(out)
    assert [r['dice'] for r in rows] == [1.0, 1.0, 1.0]    # spleen, liver, mean
    assert all(r['hd95_mm'] == 0 for r in rows)


def test_dicom_labels_need_physical_mapping(data_dir):
    image = read_volume(data_dir / 'abdomen_ct_dicom' / 'series')
    labels = read_labels(data_dir / 'abdomen_ct_dicom' / 'labels.nii.gz', image)
    raw = read_volume(data_dir / 'abdomen_ct_dicom' / 'labels.nii.gz')
    liver_hu = image.array[labels.array == 5].mean()
    raw_hu = image.array[raw.array == 5].mean()       # the trap: raw arrays put the liver on fat
    assert liver_hu > 50, liver_hu
    assert raw_hu < 0, raw_hu
    assert labels.same_grid(image) and labels.array.dtype == np.uint8


@pytest.mark.slow
def test_written_labels_keep_geometry(cli, data_dir, tmp_path):
    from flow2mask_nb.io import write_volume
    image = read_volume(data_dir / 'abdomen_ct_dicom' / 'series')
    labels = read_labels(data_dir / 'abdomen_ct_dicom' / 'labels.nii.gz', image)
    out = write_volume(labels, tmp_path / 'mapped.nii.gz', labels=True)
    back = read_volume(out)
    assert back.same_grid(image)                      # spacing, origin and direction of the DICOM series
    np.testing.assert_allclose(back.origin, image.origin, atol=1e-3)
    np.testing.assert_array_equal(back.array, labels.array)
    code, out_text, err = cli('evaluate', out, tmp_path / 'mapped.nii.gz')
    assert code == 0 and 'mean' in out_text


def test_propagate_fills_a_marked_extent_exactly(cli, tmp_path):
    "`--extent LABEL:FIRST-LAST` fills exactly those slices (no automatic stop) and says which axis the seed chose."
    import numpy as np
    from flow2mask_nb.io import read_volume, write_volume
    from flow2mask_nb.metrics import oracle_seed
    from flow2mask_nb.phantom import make_phantom
    ph = make_phantom(n_slices=30, size=(40, 40), n_organs=2, seed=4)
    l = ph.organ_ids[0]
    z = np.nonzero((ph.labels.array == l).any((0, 1)))[0]
    first, last = int(z[0]) + 2, int(z[-1]) - 2
    img = write_volume(ph.image, tmp_path / 'img.nii.gz')
    seed = write_volume(ph.labels.with_array(oracle_seed(np.where(ph.labels.array == l, l, 0), [l], axis=2)),
                        tmp_path / 'seed.nii.gz', labels=True)
    code, out, err = cli('propagate', img, '--seed', seed, '-o', tmp_path / 'o.nii.gz', '--flow-source', 'tvl1',
                         '--extent', f'{l}:{first}-{last}', '-q')
    assert code == 0, err
    got = np.nonzero((read_volume(tmp_path / 'o.nii.gz').array == l).any((0, 1)))[0]
    assert (got[0], got[-1]) == (first, last), (got, first, last, out)
    assert 'the seed is drawn across it' in out and f"you marked the structure's end slice" in out, out
    code, _, err = cli('propagate', img, '--seed', seed, '-o', tmp_path / 'o2.nii.gz', '--extent', f'{l}:9-3', '-q')
    assert code == 2 and 'FIRST <= LAST' in err


@pytest.mark.slow
def test_propagate_exports_dicom_seg_and_slicer_segmentation(cli, data_dir, tmp_path):
    "The DICOM series propagated to a DICOM SEG and a seg.nrrd: read back (highdicom, slicerio) with names, colours, voxels."
    pytest.importorskip('highdicom', reason='DICOM SEG export needs the [export] extra')
    slicerio = pytest.importorskip('slicerio', reason='reading seg.nrrd back needs the [export] extra')
    from flow2mask_nb.io import write_volume
    from flow2mask_nb.metrics import oracle_seed
    from flow2mask_nb.segments import read_dicom_seg, read_structures, label_colour
    series = data_dir / 'abdomen_ct_dicom' / 'series'
    image = read_volume(series)
    labels = read_labels(data_dir / 'abdomen_ct_dicom' / 'labels.nii.gz', image)
    seed = write_volume(labels.with_array(oracle_seed(labels.array, [5], axis=2)), tmp_path / 'seed.nii.gz', labels=True)
    flows = tmp_path / 'flows.safetensors'                                 # estimated once for both formats
    code, out, err = cli('flows', series, '-o', flows, '--flow-source', 'tvl1', '-q')
    assert code == 0, err
    outs = {}
    for name in ('liver.dcm', 'liver.seg.nrrd'):
        code, out, err = cli('propagate', series, '--seed', seed, '-o', tmp_path / name, '--names', '5=liver',
                             '--flows', flows, '-q')
        assert code == 0, err
        outs[name] = out
    assert 'StudyInstanceUID' in outs['liver.dcm'], outs['liver.dcm']      # the anonymised series: said, not hidden
    seg, named = read_dicom_seg(tmp_path / 'liver.dcm', series)
    nrrd = read_volume(tmp_path / 'liver.seg.nrrd')
    assert [(s.value, s.name) for s in named] == [(5, 'liver')] == [(s.value, s.name) for s in read_structures(nrrd.path)]
    np.testing.assert_allclose(named[0].colour, label_colour(5), atol=0.01)   # 8-bit CIELab in DICOM
    np.testing.assert_array_equal(seg.array, nrrd.array)
    assert nrrd.same_grid(image) and (seg.array == 5).sum() > 10_000
    back = slicerio.read_segmentation(str(tmp_path / 'liver.seg.nrrd'))
    assert [(s['labelValue'], s['name']) for s in back['segments']] == [(5, 'liver')]
    np.testing.assert_allclose(back['segments'][0]['color'], label_colour(5), atol=1e-5)
    code, out, err = cli('propagate', data_dir / 'abdomen_ct' / 'ct.nii.gz', '--seed', seed, '-o', tmp_path / 'x.dcm')
    assert code == 2 and 'save as .seg.nrrd' in err, err                   # refused before any work
