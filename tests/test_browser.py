"""The notebook widgets in a real browser (select with `pytest -k browser`).

Starts JupyterLab on 127.0.0.1 (a free port, a random token, settings and kernels in a temporary folder), opens the
first tutorial in headless Chromium (Debian's `chromium`, driven by Playwright through its executable path: no
browser is downloaded), runs every cell, and checks that the widgets rendered: the slice browser (slider and
images), the seed canvas (not blank, and drawing on it with the mouse changes it), and the NiiVue 3D view (a WebGL
canvas that is not blank). It saves a screenshot and fails if any request left localhost.

Needs: chromium (apt-get install chromium), and in the venv jupyterlab, playwright, ipywidgets, ipycanvas and
ipyniivue; it skips, saying which is missing, otherwise. FLOW2MASK_CHROMIUM overrides the browser path;
FLOW2MASK_ARTIFACTS names a folder to copy the screenshots into.
"""
import importlib.util, io, json, os, pathlib, secrets, shutil, signal, socket, subprocess, sys, time, urllib.request
from urllib.parse import urlparse
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / 'nbs' / 'tutorials' / 'volume_to_mask.ipynb'
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync', '--no-first-run',
                  # WebGL (the NiiVue view) through the CPU rasteriser, since the GPU is disabled
                  '--use-angle=swiftshader', '--enable-unsafe-swiftshader']
LOCAL_HOSTS = {'127.0.0.1', 'localhost', '[::1]', '::1'}
PYTHON_NEEDS = ('jupyterlab', 'playwright', 'ipywidgets', 'ipycanvas', 'ipyniivue')
TIMEOUT_MS = 150_000


def _chromium():
    if os.environ.get('FLOW2MASK_CHROMIUM'):          # an explicit choice is not second-guessed
        c = os.environ['FLOW2MASK_CHROMIUM']; return c if os.path.exists(c) else None
    for c in ('/usr/bin/chromium', shutil.which('chromium'), shutil.which('chromium-browser')):
        if c and os.path.exists(c): return c
    return None


def _missing():
    "Why the browser test cannot run here, or None."
    missing = [m for m in PYTHON_NEEDS if importlib.util.find_spec(m) is None]
    if missing: return f"python packages missing: {', '.join(missing)} (pip install -e '.[dev,notebook]')"
    if _chromium() is None: return 'chromium not found (apt-get install chromium, or set FLOW2MASK_CHROMIUM)'
    if not TUTORIAL.exists(): return f'{TUTORIAL.relative_to(ROOT)} not found'
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _is_local(url: str) -> bool:
    u = urlparse(url)
    if u.scheme in ('data', 'blob', 'about', 'chrome', 'devtools'): return True
    return (u.hostname or '') in LOCAL_HOSTS


@pytest.fixture
def jupyterlab(tmp_path):
    "A JupyterLab server on 127.0.0.1 serving a copy of the tutorial; yields (base url, token, notebook name)."
    yield from _serve(tmp_path, TUTORIAL)


MARKER_CELLS = [
    "import numpy as np\nfrom ipyniivue import SliceType\nfrom flow2mask_nb.orient import corner_marker\n"
    "from flow2mask_nb.notebook import view3d",
    # the patient's right-anterior corner: stored RAS (as NIfTI files usually are) and LPS (as DICOM)
    "views = []\nfor d in (np.diag([-1., -1., 1.]), np.eye(3)):\n"
    "    nv = view3d(corner_marker(shape=(40, 40, 9), direction=d, size=10), height=320)\n"
    "    nv.opts.slice_type = SliceType.AXIAL; nv.opts.is_orientation_text_visible = False\n"
    "    nv.opts.crosshair_width = 0.; views.append(nv)",
    # and a sagittal view: anterior-superior shows top-left, as in `orient.screen_view`
    "nv = view3d(corner_marker(shape=(9, 40, 40), direction=np.diag([-1., -1., 1.]), axis=0, corner='AS', size=10,\n"
    "                          spacing=(4., 2., 2.)), height=320)\n"
    "nv.opts.slice_type = SliceType.SAGITTAL; nv.opts.is_orientation_text_visible = False\n"
    "nv.opts.crosshair_width = 0.; views.append(nv)",
    "views[0]", "views[1]", "views[2]"]


