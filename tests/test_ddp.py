"DDP with gloo on CPU: two processes (torchrun) train a tiny FlowNet3D and end with identical weights."
import os, subprocess, sys, textwrap
import pytest
import torch

SCRIPT = textwrap.dedent('''
    import os, sys, torch
    torch.set_num_threads(1)
    from flow2mask_nb.train import train, TrainConfig
    from flow2mask_nb.testing import shifted_texture
    from flow2mask_nb.model import FlowNetConfig
    out, rank = sys.argv[1], int(os.environ["RANK"])
    data = [shifted_texture(6, 32, 32, 0.5, 0.3, seed=1), shifted_texture(5, 32, 32, -0.4, 0.2, seed=2),
            shifted_texture(7, 32, 32, 0.2, -0.5, seed=3)]
    torch.manual_seed(100 + rank)   # different global RNG per rank: DDP must still sync the initial weights
    budget = float(sys.argv[2]) if len(sys.argv) > 2 else None
    model, hist = train(data, out, TrainConfig(size=32, lr=1e-2, slab=None, crop=None),
                        arch=FlowNetConfig(size=32, enc=(4, 8), dec=(8, 8)), steps=None if budget else 4, budget_s=budget,
                        device="cpu", seed=0, progress=False, checkpoint_every=0)
    torch.save({"state": model.state_dict(), "losses": [h["loss"] for h in hist]}, os.path.join(out, f"rank{rank}.pt"))
''')


def _torchrun(tmp_path, *args):
    script = tmp_path / 'ddp_job.py'; script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__))), env.get('PYTHONPATH', '')])
    return subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                           str(script), str(tmp_path), *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_two_process_ddp_gives_identical_weights(tmp_path):
    res = _torchrun(tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    r0 = torch.load(tmp_path / 'rank0.pt', weights_only=True); r1 = torch.load(tmp_path / 'rank1.pt', weights_only=True)
    for k, v in r0['state'].items():
        assert torch.equal(v, r1['state'][k]), k
    assert r0['losses'] != r1['losses']          # the ranks really saw different data
    assert (tmp_path / 'model.safetensors').exists()   # rank 0 wrote the final model


@pytest.mark.slow
def test_ddp_time_budget_stops_the_ranks_together(tmp_path):
    "With a time budget the ranks agree on when to stop (else DDP would hang on a missing all-reduce)."
    res = _torchrun(tmp_path, '2')
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    r0 = torch.load(tmp_path / 'rank0.pt', weights_only=True); r1 = torch.load(tmp_path / 'rank1.pt', weights_only=True)
    assert len(r0['losses']) == len(r1['losses']) > 0
    for k, v in r0['state'].items():
        assert torch.equal(v, r1['state'][k]), k
