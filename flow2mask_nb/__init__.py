__version__ = "0.1.0"
"""flow2mask_nb: draw a structure on one slice, get it on every slice. The public API, imported on first use so
that `import flow2mask_nb` (and `flow2mask --help`) stays quick: `from flow2mask_nb import Session, read_volume`."""

_API = {   # name -> the module that defines it (no name of a submodule: importing it would shadow the name)
    'Volume': 'io', 'read_volume': 'io', 'read_labels': 'io', 'write_volume': 'io', 'to_slices': 'io',
    'from_slices': 'io', 'annotate': 'session', 'write_report': 'session', 'Session': 'session', 'advise': 'session',
    'revise': 'session', 'complete': 'session', 'StopRule': 'stop', 'suggest_slice': 'select',
    'PropagateSettings': 'propagate', 'FlowSettings': 'flowsource', 'FitSettings': 'train', 'fit': 'train',
    'Intensity': 'preprocess', 'Progress': 'progress', 'Bars': 'progress', 'Flow2MaskError': 'errors',
    'InputError': 'errors', 'Cancelled': 'errors',
    'make_flows': 'flowfile', 'read_flows_file': 'flowfile', 'save_flows_file': 'flowfile', 'find_flows': 'flowfile',
    'Structure': 'segments', 'export_labels': 'segments', 'dice': 'metrics', 'make_phantom': 'phantom',
    'run_batch': 'batch', 'Annotator': 'notebook', 'SliceBrowser': 'notebook', 'view3d': 'notebook',
}
__all__ = sorted(_API)

def __getattr__(name):
    "Import a public name from its module the first time it is used."
    if name not in _API: raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f'{__name__}.{_API[name]}'), name)
    globals()[name] = value
    return value

def __dir__(): return sorted(set(globals()) | set(__all__))
