"""Propagation on phantoms built for its hard cases: a thin structure, a structure that fades out, a bias field.

Each runs the default pipeline (flows fitted on the phantom, automatic stop) from one seed on the structure's
largest slice; the phantoms come from `flow2mask_nb.phantom.structure_phantom` (the structure spans slices 8-31).
"""
import numpy as np
import pytest
from flow2mask_nb.metrics import dice, oracle_seed
from flow2mask_nb.phantom import structure_phantom
from flow2mask_nb.session import annotate
from flow2mask_nb.stop import StopRule


def run(kind, **kw):
    ph = structure_phantom(kind)
    truth = ph.labels.array
    ann = annotate(ph.image, ph.labels.with_array(oracle_seed(truth, [1], axis=2)), **kw)
    z = np.nonzero(ann.labels.array.any((0, 1)))[0]
    return ann, dice(ann.labels.array == 1, truth == 1), (int(z[0]), int(z[-1])) if len(z) else None


@pytest.mark.slow
def test_two_pixel_wide_tube_survives():
    "A structure two pixels wide over 24 slices is neither erased by the refinement nor lost by the stop."
    ann, d, extent = run('tube')
    assert d >= 0.8, (d, extent, ann.propagation.stops)
    assert extent[1] - extent[0] >= 20


@pytest.mark.slow
def test_fading_structure_stops_near_its_end():
    "Contrast fading to a fifth of the seed's over the last slices: stop within two slices of the true end (31)."
    ann, d, extent = run('fade')
    assert abs(extent[1] - 31) <= 2 and abs(extent[0] - 8) <= 2, (extent, ann.propagation.stops)
    _, d_never, extent_never = run('fade', stop=StopRule(min_pixels=1, area_fraction=None, support_fraction=None,
                                                         separation_fraction=None, faint_separation_fraction=None,
                                                         agreement=None),
                                   refine=None, flows=ann.flows)
    assert d >= 0.85, d
    assert extent_never[1] > 35                    # the flows alone carry the mask on towards the volume's end


@pytest.mark.slow
def test_bias_field_keeps_the_extent():
    "A bias field brightening the image by half along the slices does not cut the structure short."
    ann, d, extent = run('bias')
    assert abs(extent[0] - 8) <= 2 and abs(extent[1] - 31) <= 2, (extent, ann.propagation.stops)
    assert d >= 0.85


def windowed_crop(ph, faint_slice: int, drop: float = 65.):
    "The phantom as a CT crop exported through a 0-255 display window (air and bone clipped), one slice made faint."
    from flow2mask_nb.io import Volume
    hu = ph.image.array.astype(np.float32).copy()
    inside = ph.labels.array == 1
    hu[..., faint_slice][inside[..., faint_slice]] -= drop         # the structure hardly stands out there
    hu[:4] = -1000.; hu[-3:, :12] = 1200.                         # a band of air and a little bone, clipped by the window
    return Volume(np.clip((hu + 160) / 400 * 255, 0, 255).round().astype(np.int16), ph.image.spacing, ph.image.origin,
                  ph.image.direction)


def test_structure_on_every_slice_of_a_short_crop_is_kept():
    "A lesion on all 13 slices of a windowed 0-255 crop, one slice of it faint: kept on every slice, the faint one in doubt."
    ph = structure_phantom('disc', n_slices=13, extent=13, start=0)
    image = windowed_crop(ph, faint_slice=3)
    drawn = np.zeros_like(ph.labels.array); drawn[..., 6] = ph.labels.array[..., 6]     # drawn on the middle slice
    seed = ph.labels.with_array(drawn)
    ann = annotate(image, seed)
    assert ann.info['intensity']['rule'].startswith('already windowed') and ann.info['intensity']['modality'] == 'ct'
    z = np.nonzero(ann.labels.array.any((0, 1)))[0]
    assert (z[0], z[-1]) == (0, 12), (z, ann.propagation.stops)
    assert any(3 in s.get('doubt', []) for s in ann.propagation.stops), ann.propagation.stops
    assert dice(ann.labels.array == 1, ph.labels.array == 1) > 0.85
    # the same with a stop at the first failing slice (the rule before patience) ends it at the faint slice
    hasty = annotate(image, seed, stop=StopRule(patience=1), flows=ann.flows)
    assert hasty.labels.array[..., :4].sum() == 0, hasty.propagation.stops


@pytest.mark.slow
def test_seed_drawn_on_axial_slices_sets_the_slice_axis():
    "Pixels coarser than the slices (3.9 x 3.9 x 2.5 mm): a seed drawn on one axial slice propagates along that axis."
    from flow2mask_nb.io import Volume
    ph = structure_phantom('disc', n_slices=24, extent=12, start=6)
    image = Volume(ph.image.array, (3.9, 3.9, 2.5), ph.image.origin, ph.image.direction)
    truth = ph.labels.array
    ann = annotate(image, image.with_array(oracle_seed(truth, [1], axis=2)))
    assert ann.info['axis'] == 2 and ann.info['axis_rule'] == 'the seed is drawn across it', ann.info
    assert dice(ann.labels.array == 1, truth == 1) > 0.8
