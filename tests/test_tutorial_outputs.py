"""The tutorials keep their outputs for a reader on GitHub (tools/tutorials.py saves them); re-executed, they still
show the same: text equal but for numbers (within 2 % or 0.005: flows are fitted) and wall times (not compared),
a figure where a figure was saved, a widget where a widget was."""
import json, math, pathlib, re, sys
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / 'tools'))
from tutorials import TUTORIALS, executed

NUMBER = re.compile(r'-?\d+(?:\.\d+)?(?:e[-+]?\d+)?')
SECONDS = re.compile(r'\d+(?:\.\d+)? s\b')
WIDGET = 'application/vnd.jupyter.widget-view+json'


def shown(output: dict) -> tuple:
    "What a reader sees of one output: (kind, text); figures and widgets only as such, wall times masked."
    data = output.get('data', {})
    if 'image/png' in data: return 'figure', ''
    if WIDGET in data: return 'widget', ''
    text = ''.join(output.get('text', data.get('text/plain', '')))
    return output['output_type'], SECONDS.sub('(seconds) s', text)


def outputs(nb) -> list:
    "Per code cell, what it shows; stderr left out (warnings and progress bars vary with the machine)."
    return [[shown(o) for o in c.get('outputs', []) if o.get('name') != 'stderr']
            for c in nb['cells'] if c['cell_type'] == 'code']


def same_text(saved: str, now: str, rel: float = 0.02, tol: float = 5e-3) -> bool:
    "Equal text, but numbers need only agree within `rel` relative or `tol` absolute."
    if NUMBER.sub('#', saved) != NUMBER.sub('#', now): return False
    return all(math.isclose(float(a), float(b), rel_tol=rel, abs_tol=tol)
               for a, b in zip(NUMBER.findall(saved), NUMBER.findall(now)))


def test_numbers_compare_with_a_tolerance():
    assert same_text('Dice 0.951 after 0.52 s', 'Dice 0.953 after 0.52 s')
    assert same_text('voxels 772', 'voxels 780') and same_text('ISS 0.0081', 'ISS 0.0112')
    assert not same_text('Dice 0.951', 'Dice 0.900') and not same_text('stopped at slice 11', 'stopped at slice 12')
    assert not same_text('stopped: area', 'stopped: contrast')
    assert shown(dict(output_type='stream', name='stdout', text='flows in 1.6 s')) == ('stream', 'flows in (seconds) s')


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(p.stem for p in TUTORIALS.glob('*.ipynb')))
def test_saved_outputs_still_match(name, request):
    if name == 'evaluation': request.getfixturevalue('data_dir')     # its last section reads the shared CT
    path = TUTORIALS / f'{name}.ipynb'
    saved = outputs(json.loads(path.read_text(encoding='utf-8')))
    assert any(saved), f'{path.name} keeps no outputs: run tools/tutorials.py'
    now = outputs(executed(path))
    assert len(now) == len(saved), f'{path.name}: {len(saved)} code cells saved, {len(now)} now'
    for i, (was, is_) in enumerate(zip(saved, now)):
        assert [k for k, _ in was] == [k for k, _ in is_], f'{path.name}, code cell {i}: outputs {was} saved, {is_} now'
        for (_, a), (_, b) in zip(was, is_): assert same_text(a, b), f'{path.name}, code cell {i}:\n{a}\nsaved, now\n{b}'