@pytest.fixture
def marker_lab(tmp_path):
    "JupyterLab serving a notebook that shows corner markers in NiiVue: axial (stored RAS, then LPS), sagittal."
    nb = dict(nbformat=4, nbformat_minor=5, metadata=dict(kernelspec=dict(name='python3', display_name='Python 3',
              language='python')), cells=[dict(cell_type='code', metadata={}, source=s, outputs=[],
                                              execution_count=None) for s in MARKER_CELLS])
    path = tmp_path / 'src' / 'niivue_marker.ipynb'; path.parent.mkdir()
    path.write_text(json.dumps(nb))
    yield from _serve(tmp_path, path)


DESK_CELLS = [
    "import os, pathlib, torch, numpy as np\nfrom flow2mask_nb.phantom import make_phantom\nfrom flow2mask_nb.flows import Flows\n"
    "from flow2mask_nb.notebook import Annotator, SliceBrowser\n"
    "OUT = pathlib.Path(os.environ['FLOW2MASK_DESK_OUT'])\n"
    "ph = make_phantom(n_slices=12, size=(48, 40), n_organs=2, seed=2)\n"
    "an = Annotator(ph.image, flow_source='tvl1', size=None, background=False, autosave=OUT / 'organ.nii.gz')\n"
    "an.save_path.value = str(OUT / 'saved.seg.nrrd'); an.canvas.slider.value = 6",
    "an.widget",
    "flows = Flows(torch.from_numpy(ph.forward).float(), torch.from_numpy(ph.backward).float())\n"
    "sb = SliceBrowser((ph.slices - ph.slices.min()) / np.ptp(ph.slices), ph.label_slices, flows)\nsb.widget"]


@pytest.fixture
def desk_lab(tmp_path, monkeypatch):
    "JupyterLab serving a notebook with the Annotator (autosaving into tmp_path/out) and a slice browser with flows."
    out = tmp_path / 'out'; out.mkdir()
    monkeypatch.setenv('FLOW2MASK_DESK_OUT', str(out))
    nb = dict(nbformat=4, nbformat_minor=5, metadata=dict(kernelspec=dict(name='python3', display_name='Python 3',
              language='python')), cells=[dict(cell_type='code', metadata={}, source=s, outputs=[],
                                              execution_count=None) for s in DESK_CELLS])
    path = tmp_path / 'src' / 'desk.ipynb'; path.parent.mkdir()
    path.write_text(json.dumps(nb))
    for served in _serve(tmp_path, path): yield (*served, out)


