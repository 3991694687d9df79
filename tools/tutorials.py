"""Execute the tutorials in place, so that they keep their outputs (figures included) for a reader on GitHub.

Run from the repository root after changing a tutorial or what it shows:
    OMP_NUM_THREADS=1 .venv/bin/python tools/tutorials.py [NAME ...]      (default: every nbs/tutorials/*.ipynb)
A Jupyter kernel runs each one, as a reader's Jupyter would (execnb, which `nbdev_test` uses, drops what a cell
prints when the cell ends with ';'); the notebook is saved as `nbdev_clean` leaves it, without widget state (it
would hold the volumes). tests/test_tutorial_outputs.py re-executes them and checks the saved outputs still match.
"""
import json, pathlib, sys, time, warnings

TUTORIALS = pathlib.Path(__file__).resolve().parents[1] / 'nbs' / 'tutorials'


def executed(path: pathlib.Path, timeout: int = 600):
    "The notebook at `path` run top to bottom by a Jupyter kernel in its own folder, its outputs in its cells."
    import nbformat
    from nbclient import NotebookClient
    from nbdev.clean import clean_nb
    nb = nbformat.from_dict(json.loads(path.read_text(encoding='utf-8')))
    for cell in nb.cells: cell.source = ''.join(cell.source)
    with warnings.catch_warnings():                          # the repository's notebooks carry no cell ids
        warnings.simplefilter('ignore', nbformat.validator.MissingIDFieldWarning)
        NotebookClient(nb, timeout=timeout, kernel_name='python3', record_timing=False, store_widget_state=False,
                       resources=dict(metadata=dict(path=str(path.parent)))).execute()
    clean_nb(nb)
    return nb


def save(nb, path: pathlib.Path):
    "Write `nb` to `path` as `nbdev_clean` writes notebooks (keys sorted, text split in lines)."
    from nbformat.v4.rwbase import split_lines
    from execnb.nbio import write_nb
    write_nb(split_lines(nb), path)


def main(names: list):
    for path in [TUTORIALS / f'{n}.ipynb' for n in names] or sorted(TUTORIALS.glob('*.ipynb')):
        t0 = time.perf_counter()
        save(executed(path), path)
        print(f'{path.name}: executed and saved in {time.perf_counter() - t0:.0f} s', flush=True)


if __name__ == '__main__':
    main(sys.argv[1:])
