"""Writes (or, with --check, compares) docs/structure.md: the Mermaid picture of the
domain crate's modules that `structure.py mermaid` prints on standard input, in a page."""

import sys

HEAD = """# The domain crate's modules

Each box is a module of `shared/src`, each arrow an import; folders are boxes around
their modules. Drawn from the code by `make structure`; `make validate` fails when this
page is behind it.

```mermaid
"""


def page(mermaid: str) -> str:
    return HEAD + mermaid.rstrip("\n") + "\n```\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [a for a in argv if a != "--check"]
    if len(paths) != 1:
        print("usage: structure_page.py [--check] PAGE < mermaid", file=sys.stderr)
        return 2
    wanted = page(sys.stdin.read())
    if check:
        try:
            with open(paths[0], encoding="utf-8") as current:
                if current.read() == wanted:
                    return 0
        except FileNotFoundError:
            pass
        print(f"{paths[0]} is behind the code: run `make structure`", file=sys.stderr)
        return 1
    with open(paths[0], "w", encoding="utf-8") as out:
        out.write(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
