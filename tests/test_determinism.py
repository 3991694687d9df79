"""Determinism on the CPU: the same inputs and seed give the same output, bit for bit, in fresh processes.

Two fresh interpreters (different PYTHONHASHSEED, so set/dict iteration order cannot hide behind a fixed hash seed)
each read the same image and seed files, annotate with the default per-volume fit (few steps, to keep it fast) and
write the label map. The written files must have the same sha256; so must the flows (a mask is thresholded, the
flows show any drift in the optimisation itself).
"""
import hashlib, json, os, subprocess, sys
import numpy as np
import pytest
from flow2mask_nb.io import write_volume
from flow2mask_nb.metrics import oracle_seed
from flow2mask_nb.phantom import make_phantom

FIT_STEPS = 6

CHILD = r"""
import hashlib, json, sys, torch
from flow2mask_nb.io import read_volume, read_labels, write_volume
from flow2mask_nb.session import annotate
image_path, seed_path, out_path, steps = sys.argv[1:5]
image = read_volume(image_path)
ann = annotate(image, read_labels(seed_path, image), flow_source='fit', fit_steps=int(steps), device='cpu')
write_volume(ann.labels, out_path, labels=True)
h = lambda t: hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()
print(json.dumps(dict(forward=h(ann.flows.forward), backward=h(ann.flows.backward), threads=torch.get_num_threads(),
                      labelled=int((ann.labels.array > 0).sum()))))
"""


def sha(p) -> str:
    return hashlib.sha256(open(p, 'rb').read()).hexdigest()


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp('determinism')
    ph = make_phantom(n_slices=16, size=(96, 96), n_organs=2, seed=5)
    lab = ph.labels.array
    seed = oracle_seed(lab, ph.organ_ids, axis=2)      # each organ drawn on its largest slice
    return d, write_volume(ph.image, d / 'image.nii.gz'), write_volume(ph.labels.with_array(seed), d / 'seed.nii.gz',
                                                                        labels=True)


def run(inputs, name, hash_seed):
    d, image, seed = inputs
    out = d / name
    env = dict(os.environ, PYTHONHASHSEED=str(hash_seed), OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    p = subprocess.run([sys.executable, '-c', CHILD, str(image), str(seed), str(out), str(FIT_STEPS)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return out, json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_same_output_bit_for_bit(inputs):
    before = {p: sha(p) for p in inputs[1:]}
    a, info_a = run(inputs, 'a.nii.gz', 1)
    b, info_b = run(inputs, 'b.nii.gz', 2)
    assert info_a['labelled'] > 0                        # a real result, not an empty map
    assert info_a == info_b                              # flows identical to the last bit
    assert sha(a) == sha(b)                              # the written files too
    assert {p: sha(p) for p in inputs[1:]} == before     # and the inputs untouched
