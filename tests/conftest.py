import os, pathlib, shutil, subprocess, sys
import pytest
from flow2mask_nb.testing import shared_data_dir

ROOT = pathlib.Path(__file__).resolve().parents[1]

@pytest.fixture(scope='session')
def data_dir():
    "The shared real-data folder; tests that need it skip with the reason when it is absent."
    d = shared_data_dir()
    if d is None: pytest.skip('real data not found: ../shared/data (or $FLOW2MASK_DATA) is absent')
    return d

@pytest.fixture(autouse=True)
def own_state_dir(tmp_path_factory, monkeypatch):
    "Each test remembers flows files and autosaves in a folder of its own: none sees another's, nor the user's."
    monkeypatch.setenv('FLOW2MASK_STATE_DIR', str(tmp_path_factory.mktemp('state')))

def flow2mask_exe():
    exe = pathlib.Path(sys.executable).parent / 'flow2mask'
    return str(exe) if exe.exists() else shutil.which('flow2mask')

@pytest.fixture
def cli():
    "Run the installed `flow2mask` console script; returns (exit code, stdout, stderr)."
    exe = flow2mask_exe()
    if exe is None: pytest.fail('the flow2mask console script is not installed (pip install -e .)')
    def run(*args, timeout=600):
        p = subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    return run


GUI_FILES = ('test_napari_widget.py', 'test_browser.py')   # napari under Xvfb, JupyterLab in Chromium


def pytest_configure(config):
    config.addinivalue_line('markers', 'cuda: needs a CUDA GPU; skipped where torch sees none (run them with `pytest -m cuda`)')
    config.addinivalue_line('markers', 'slow: takes over 4 s on a 2-core machine (`make test-fast` leaves it out)')
    config.addinivalue_line('markers', 'gui: drives napari or a browser (marked by file)')
    config.addinivalue_line('markers', 'data: reads ../shared/data (marked by the data_dir fixture)')


def pytest_collection_modifyitems(config, items):
    import torch
    for item in items:
        if pathlib.Path(str(item.fspath)).name in GUI_FILES: item.add_marker(pytest.mark.gui)
        if 'data_dir' in getattr(item, 'fixturenames', ()): item.add_marker(pytest.mark.data)
    if torch.cuda.is_available(): return
    skip = pytest.mark.skip(reason='needs a CUDA device (torch.cuda.is_available() is False)')
    for item in items:
        if 'cuda' in item.keywords: item.add_marker(skip)
