"""The same code on a CUDA GPU (mixed precision for the networks): skipped where torch sees no CUDA device.
Run on a GPU machine with `pytest -m cuda tests/test_cuda.py` (and `nbdev_test --flags cuda` for the notebook cells)."""
import numpy as np
import pytest
import torch
from flow2mask_nb.model import FlowNetConfig
from flow2mask_nb.flows import Flows
from flow2mask_nb.train import fit, train, TrainConfig, model_flows, default_arch
from flow2mask_nb.testing import shifted_texture, endpoint_error
from flow2mask_nb.checkpoint import load_model

pytestmark = pytest.mark.cuda


def test_fit_on_cuda_recovers_the_shift_like_the_cpu():
    vol = shifted_texture(10, 48, 48, 0.6, -0.4)
    gpu, hist = fit(vol, steps=120, device='cuda', progress=False)
    cpu, _ = fit(vol, steps=120, device='cpu', progress=False)
    assert gpu.forward.device.type == 'cpu'                     # results always come back to the CPU
    assert endpoint_error(gpu, 0.6, -0.4) < 0.15
    assert abs(endpoint_error(gpu, 0.6, -0.4) - endpoint_error(cpu, 0.6, -0.4)) < 0.05


def test_train_on_cuda_in_mixed_precision_then_use_the_model_anywhere(tmp_path):
    shifts = [(0.5, -0.3), (-0.4, 0.2), (0.3, 0.5), (-0.5, -0.4)]
    data = [shifted_texture(10, 64, 64, dy, dx, seed=s) for s, (dy, dx) in enumerate(shifts)]
    recipe = TrainConfig(size=64, slab=8, crop=48, lr=1e-3, reach=3)
    model, hist = train(data, tmp_path, recipe, default_arch(64), steps=300, device='cuda', progress=False)
    assert next(model.parameters()).device.type == 'cuda' and np.isfinite([h['loss'] for h in hist]).all()
    unseen = shifted_texture(10, 64, 64, 0.4, -0.3, seed=99)
    on_gpu, _ = model_flows(model, unseen, steps=0, device='cuda')               # bfloat16 autocast
    on_cpu, _ = model_flows(load_model(tmp_path / 'model.safetensors'), unseen, steps=0, device='cpu')
    assert (on_gpu.forward - on_cpu.forward).abs().mean() < 0.05               # bf16 against fp32
    zero = Flows(torch.zeros_like(on_cpu.forward), torch.zeros_like(on_cpu.backward))
    assert endpoint_error(on_gpu, 0.4, -0.3) < 0.8 * endpoint_error(zero, 0.4, -0.3)
    refined, h = model_flows(tmp_path / 'model.safetensors', unseen, steps=20, device='cuda', progress=False)
    assert len(h) == 20 and endpoint_error(refined, 0.4, -0.3) < endpoint_error(on_gpu, 0.4, -0.3)


def test_annotate_on_cuda_matches_the_cpu():
    from flow2mask_nb.phantom import make_phantom
    from flow2mask_nb.metrics import dice, oracle_seed
    from flow2mask_nb.session import annotate
    ph = make_phantom(n_slices=24, size=(64, 64), n_organs=2, seed=3)
    seed = ph.labels.with_array(oracle_seed(ph.labels.array, ph.organ_ids, axis=2))
    def score(dev):
        pred = annotate(ph.image, seed, device=dev).labels.array
        return np.mean([dice(pred == l, ph.labels.array == l) for l in ph.organ_ids])
    assert abs(score('cuda') - score('cpu')) < 0.03
