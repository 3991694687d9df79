"Slower training checks (about 1-2 minutes in all on 2 idle CPU cores)."
import torch
import pytest
from flow2mask_nb.model import FlowNetConfig, FlowNet3D, FlowNet2D
from flow2mask_nb.flows import Flows
from flow2mask_nb.losses import l2g_loss
from flow2mask_nb.train import fit, fit_network, train, TrainConfig, model_flows
from flow2mask_nb.testing import shifted_texture, endpoint_error

SMALL = dict(size=32, enc=(16, 32, 32), dec=(32, 32, 32))


@pytest.mark.slow
def test_network_test_time_training_recovers_known_shift():
    "FlowNet3D trained on the volume itself (`fit_network`) recovers a known per-slice shift."
    torch.manual_seed(0)
    vol = shifted_texture(8, 32, 32, 0.6, -0.4, seed=4)
    fl, hist = fit_network(vol, FlowNet3D(FlowNetConfig(**SMALL)), steps=100, lr=3e-3, reach=4, progress=False)
    epe = endpoint_error(fl, 0.6, -0.4)
    assert epe < 0.25, epe                     # a third of the true motion; zero flow: 0.72 px
    assert hist[-1]['loss'] < 0.4 * hist[0]['loss']


def test_trained_model_recovers_the_motion_of_an_unseen_volume(tmp_path):
    """A network trained over textures moving in four directions (crops, flips, slice skipping) predicts the motion of
    a texture it never saw: a fixed answer cannot fit all four, so it has to read the motion from the images."""
    shifts = [(0.5, -0.3), (-0.4, 0.2), (0.3, 0.5), (-0.5, -0.4)]
    data = [shifted_texture(10, 40, 40, dy, dx, seed=s) for s, (dy, dx) in enumerate(shifts)]
    arch = FlowNetConfig(kind='2d', **dict(SMALL, size=40))
    recipe = TrainConfig(size=40, slab=6, crop=32, margin=3, lr=1e-3, reach=3, anchors=4)
    model, hist = train(data, tmp_path, recipe, arch, steps=200, device='cpu', progress=False, checkpoint_every=0)
    unseen = shifted_texture(10, 40, 40, 0.4, -0.3, seed=99)
    fl, _ = model_flows(model, unseen, steps=0)
    zero = Flows(torch.zeros_like(fl.forward), torch.zeros_like(fl.backward))
    epe, epe0 = endpoint_error(fl, 0.4, -0.3), endpoint_error(zero, 0.4, -0.3)
    assert epe < 0.8 * epe0, (epe, epe0)      # measured 0.34 against 0.50
    assert l2g_loss(unseen, fl, 3) < 0.8 * l2g_loss(unseen, zero, 3)
    assert (tmp_path / 'history.csv').exists() and (tmp_path / 'history.png').exists()


def test_flownet2d_test_time_training():
    torch.manual_seed(0)
    vol = shifted_texture(6, 32, 32, 0.6, -0.4, seed=5)
    net = FlowNet2D(FlowNetConfig(kind='2d', **SMALL))
    fl, hist = fit_network(vol, net, steps=100, lr=3e-3, reach=3, progress=False)
    assert hist[-1]['loss'] < 0.5 * hist[0]['loss']


@pytest.mark.slow
def test_refinement_from_a_model_beats_the_same_steps_from_zero(tmp_path):
    "A few fit steps started from a trained network's flows end closer to the truth than as many from zero flows."
    data = [shifted_texture(10, 40, 40, 0.8, -0.6, seed=s) for s in range(4)]
    recipe = TrainConfig(size=40, slab=6, crop=32, margin=3, lr=3e-3, reach=3, augment=False)
    model, _ = train(data, tmp_path, recipe, FlowNetConfig(**dict(SMALL, size=40)), steps=150, device='cpu', progress=False,
                     checkpoint_every=0)
    unseen = shifted_texture(10, 40, 40, 0.8, -0.6, seed=7)
    warm, _ = model_flows(model, unseen, steps=10, progress=False)
    cold, _ = fit(unseen, steps=10, progress=False)
    assert endpoint_error(warm, 0.8, -0.6) < 0.7 * endpoint_error(cold, 0.8, -0.6)


@pytest.mark.slow
def test_cli_benchmark_trains_on_the_cases_images_then_uses_the_model(cli, tmp_path):
    "`flow2mask benchmark CASES --train SECONDS`: a model trained on the cases' images (labels unused) is used."
    import json
    from flow2mask_nb.phantom import make_phantom
    from flow2mask_nb.io import write_volume
    for k in range(2):
        ph = make_phantom(n_slices=16, size=(40, 40), n_organs=1, seed=k)
        (tmp_path / 'cases' / f'case{k}').mkdir(parents=True)
        write_volume(ph.image, tmp_path / 'cases' / f'case{k}' / 'image.nii.gz')
        write_volume(ph.labels, tmp_path / 'cases' / f'case{k}' / 'label.nii.gz', labels=True)
    code, out, err = cli('benchmark', tmp_path / 'cases', '--train', '8', '--model-out', tmp_path / 'm', '--no-baselines',
                         '--json', tmp_path / 'r.json')
    assert code == 0, err
    res = json.loads((tmp_path / 'r.json').read_text())
    assert res['model'] == str(tmp_path / 'm' / 'model.safetensors')
    assert [r['case'] for r in res['results']] == ['case0', 'case1']
    assert all(r['info']['flow_source'] == 'model' for r in res['results'])
    rows = (tmp_path / 'm' / 'history.csv').read_text().splitlines()
    assert len(rows) > 2 and float(rows[-1].split(',')[1]) >= 8
    code, out, err = cli('benchmark', tmp_path / 'cases', '--train', '5', '--model-out', tmp_path / 'nope' / 'm')
    assert code == 2 and 'does not exist' in err
