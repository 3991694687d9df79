"Slower training checks (about 1-2 minutes in all on 2 idle CPU cores)."
import torch
import pytest
from flow2mask_nb.model import FlowNetConfig, FlowNet3D, FlowNet2D, Flows
from flow2mask_nb.losses import l2g_loss
from flow2mask_nb.train import fit, fit_network, train, TrainConfig, model_flows
from flow2mask_nb.testing import shifted_texture, endpoint_error

SMALL = dict(size=32, enc=(16, 32, 32), dec=(32, 32, 32))


def test_network_test_time_training_recovers_known_shift():
    "FlowNet3D trained on the volume itself (`fit_network`) recovers a known per-slice shift."
    torch.manual_seed(0)
    vol = shifted_texture(8, 32, 32, 0.6, -0.4, seed=4)
    fl, hist = fit_network(vol, FlowNet3D(FlowNetConfig(**SMALL)), steps=100, lr=3e-3, reach=4, progress=False)
    epe = endpoint_error(fl, 0.6, -0.4)
    assert epe < 0.25, epe                     # a third of the true motion; zero flow: 0.72 px
    assert hist[-1]['loss'] < 0.4 * hist[0]['loss']


@pytest.mark.parametrize('kind', ['3d', '2d'])
def test_trained_model_recovers_the_shift_of_an_unseen_volume(kind, tmp_path):
    "A network trained over moving textures (crops, augmentation) predicts the motion of a texture it never saw."
    data = [shifted_texture(10, 40, 40, 0.5, -0.3, seed=s) for s in range(4)]
    arch = FlowNetConfig(kind=kind, **SMALL)
    recipe = TrainConfig(size=40, slab=6, crop=32, margin=3, lr=3e-3, reach=3, anchors=4)
    model, hist = train(data, tmp_path, recipe, arch, steps=150, device='cpu', progress=False, checkpoint_every=0)
    unseen = shifted_texture(10, 40, 40, 0.5, -0.3, seed=99)
    fl, _ = model_flows(model, unseen, steps=0)
    zero = Flows(torch.zeros_like(fl.forward), torch.zeros_like(fl.backward))
    epe, epe0 = endpoint_error(fl, 0.5, -0.3), endpoint_error(zero, 0.5, -0.3)
    assert epe < 0.5 * epe0, (epe, epe0)
    assert l2g_loss(unseen, fl, 3) < 0.5 * l2g_loss(unseen, zero, 3)
    assert (tmp_path / 'history.csv').exists() and (tmp_path / 'history.png').exists()


def test_flownet2d_test_time_training():
    torch.manual_seed(0)
    vol = shifted_texture(6, 32, 32, 0.6, -0.4, seed=5)
    net = FlowNet2D(FlowNetConfig(kind='2d', **SMALL))
    fl, hist = fit_network(vol, net, steps=100, lr=3e-3, reach=3, progress=False)
    assert hist[-1]['loss'] < 0.5 * hist[0]['loss']


def test_refinement_from_a_model_beats_the_same_steps_from_zero(tmp_path):
    "A few fit steps started from a trained network's flows end closer to the truth than as many from zero flows."
    data = [shifted_texture(10, 40, 40, 0.8, -0.6, seed=s) for s in range(4)]
    recipe = TrainConfig(size=40, slab=6, crop=32, margin=3, lr=3e-3, reach=3)
    model, _ = train(data, tmp_path, recipe, FlowNetConfig(**SMALL), steps=150, device='cpu', progress=False,
                     checkpoint_every=0)
    unseen = shifted_texture(10, 40, 40, 0.8, -0.6, seed=7)
    warm, _ = model_flows(model, unseen, steps=10, progress=False)
    cold, _ = fit(unseen, steps=10, progress=False)
    assert endpoint_error(warm, 0.8, -0.6) < 0.7 * endpoint_error(cold, 0.8, -0.6)
