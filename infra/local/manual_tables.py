"""Writes (or, with --check, compares) the manual's tables that mirror files other than
the Rust code: each function's memory and timeout (template.yaml) beside its measured
peak (infra/sizing.json, written by `make bench`), in docs/operating.md. The store's
table is the Rust crate's to render (`shared::manual`)."""

import json
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "operating.md"
HEADROOM = 1.3


class _Template(yaml.SafeLoader):
    """CloudFormation's short tags (`!Ref`, `!GetAtt`, `!Sub`) read as nothing: the
    table needs only literal numbers."""


_Template.add_multi_constructor("!", lambda loader, suffix, node: None)


def sizing_table() -> str:
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_Template)
    sizing = json.loads((ROOT / "infra" / "sizing.json").read_text())
    peaks = sizing["peakMB"]
    lines = [
        f"Measured by `make bench` at {sizing['assets']:,} assets"
        + (f" ({sizing['measured']})" if sizing.get("measured") else "")
        + f"; each `MemorySize` at least {HEADROOM} × its peak (the template test).",
        "",
        "| function | `MemorySize` | measured peak | headroom | `Timeout` |",
        "|---|---|---|---|---|",
    ]
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        binary = resource["Metadata"]["BuildProperties"]["Binary"]
        properties = resource["Properties"]
        memory, peak = properties["MemorySize"], peaks.get(binary)
        headroom = f"{memory / peak:.1f} ×" if peak else "not measured"
        shown = f"{peak} MB" if peak else "—"
        lines.append(
            f"| {binary} | {memory} MB | {shown} | {headroom} | {properties['Timeout']} s |"
        )
    return "\n".join(lines) + "\n"


def replace(page: str, name: str, table: str) -> str:
    begin, end = f"<!-- {name}: begin -->\n", f"<!-- {name}: end -->"
    start = page.index(begin) + len(begin)
    stop = page.index(end, start)
    return page[:start] + table + page[stop:]


def main(argv: list[str]) -> int:
    page = PAGE.read_text(encoding="utf-8")
    wanted = replace(page, "sizing", sizing_table())
    if "--check" in argv:
        if page == wanted:
            return 0
        print(f"{PAGE.relative_to(ROOT)}'s sizing table is behind template.yaml or "
              "infra/sizing.json: run `make structure`", file=sys.stderr)
        return 1
    PAGE.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
