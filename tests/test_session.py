"""The correction loop as an annotator meets it: a corrected slice lifts its neighbours, and the finer flows fitted
for one structure never serve another one drawn elsewhere with the same label value."""
import numpy as np
import pytest
import torch
from scipy import ndimage
from flow2mask_nb.io import Volume
from flow2mask_nb.metrics import dice, per_slice_dice
from flow2mask_nb.flows import Flows
from flow2mask_nb.phantom import make_phantom, structure_phantom
from flow2mask_nb.session import Session


def test_a_correction_lifts_the_slices_around_it():
    "One corrected slice, 6 slices from the drawn one: the slices around it get better (flows that see no motion)."
    ph = make_phantom(n_slices=30, size=(64, 64), n_organs=2, seed=5)
    truth = np.moveaxis(ph.labels.array, 2, 0) == ph.organ_ids[0]
    still = torch.zeros(29, 2, 64, 64)                 # flows that see no motion: only the anchors can place the mask
    session = Session(ph.image, 2, flows=Flows(still, still.clone()))
    l = ph.organ_ids[0]
    k = int(np.argmax(truth.sum((1, 2))))
    stack = np.zeros(truth.shape, np.uint8); stack[k][truth[k]] = l
    first, rev = session.propagate(stack)
    span = np.nonzero(truth.any((1, 2)))[0]
    c = k + 6 if k + 7 <= span[-1] else k - 6
    edited = first.copy(); edited[c][edited[c] == l] = 0; edited[c][truth[c]] = l
    second, _ = session.propagate(edited, rev)
    around = [j for j in range(c - 2, c + 3) if j != c and span[0] <= j <= span[-1]]      # two slices either side
    before, after = per_slice_dice(first == l, truth)[around], per_slice_dice(second == l, truth)[around]
    assert np.nanmean(after) > np.nanmean(before) + 0.05, (around, before, after)
    assert dice(second == l, truth) > dice(first == l, truth)


def two_small_lesions():
    "384 x 384 x 12: the phantom's small disc, and a second one of other intensity 120 pixels away, moving with it."
    ph = structure_phantom('disc', n_slices=12, size=(384, 384), extent=12, start=0, radius=7)
    image = ph.image.array.astype(np.float32).copy(); labels = ph.labels.array.copy()
    for z in range(image.shape[2]):
        second = ndimage.shift(labels[..., z].astype(float), (120, 120), order=0) > 0.5
        image[..., z][second] -= 60.                                  # darker than its surroundings, the first brighter
        labels[..., z][second] = 2
    return Volume(image, ph.image.spacing, ph.image.origin, ph.image.direction), np.moveaxis(labels, 2, 0)


@pytest.mark.slow
def test_finer_flows_follow_what_was_drawn_not_the_label_value():
    "A lesion drawn with label value 1 after another structure was annotated with value 1: as good as in a fresh session."
    image, truth = two_small_lesions()
    k = 6
    def draw(which):
        stack = np.zeros(truth.shape, np.uint8); stack[k][truth[k] == which] = 1     # always label value 1
        return stack
    fresh = Session(image, 2, fit_steps=40)
    alone, _ = fresh.propagate(draw(2))
    reused = Session(image, 2, fit_steps=40, flows=Flows(fresh.flows.forward, fresh.flows.backward))   # no finer ones
    reused.propagate(draw(1))                                          # the first lesion, value 1: finer flows around it
    assert len(reused.flows.local) == 1
    after, _ = reused.propagate(draw(2))                               # a new annotation of the second one, value 1
    assert len(reused.flows.local) == 2                                # its own finer flows, not the first lesion's
    target = truth == 2
    assert dice(alone == 1, target) > 0.8, dice(alone == 1, target)
    assert dice(after == 1, target) > dice(alone == 1, target) - 0.02, (dice(after == 1, target), dice(alone == 1, target))