def _serve(tmp_path, notebook):
    "Start JupyterLab on 127.0.0.1 serving a copy of `notebook`; yields (base url, token, notebook name)."
    reason = _missing()
    if reason: pytest.skip(f'browser test skipped: {reason}')
    work, home = tmp_path / 'work', tmp_path / 'jupyter'
    work.mkdir(); home.mkdir()
    shutil.copy(notebook, work / notebook.name)
    # our own kernel (this interpreter) and settings, whatever is installed in the user's Jupyter folders
    kdir = home / 'data' / 'kernels' / 'python3'; kdir.mkdir(parents=True)
    (kdir / 'kernel.json').write_text(json.dumps(dict(
        argv=[sys.executable, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
        display_name='Python 3', language='python')))
    sdir = home / 'settings' / '@jupyterlab' / 'notebook-extension'; sdir.mkdir(parents=True)
    (sdir / 'tracker.jupyterlab-settings').write_text(json.dumps({'windowingMode': 'none'}))   # every cell in the DOM
    adir = home / 'settings' / '@jupyterlab' / 'apputils-extension'; adir.mkdir(parents=True)
    (adir / 'notification.jupyterlab-settings').write_text(json.dumps({'fetchNews': 'false', 'checkForUpdates': False}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / 'config'), JUPYTER_DATA_DIR=str(home / 'data'),
               JUPYTER_RUNTIME_DIR=str(home / 'runtime'), JUPYTERLAB_SETTINGS_DIR=str(home / 'settings'),
               JUPYTERLAB_WORKSPACES_DIR=str(home / 'workspaces'), IPYTHONDIR=str(home / 'ipython'),
               MPLBACKEND='Agg', OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    port, token = _free_port(), secrets.token_hex(16)
    log = open(tmp_path / 'jupyterlab.log', 'w')
    proc = subprocess.Popen(
        [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ip=127.0.0.1', f'--port={port}',
         '--ServerApp.port_retries=0', '--allow-root', f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={work}',
         '--LabApp.expose_app_in_browser=True', '--LabApp.news_url=None', '--LabApp.extension_manager=readonly',
         '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate'],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f'http://127.0.0.1:{port}'
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f'{base}/api/status?token={token}', timeout=2).read(); break
            except Exception:
                if proc.poll() is not None or time.time() > deadline:
                    log.flush(); pytest.fail('JupyterLab did not start:\n' + (tmp_path / 'jupyterlab.log').read_text()[-3000:])
                time.sleep(0.5)
        yield base, token, notebook.name
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)       # the server and the kernels it started (its own session)
            try: proc.wait(15)
            except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait(5)
        except ProcessLookupError: pass
        log.close()


def _not_blank(png: bytes, min_std: float = 8., min_colours: int = 16) -> tuple:
    "Whether a screenshot has real content: pixel spread and number of distinct colours."
    import numpy as np
    from PIL import Image
    a = np.asarray(Image.open(io.BytesIO(png)).convert('RGB')).astype(float)
    std, colours = float(a.std()), len(np.unique(a.reshape(-1, 3), axis=0))
    return std >= min_std and colours >= min_colours, dict(std=round(std, 1), colours=colours, shape=a.shape)


def _save(tmp_path, name, png):
    p = tmp_path / name; p.write_bytes(png)
    if os.environ.get('FLOW2MASK_ARTIFACTS'):
        d = pathlib.Path(os.environ['FLOW2MASK_ARTIFACTS']); d.mkdir(parents=True, exist_ok=True); shutil.copy(p, d / name)
    return p


def _run_all(page, base, token, name):
    "Open the notebook, run every cell, wait until the kernel is idle with every cell run; fail on a cell error."
    page.goto(f'{base}/lab/tree/{name}?token={token}')
    page.wait_for_selector('.jp-Notebook .jp-Cell')
    page.wait_for_function("""() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
        const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
        return k && k.status === 'idle'; }""")
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    # done when the kernel is idle again and every code cell has an execution count
    page.wait_for_function("""() => { const w = window.jupyterapp.shell.currentWidget;
        const k = w.sessionContext.session.kernel; if (!k || k.status !== 'idle') return false;
        const cells = w.content.model.cells; let n = 0;
        for (let i = 0; i < cells.length; i++) { const c = cells.get(i);
            if (c.type === 'code') { if (!c.executionCount) return false; n++; } }
        return n > 0; }""", polling=500)
    errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], '
                          '.jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]')
    error_texts = [t for t in errors.all_inner_texts() if 'Traceback' in t or 'Error' in t]
    assert not error_texts, 'a cell failed:\n' + '\n'.join(error_texts)[:3000]


def _webgl_canvases(page) -> list:
    "The NiiVue views: WebGL canvases in output areas (not the seed canvas)."
    return [c for c in page.locator('.jp-OutputArea-output canvas').all() if c.evaluate(
        "c => !c.closest('.flow2mask-seed-canvas') && !!(c.getContext('webgl2') || c.getContext('webgl'))")]


def _outline(page, canvas, pts):
    "Draw a stroke through `pts` (fractions of the canvas) with the mouse."
    box = canvas.bounding_box(); x0, y0, w, h = box['x'], box['y'], box['width'], box['height']
    page.mouse.move(x0 + pts[0][0] * w, y0 + pts[0][1] * h); page.mouse.down()
    for fx, fy in pts[1:]: page.mouse.move(x0 + fx * w, y0 + fy * h, steps=4)
    page.mouse.up()


