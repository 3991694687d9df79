"bench/label_borders.py: the facts it reports per structure, on volumes small enough to count by hand."
import pathlib, sys
import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / 'bench'))
from label_borders import intensity_auc, structure_facts


def test_intensity_auc():
    assert intensity_auc(np.array([3., 4.]), np.array([1., 2.])) == 1.0        # every voxel of a brighter
    assert intensity_auc(np.array([1., 2.]), np.array([3., 4.])) == 0.0
    assert intensity_auc(np.array([1., 2.]), np.array([1., 2.])) == 0.5        # ties count half


def test_structure_facts_by_hand():
    truth = np.zeros((4, 12, 12), np.uint8)
    truth[1:3, 1:10, 1:10] = 2                      # a 9 x 9 block on slices 1 and 2...
    truth[1:3, 3:8, 3:8] = 1                        # ...around a 5 x 5 square: 20 contact pixels per slice
    truth[0, 0, 0] = 3                              # a speck elsewhere, touching nothing
    image = np.where(truth == 1, 5., np.where(truth == 2, 1., 0.))
    f = structure_facts(image, truth, 1)
    assert f['slices'] == 2 and f['pixels_per_slice'] == 25 and f['pieces_per_slice'] == 1
    assert f['one_pixel_dice'] == pytest.approx(50 / 70)        # 25 pixels grow to 45: 2 * 25 / 70
    assert f['next_slice_dice'] == 1.0                           # the same square on both slices
    assert f['auc_against'] == {2: 1.0}                          # brighter than what surrounds it, every voxel
    assert structure_facts(image, truth, 2)['auc_against'] == {1: 0.0}
    speck = structure_facts(image, truth, 3)
    assert speck['auc_against'] == {} and np.isnan(speck['next_slice_dice'])   # one slice: nothing to compare
