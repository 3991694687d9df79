"""Check that the committed library equals what the notebooks export (run from the repository root)."""
import filecmp, pathlib, shutil, subprocess, sys, tempfile

root = pathlib.Path(__file__).resolve().parents[1]
with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    for name in ('nbs', 'flow2mask_nb'):
        shutil.copytree(root / name, tmp / name, ignore=shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints'))
    shutil.copy(root / 'settings.ini', tmp)
    subprocess.run([sys.executable, '-c', 'from nbdev.doclinks import nbdev_export; nbdev_export()'], cwd=tmp, check=True)
    exported = {p.relative_to(tmp / 'flow2mask_nb') for p in (tmp / 'flow2mask_nb').rglob('*.py')}
    committed = {p.relative_to(root / 'flow2mask_nb') for p in (root / 'flow2mask_nb').rglob('*.py')}
    differ = sorted(str(p) for p in exported | committed
                    if p not in exported or p not in committed
                    or not filecmp.cmp(tmp / 'flow2mask_nb' / p, root / 'flow2mask_nb' / p, shallow=False))
if differ:
    print('flow2mask_nb/ differs from what nbs/ exports: ' + ', '.join(differ) + ' (run nbdev_export and commit both)')
    sys.exit(1)
print(f'library matches the notebooks ({len(committed)} modules)')