def test_browser_niivue_orientation(marker_lab, tmp_path):
    "NiiVue shows a right-anterior marker top-left on an axial view (stored RAS or LPS), anterior-superior on a sagittal one."
    from playwright.sync_api import sync_playwright
    import numpy as np
    from PIL import Image
    from flow2mask_nb.orient import bright_quadrant
    base, token, name = marker_lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_context(viewport={'width': 1200, 'height': 1400}).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            _run_all(page, base, token, name)
            page.wait_for_function(f"() => document.querySelectorAll('.jp-OutputArea-output canvas').length >= 3")
            canvases = _webgl_canvases(page)
            assert len(canvases) == 3, len(canvases)
            for c, what in zip(canvases, ('RAS', 'LPS', 'sagittal')):
                c.scroll_into_view_if_needed(); time.sleep(1.5)
                png = c.screenshot(); _save(tmp_path, f'browser_niivue_marker_{what}.png', png)
                img = np.asarray(Image.open(io.BytesIO(png)).convert('RGB'))
                assert bright_quadrant(img, threshold=200) == 'top-left', (what, tmp_path)
        finally:
            browser.close()


def test_browser_tutorial_widgets(jupyterlab, tmp_path):
    "Run the first tutorial in JupyterLab in headless Chromium; the widgets render and nothing leaves localhost."
    from playwright.sync_api import sync_playwright
    base, token, name = jupyterlab
    requests, t0 = [], time.time()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_FLAGS)
        try:
            ctx = browser.new_context(viewport={'width': 1400, 'height': 1000})
            ctx.on('request', lambda r: requests.append(r.url))
            page = ctx.new_page()
            page.on('websocket', lambda ws: requests.append(ws.url))
            page.set_default_timeout(TIMEOUT_MS)
            _run_all(page, base, token, name)
            run_s = time.time() - t0

            # the slice browser: slider, an image per slice and the confidence curve
            sb = page.locator('.flow2mask-browser')
            sb.first.wait_for()
            assert sb.locator('.widget-slider').count() >= 2                     # slice and opacity
            cut = page.evaluate("[...document.querySelectorAll('.jp-OutputArea button')].filter(b => b.offsetParent)"
                                ".filter(b => b.scrollWidth > b.clientWidth + 1).map(b => b.textContent.trim())")
            assert not cut, f'button words cut off: {cut}'   # 'least confident slice', 'Next slice to check' were
            imgs = sb.first.locator('img')
            assert imgs.count() >= 2
            before = imgs.first.get_attribute('src')
            ok, info = _not_blank(imgs.first.screenshot()); assert ok, f'slice browser image is blank: {info}'
            handle = sb.first.locator('.widget-slider .noUi-handle').first     # the slice slider: step it with the keyboard
            handle.focus(); page.keyboard.press('ArrowRight'); page.keyboard.press('ArrowRight')
            page.wait_for_function('([el, old]) => el.getAttribute("src") !== old',
                                   arg=[imgs.first.element_handle(), before])

            # the seed canvas: not blank, and a mouse outline fills a region
            seed = page.locator('.flow2mask-seed-canvas canvas').first
            seed.scroll_into_view_if_needed()
            shot0 = seed.screenshot()
            ok, info = _not_blank(shot0); assert ok, f'seed canvas is blank: {info}'
            status = page.locator('.flow2mask-seed-canvas .widget-html').first
            drawn_before = status.inner_text()
            _outline(page, seed, [(0.1, 0.1), (0.3, 0.1), (0.3, 0.3), (0.1, 0.3), (0.1, 0.11)])
            # the kernel got the strokes: the drawn-pixel count in the status line changes
            page.wait_for_function('([el, old]) => el.textContent !== old', arg=[status.element_handle(), drawn_before],
                                   timeout=30_000)
            time.sleep(1.0)
            shot1 = seed.screenshot()
            assert shot1 != shot0, 'drawing on the seed canvas changed nothing'

            # the NiiVue 3D view: a WebGL canvas with content
            nv_canvases = _webgl_canvases(page)
            assert nv_canvases, 'no WebGL canvas from the NiiVue view'
            nv_canvases[0].scroll_into_view_if_needed(); time.sleep(1.5)
            nv_png = nv_canvases[0].screenshot()
            _save(tmp_path, 'browser_niivue.png', nv_png)
            ok, info = _not_blank(nv_png); assert ok, f'NiiVue canvas is blank: {info}'

            # a screenshot for people: the slice browser in view
            sb.first.scroll_into_view_if_needed(); time.sleep(0.5)
            shot = _save(tmp_path, 'browser_tutorial.png', page.screenshot())
            _save(tmp_path, 'browser_seed_canvas.png', shot1)
            print(f'tutorial ran in {run_s:.0f} s; {len(requests)} requests; screenshots in {shot.parent}')
        except Exception:
            try: _save(tmp_path, 'browser_failure.png', page.screenshot(full_page=True))
            except Exception: pass
            raise
        finally:
            browser.close()
    outside = sorted({u for u in requests if not _is_local(u)})
    assert not outside, f'requests left localhost: {outside[:20]}'
    assert any(u.startswith(base) for u in requests)


