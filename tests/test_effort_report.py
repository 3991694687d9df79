"bench/effort.py --report-only: the last run's report over some of its cases, nothing run or written."
import json, pathlib, sys
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / 'bench'))
import effort as effort_bench


def structure(worst, interpolation):
    return dict(name='s', runs={'worst': dict(curve=worst), 'interpolation (even)': dict(curve=interpolation)})


def test_saved_report_over_some_cases(tmp_path, monkeypatch):
    results = [dict(case='easy', structures=[structure([0.95], [0.5, 0.92])]),
               dict(case='hard', structures=[structure([0.5] * 12, [0.4] * 12)])]
    (tmp_path / 'results').mkdir()
    (tmp_path / 'results' / 'effort.json').write_text(json.dumps(dict(results=results)))
    monkeypatch.setattr(effort_bench, 'HERE', tmp_path)
    whole = effort_bench.saved_report(None, '')
    assert whole.startswith('2 cases: easy, hard') and '| all cases | 2 | 7.00 | 7.50 |' in whole, whole
    easy = effort_bench.saved_report(None, 'hard')
    assert easy.startswith('1 case: easy') and '| all cases | 1 | 1.00 | 2.00 |' in easy, easy
    assert effort_bench.saved_report('hard', '').startswith('1 case: hard')
    with pytest.raises(SystemExit, match='no case'):
        effort_bench.saved_report('easy', 'easy')
