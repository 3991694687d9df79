"""Rewrite the generated tables of docs/results.md from the JSON the benches write into bench/results/.

Run:  .venv/bin/python bench/results_page.py [--check] [--page docs/results.md] [--results bench/results]

Each generated table sits between `<!-- generated: NAME -->` and `<!-- end generated: NAME -->`; everything outside
the markers is left untouched. Each table is formatted by the bench that writes its JSON (`TABLES`); a table whose
JSON is missing stays as it is, with a line saying so. `--check` writes nothing, prints the difference and exits 1
when the page differs from what the JSON gives.
"""
import argparse, difflib, json, pathlib, re, sys

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))


def cases_table(res: dict) -> str:
    "One seed per case and completion beside their baselines (bench/cases.py)."
    from cases import page_table
    return page_table(res)


def effort_table(res: dict) -> str:
    "Slices to each Dice and Dice after n slices, per annotator (bench/effort.py)."
    from flow2mask_nb.effort import format_effort
    return format_effort(res['summary'])


def effort_by_case_table(res: dict) -> str:
    "Per case, slices to 0.90 and Dice after 3, flow2mask beside contour interpolation (bench/effort.py)."
    from flow2mask_nb.effort import format_effort_by_case
    return format_effort_by_case(res['results'])


def borders_table(res: dict) -> str:
    "Per structure, its size, strictness and whether the image shows its borders (bench/label_borders.py)."
    from label_borders import borders_table
    return borders_table(res)


def stop_table(res: dict) -> str:
    "The stop's rule families scored left out (bench/stop_loo.py)."
    from stop_loo import markdown
    return markdown(res['rows'], res['names'])


def interactive_table(res: dict) -> str:
    "Seconds per call and per correction against the bars (bench/interactive.py)."
    from interactive import latency_table
    return latency_table(res)


TABLES = {'cases': ('cases.json', cases_table), 'effort': ('effort.json', effort_table),
          'effort_by_case': ('effort.json', effort_by_case_table), 'label_borders': ('label_borders.json', borders_table),
          'stop_loo': ('stop_loo.json', stop_table), 'interactive': ('interactive.json', interactive_table)}


def marked(name: str) -> re.Pattern:
    "What lies between the two markers of table `name` (the markers themselves are groups 1 and 2)."
    return re.compile(rf'(<!-- generated: {re.escape(name)} -->\n).*?(<!-- end generated: {re.escape(name)} -->)', re.S)


def render(page: str, results: pathlib.Path, tables: dict = TABLES) -> str:
    "`page` with every marked table whose JSON is in `results` formatted afresh; the rest as it was."
    for name, (file, table) in tables.items():
        block, path = marked(name), results / file
        if not block.search(page): print(f'{name}: no markers in the page, nothing to rewrite')
        elif not path.exists(): print(f'{name}: {path} is missing, its table is left as it is')
        else:
            text = table(json.loads(path.read_text()))
            page = block.sub(lambda m: f'{m[1]}\n{text}\n\n{m[2]}', page)
    return page


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--check', action='store_true', help='write nothing; exit 1 when the page differs from the JSON')
    ap.add_argument('--page', default=str(HERE.parent / 'docs' / 'results.md'), help='the markdown page to rewrite')
    ap.add_argument('--results', default=str(HERE / 'results'), help='the folder of the benches\' JSON')
    a = ap.parse_args(argv)
    page = pathlib.Path(a.page)
    old = page.read_text()
    new = render(old, pathlib.Path(a.results))
    if a.check:
        sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), str(page), 'from the JSON'))
        print(f'{page}: ' + ('differs from the JSON' if new != old else 'matches the JSON'))
        return int(new != old)
    if new != old: page.write_text(new)
    print(f'{page}: ' + ('rewritten' if new != old else 'already up to date'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
