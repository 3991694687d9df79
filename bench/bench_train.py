"""Training-step cost of the L2G loss against the Vol2Flow loss, same network, same volume, same run.

Prints the median time per step (forward, loss, backward, Adam step) over interleaved repeats and the peak
activation memory (bytes of tensors saved for backward; on CUDA also torch.cuda.max_memory_allocated), as
absolute numbers and as ratios to Vol2Flow.  Usage: python bench/bench_train.py [--depth 32] [--size 128]
"""
import argparse, statistics, time
import torch
from flow2mask_nb.model import FlowNet3D, FlowNetConfig
from flow2mask_nb.device import pick_device
from flow2mask_nb.losses import l2g_loss, vol2flow_loss, iss_loss
from flow2mask_nb.testing import shifted_texture

p = argparse.ArgumentParser()
p.add_argument('--depth', type=int, default=32); p.add_argument('--size', type=int, default=128)
p.add_argument('--repeats', type=int, default=5); p.add_argument('--anchors', type=int, default=4)
p.add_argument('--device', default='auto'); p.add_argument('--threads', type=int, default=0)
a = p.parse_args()
if a.threads: torch.set_num_threads(a.threads)
dev = pick_device(a.device)
vol = shifted_texture(a.depth, a.size, a.size, 0.6, -0.3).to(dev)
torch.manual_seed(0)
net = FlowNet3D(FlowNetConfig(size=a.size)).to(dev)
opt = torch.optim.Adam(net.parameters(), lr=1e-4)
anchors = torch.linspace(0, a.depth - 1, a.anchors).round().long()
losses = {
    'vol2flow (5 steps)': lambda fl: vol2flow_loss(vol, fl, 5, anchors=anchors),
    'l2g K=5': lambda fl: l2g_loss(vol, fl, 5, anchors=anchors),
    f'l2g K={a.depth - 1} (global)': lambda fl: l2g_loss(vol, fl, a.depth - 1, anchors=anchors),
}

class SavedBytes:
    "Peak bytes of tensors saved for backward during one step (activation memory, any device)."
    def __init__(self): self.live, self.peak, self.seen = 0, 0, {}
    def pack(self, t):
        key = (t.untyped_storage().data_ptr(), t.device)
        if key not in self.seen:
            self.seen[key] = t.untyped_storage().nbytes(); self.live += self.seen[key]; self.peak = max(self.peak, self.live)
        return t
    def unpack(self, t): return t

def step(name):
    rec = SavedBytes()
    if dev.type == 'cuda': torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(rec.pack, rec.unpack):
        fl = net(vol); loss = losses[name](fl) + 0.1 * iss_loss(fl)
    opt.zero_grad(); loss.backward(); opt.step()
    if dev.type == 'cuda': torch.cuda.synchronize()
    return time.perf_counter() - t, rec.peak, (torch.cuda.max_memory_allocated() if dev.type == 'cuda' else None)

for name in losses: step(name)        # warm-up
res = {n: [] for n in losses}
for r in range(a.repeats):
    for n in losses: res[n].append(step(n))
print(f"device {dev}, torch threads {torch.get_num_threads()}, volume {a.depth}x{a.size}x{a.size}, "
      f"{a.anchors} anchors, FlowNet3D, median of {a.repeats} interleaved repeats")
base_t = statistics.median(x[0] for x in res['vol2flow (5 steps)']); base_m = max(x[1] for x in res['vol2flow (5 steps)'])
for n, xs in res.items():
    t = statistics.median(x[0] for x in xs); m = max(x[1] for x in xs)
    cuda = f", cuda peak {max(x[2] for x in xs) / 2**20:.0f} MiB" if dev.type == 'cuda' else ''
    print(f"{n:24s} {t * 1000:8.0f} ms/step (x{t / base_t:.2f})   saved activations {m / 2**20:7.1f} MiB (x{m / base_m:.2f}){cuda}")
