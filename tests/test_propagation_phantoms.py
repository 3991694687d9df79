"""Propagation on phantoms built for its hard cases: a thin structure, a structure that fades out, a bias field.

Each runs the default pipeline (flows fitted on the phantom, automatic stop) from one seed on the structure's
largest slice; the phantoms come from `flow2mask_nb.phantom.structure_phantom` (the structure spans slices 8-31).
"""
import numpy as np
import pytest
from flow2mask_nb.metrics import dice, oracle_seed
from flow2mask_nb.phantom import structure_phantom
from flow2mask_nb.pipeline import annotate
from flow2mask_nb.propagate import StopRule


def run(kind, **kw):
    ph = structure_phantom(kind)
    truth = ph.labels.array
    ann = annotate(ph.image, ph.labels.with_array(oracle_seed(truth, [1], axis=2)), **kw)
    z = np.nonzero(ann.labels.array.any((0, 1)))[0]
    return ann, dice(ann.labels.array == 1, truth == 1), (int(z[0]), int(z[-1])) if len(z) else None


def test_two_pixel_wide_tube_survives():
    "A structure two pixels wide over 24 slices is neither erased by the refinement nor lost by the stop."
    ann, d, extent = run('tube')
    assert d >= 0.8, (d, extent, ann.propagation.stops)
    assert extent[1] - extent[0] >= 20


def test_fading_structure_stops_near_its_end():
    "Contrast fading to a fifth of the seed's over the last slices: stop within two slices of the true end (31)."
    ann, d, extent = run('fade')
    assert abs(extent[1] - 31) <= 2 and abs(extent[0] - 8) <= 2, (extent, ann.propagation.stops)
    _, d_never, extent_never = run('fade', stop=StopRule(min_pixels=1, area_fraction=None, support_fraction=None,
                                                         separation_fraction=None, faint_separation_fraction=None),
                                   refine=None, flows=ann.flows)
    assert d >= 0.85, d
    assert extent_never[1] > 35                    # the flows alone carry the mask on towards the volume's end


def test_bias_field_keeps_the_extent():
    "A bias field brightening the image by half along the slices does not cut the structure short."
    ann, d, extent = run('bias')
    assert abs(extent[0] - 8) <= 2 and abs(extent[1] - 31) <= 2, (extent, ann.propagation.stops)
    assert d >= 0.85
