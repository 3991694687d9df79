"The public API at the package top: every name is the object its module defines, and importing the package is light."
import importlib, subprocess, sys
import flow2mask_nb


def test_every_public_name_is_its_modules_object():
    for name, module in flow2mask_nb._API.items():
        assert getattr(flow2mask_nb, name) is getattr(importlib.import_module(f'flow2mask_nb.{module}'), name), name
    assert set(flow2mask_nb.__all__) <= set(dir(flow2mask_nb))


def test_from_the_package_top():
    from flow2mask_nb import Session, read_volume, annotate, export_labels   # noqa: F401  (as the README writes it)
    try: flow2mask_nb.no_such_name
    except AttributeError as e: assert 'no_such_name' in str(e)
    else: raise AssertionError('an unknown name did not raise AttributeError')


def test_importing_the_package_does_not_import_torch():
    code = "import sys, flow2mask_nb; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == 'False', out
