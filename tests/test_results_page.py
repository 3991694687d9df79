"bench/results_page.py rewrites only what lies between its markers, from the benches' JSON."
import json, pathlib, sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / 'bench'))
import results_page

PAGE = """# Results

Prose before, kept as written.

<!-- generated: stop_loo -->

| an old hand-written table |
|---|

<!-- end generated: stop_loo -->

Prose between, kept as written.

<!-- generated: effort -->
| the effort table, whose JSON is missing |
<!-- end generated: effort -->

Prose after.
"""
STOP = dict(names=['case_a', 'case_b'],
            rows=[dict(name='the default now', candidates=1, in_sample=0.7512, left_out_mean=0.7498,
                       left_out=dict(case_a=0.8123, case_b=0.6871))])


def page_and_results(tmp_path):
    "A page with two marked tables and a results folder holding the JSON of one of them."
    (tmp_path / 'results').mkdir()
    (tmp_path / 'results' / 'stop_loo.json').write_text(json.dumps(STOP))
    (tmp_path / 'results.md').write_text(PAGE)
    return ['--page', str(tmp_path / 'results.md'), '--results', str(tmp_path / 'results')]


def test_rewrites_the_marked_table_and_keeps_the_prose(tmp_path, capsys):
    args = page_and_results(tmp_path)
    assert results_page.main(['--check', *args]) == 1                        # the old table differs from the JSON
    assert (tmp_path / 'results.md').read_text() == PAGE                    # --check writes nothing
    assert results_page.main(args) == 0
    page = (tmp_path / 'results.md').read_text()
    assert 'an old hand-written table' not in page
    assert '| the default now | 1 | 0.751 | **0.750** | 0.812 | 0.687 |' in page
    assert (page.index('<!-- generated: stop_loo -->') < page.index('| the default now')
            < page.index('<!-- end generated: stop_loo -->'))
    for prose in ('# Results\n\nProse before, kept as written.\n\n', '\n\nProse between, kept as written.\n\n',
                  '\n\nProse after.\n'):
        assert prose in page
    assert '| the effort table, whose JSON is missing |' in page               # no JSON: left as it is
    assert 'effort.json is missing' in capsys.readouterr().out
    assert results_page.main(['--check', *args]) == 0                        # now the page matches the JSON
    assert results_page.main(args) == 0 and (tmp_path / 'results.md').read_text() == page   # and stays put
