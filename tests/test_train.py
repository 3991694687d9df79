"Slower training checks (about 1-2 minutes in all on 2 idle CPU cores)."
import torch
from flow2mask_nb.model import FlowNetConfig, FlowNet3D, FlowNet2D, Flows
from flow2mask_nb.losses import l2g_loss
from flow2mask_nb.train import fit, train, shifted_texture, endpoint_error


def test_network_test_time_training_recovers_known_shift():
    "FlowNet3D trained on the volume itself (method='network') recovers a known per-slice shift."
    torch.manual_seed(0)
    vol = shifted_texture(8, 32, 32, 0.6, -0.4, seed=4)
    net = FlowNet3D(FlowNetConfig(size=32, enc=(16, 32, 32), dec=(32, 32, 32)))
    fl, hist = fit(vol, method='network', init=net, steps=100, lr=3e-3, reach=4, progress=False)
    epe = endpoint_error(fl, 0.6, -0.4)
    assert epe < 0.25, epe                     # a third of the true motion; zero flow: 0.72 px
    assert hist[-1]['loss'] < 0.4 * hist[0]['loss']


def test_train_over_volumes_generalises_to_unseen_volume():
    "A FlowNet3D trained over several moving textures predicts useful flows on an unseen one."
    data = [shifted_texture(8, 32, 32, 0.5, -0.3, seed=s) for s in range(4)]
    import tempfile
    model, hist = train(data, tempfile.mkdtemp(), steps=100, size=32, lr=3e-3, iss_weight=0.1, anchors=4,
                        cfg=FlowNetConfig(size=32, enc=(16, 32, 32), dec=(32, 32, 32)), device='cpu', progress=False,
                        checkpoint_every=0)
    unseen = shifted_texture(8, 32, 32, 0.5, -0.3, seed=99)
    with torch.no_grad(): fl = model(unseen)
    zero = Flows(torch.zeros_like(fl.forward), torch.zeros_like(fl.backward))
    assert l2g_loss(unseen, fl, 3) < 0.5 * l2g_loss(unseen, zero, 3)


def test_flownet2d_trains():
    torch.manual_seed(0)
    vol = shifted_texture(6, 32, 32, 0.6, -0.4, seed=5)
    net = FlowNet2D(FlowNetConfig(size=32, kind='2d', enc=(16, 32, 32), dec=(32, 32, 32)))
    fl, hist = fit(vol, method='network', init=net, steps=100, lr=3e-3, reach=3, progress=False)
    assert hist[-1]['loss'] < 0.5 * hist[0]['loss']