def test_browser_annotators_desk(desk_lab, tmp_path):
    "In Chromium: an outline is drawn and autosaved, the eraser erases, Save writes and asks before replacing, the flow key shows."
    from playwright.sync_api import sync_playwright
    import re
    base, token, name, out = desk_lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_context(viewport={'width': 1400, 'height': 1400}).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            _run_all(page, base, token, name)
            seed = page.locator('.flow2mask-seed-canvas canvas').first; seed.scroll_into_view_if_needed()
            status = page.locator('.flow2mask-seed-canvas .widget-html').first
            drawn = lambda: int((re.search(r'6: (\d+)', status.inner_text()) or [0, 0])[1])
            _outline(page, seed, [(0.2, 0.2), (0.6, 0.2), (0.6, 0.6), (0.2, 0.6), (0.2, 0.21)])
            page.wait_for_function('el => /6: \\d+/.test(el.textContent)', arg=status.element_handle())
            filled = drawn(); assert filled > 50, status.inner_text()
            state = out / 'organ.flow2mask-autosave' / 'state.json'
            deadline = time.time() + 30
            while not (state.exists() and json.loads(state.read_text())['drawn'].get('1') == [6]) and time.time() < deadline:
                time.sleep(0.3)
            assert json.loads(state.read_text())['drawn'] == {'1': [6]}                 # autosaved as drawn
            page.locator('.flow2mask-seed-canvas button', has_text='eraser').click()
            _outline(page, seed, [(0.15, 0.4), (0.65, 0.4)])                            # an eraser stroke across it
            page.wait_for_function(f'el => {{ const m = /6: (\\d+)/.exec(el.textContent); return m && +m[1] < {filled}; }}',
                                   arg=status.element_handle())
            _save(tmp_path, 'browser_desk_canvas.png', seed.screenshot())
            save = page.locator('button.widget-button').filter(has_text=re.compile(r'^\s*Save\s*$'))
            message = page.locator('.widget-html').filter(has_text=re.compile('saved|Save again'))
            save.click(); message.first.wait_for()
            assert 'saved' in message.first.inner_text() and (out / 'saved.seg.nrrd').exists()
            save.click()
            page.get_by_text('press Save again to replace it').first.wait_for()        # asks before replacing
            box = page.locator('.flow2mask-browser .widget-checkbox', has_text='flow overlay')
            box.scroll_into_view_if_needed(); box.locator('input').check()
            page.get_by_text('full at').first.wait_for()                               # the wheel's key, in words
            key = page.locator('.flow2mask-browser img').last
            assert key.is_visible()
            _save(tmp_path, 'browser_desk.png', page.screenshot(full_page=True))
        except Exception:
            try: _save(tmp_path, 'browser_desk_failure.png', page.screenshot(full_page=True))
            except Exception: pass
            raise
        finally:
            browser.close()
