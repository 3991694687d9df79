"""What the image and the grid make of each structure: how strict Dice 0.90 is on it, and whether the image shows
the borders its label map draws.

Run:  .venv/bin/python bench/label_borders.py [--cases NAME,NAME]

Per structure of the shared CT and every dev case (slices along the case's axis): the slices it spans, its pixels
and connected pieces per slice (means over those slices), the Dice of its outline drawn one pixel too wide on every
slice (`metrics.one_pixel_dice`: low means only pixel-exact outlines reach 0.90), and the Dice of each true slice
with the next (how much it changes from slice to slice). For structures that touch another labelled structure, the
rank AUC of the image's intensities inside it against inside the other (0.5: the image does not tell them apart).
No flows, no propagation: facts of the data. Writes bench/results/label_borders.json and prints the table.
"""
import argparse, pathlib, sys
import numpy as np
from scipy import ndimage

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))


def intensity_auc(a, b) -> float:
    "Rank AUC that a voxel of `a` is brighter than one of `b` (0.5: indistinguishable), as the seed models measure it."
    import torch
    from flow2mask_nb.seedmodel import rank_separation
    a, b = np.asarray(a, float), np.asarray(b, float)
    lo, hi = np.percentile(np.concatenate([a, b]), [1, 99])     # the bins span the bulk, not a stray metal voxel
    scaled = lambda v: torch.from_numpy((v - lo) / (hi - lo) if hi > lo else np.zeros_like(v))
    return rank_separation(scaled(a), scaled(b)) + 0.5


def structure_facts(image3, truth3, label: int) -> dict:
    "Size, pieces, strictness, slice-to-slice change and, per touching label, the intensity AUC of one structure."
    from flow2mask_nb.metrics import one_pixel_dice, per_slice_dice
    m = truth3 == label
    spanned = np.flatnonzero(m.any((1, 2)))
    neighbour = per_slice_dice(m[spanned[:-1]], m[spanned[:-1] + 1]) if len(spanned) > 1 else np.array([np.nan])
    cross = np.zeros((3, 3, 3), bool); cross[1] = ndimage.generate_binary_structure(2, 1)
    touching = np.bincount(truth3[ndimage.binary_dilation(m, cross) & ~m].ravel())
    others = [int(l) for l in np.flatnonzero(touching) if l not in (0, label) and touching[l] >= 20]
    return dict(slices=len(spanned), pixels_per_slice=float(m.sum() / len(spanned)),
                pieces_per_slice=float(np.mean([ndimage.label(m[k])[1] for k in spanned])),
                one_pixel_dice=one_pixel_dice(m), next_slice_dice=float(np.nanmean(neighbour)),
                auc_against={o: intensity_auc(image3[m], image3[truth3 == o]) for o in others})


def borders_table(facts: dict) -> str:
    "The markdown table of `main`'s JSON ({case: {structure: structure_facts}}): a row per structure."
    lines = ['| case | structure | slices | pixels per slice | pieces per slice | one pixel too wide: Dice | next slice: Dice '
             '| image AUC against touching labels |', '|---' * 8 + '|']
    for case, structures in facts.items():
        for name, f in structures.items():
            against = ', '.join(f"{o} {v:.2f}" for o, v in f['auc_against'].items()) or '-'
            lines.append(f"| {case} | {name} | {f['slices']} | {f['pixels_per_slice']:.0f} | {f['pieces_per_slice']:.1f} | "
                         f"{f['one_pixel_dice']:.2f} | {f['next_slice_dice']:.2f} | {against} |")
    return '\n'.join(lines)


def main():
    from flow2mask_nb.benchmark import load_case
    from flow2mask_nb.io import to_slices, write_json
    from cases import add_case_options, chosen_cases
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_case_options(ap)
    a = ap.parse_args()
    out = {}
    for c in chosen_cases(a):
        image, truth, axis, truth3, ids, _ = load_case(c)
        image3, name = to_slices(image.array, axis), lambda l: c.structures.get(l, str(l))
        out[c.name] = {}
        for l in ids:
            f = structure_facts(image3, truth3, l)
            out[c.name][name(l)] = f | dict(auc_against={name(o): v for o, v in f['auc_against'].items()})
        print(f'{c.name}: done', flush=True)
    print('\n' + borders_table(out))
    (HERE / 'results').mkdir(exist_ok=True)
    write_json(HERE / 'results' / 'label_borders.json', out)
    print(f"wrote {HERE / 'results' / 'label_borders.json'}")


if __name__ == '__main__':
    main()
