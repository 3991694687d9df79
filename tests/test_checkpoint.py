"Checkpoint safety: loading never executes code from the file."
import os, pickle
import pytest
import torch
from flow2mask_nb.errors import Flow2MaskError
from flow2mask_nb.model import FlowNet3D, FlowNetConfig
from flow2mask_nb.checkpoint import save_checkpoint, load_checkpoint, load_model


class _Payload:
    "Unpickling this object would create `target` (via os.system)."
    def __init__(self, target): self.target = target
    def __reduce__(self): return (os.system, (f"touch '{self.target}'",))


@pytest.mark.parametrize('how', ['torch_zip', 'raw_pickle'])
def test_malicious_pickle_is_refused_and_not_executed(tmp_path, how):
    target = tmp_path / 'created_by_pickle'
    bad = tmp_path / 'model.pt'
    obj = {'meta': '{}', 'tensors': {}, 'boom': _Payload(target)}
    if how == 'torch_zip': torch.save(obj, bad)
    else: bad.write_bytes(pickle.dumps(obj))
    assert not target.exists()
    # sanity: the payload really would run if the file were unpickled unsafely
    with pytest.raises(Flow2MaskError, match='refusing to load'):
        load_checkpoint(bad)
    with pytest.raises(Flow2MaskError):
        load_model(bad)
    assert not target.exists()


def test_payload_is_live(tmp_path):
    "Guard against a vacuous test: plain pickle.loads of the payload does create the file."
    target = tmp_path / 'live'
    pickle.loads(pickle.dumps(_Payload(target)))
    assert target.exists()


@pytest.mark.parametrize('suffix', ['.safetensors', '.pt'])
def test_round_trip_reproduces_flows_exactly(tmp_path, suffix):
    torch.manual_seed(0)
    net = FlowNet3D(FlowNetConfig(enc=(4, 8), dec=(8, 8), size=32, head_std=0.05))
    vol = torch.rand(4, 20, 18)
    path = save_checkpoint(tmp_path / f'ck{suffix}', net, step=3)
    again = load_model(path)
    with torch.no_grad():
        a, b = net(vol), again(vol)
    assert torch.equal(a.forward, b.forward) and torch.equal(a.backward, b.backward)
    assert load_checkpoint(path).step == 3
    assert [p.name for p in tmp_path.iterdir()] == [f'ck{suffix}']
