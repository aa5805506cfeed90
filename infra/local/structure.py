#!/usr/bin/env python3
"""The module structure of a Rust crate, read from its own imports.

    python3 infra/local/structure.py mermaid [SRC]   a Mermaid flowchart for the README
    python3 infra/local/structure.py check [SRC]     every import circle; exit 1 if any
    python3 infra/local/structure.py layers [SRC]    the modules by layer, as a table

SRC is a crate's source folder (default: shared/src of this project). Every `.rs` file
in it is a module: `lib.rs` is the crate root, `foo.rs` and `foo/mod.rs` are `foo`,
`foo/bar.rs` is `foo::bar`.

Module A imports module B when A's code names B through `crate::`, `super::` or
`self::`, through a `use` tree (nested braces included), through a child module's name,
or through a module it has imported by name (`use crate::lease;` then
`lease::acquire`). A path names the longest module it starts with:
`crate::a::b::Name` is `a::b` if that module exists, else `a`. An item a folder's
`mod.rs` re-exports is named as that folder's module: that is what the text says.

Not read: comments (doc comments too), string and character literals, and any item
under `#[cfg(test)]` (so `mod tests { ... }`, and a `tests.rs` declared
`#[cfg(test)] mod tests;`). A module re-exporting its own children (`pub use
client::Client;` in `connectwise/mod.rs`) imports nothing by it: a folder's front door
is not an arrow back into the folder. `#[path]` attributes and macro-generated modules
are not followed. Standard library only.
"""

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SRC = ROOT / "shared" / "src"
CIRCLE_COLOUR = "#d33"


# ---------------------------------------------------------------- reading Rust text


@dataclass(frozen=True)
class Token:
    kind: str  # "id" (identifier, keyword), "p" (punctuation; "::" is one), "lit"
    text: str
    line: int


def _ident_char(c):
    return c == "_" or c.isalnum()


def _ident_start(c):
    return c == "_" or c.isalpha()


def tokenize(text):
    """Rust source as identifiers, punctuation and literal placeholders; comments (line,
    nested block, doc) dropped, string/char/byte/raw-string literals reduced to one
    opaque token, raw identifiers (`r#match`) read as their name, lifetimes dropped."""
    tokens = []
    i, n, line = 0, len(text), 1

    def skip_quoted(j, quote):
        """From just after an opening quote to just after its closing one (escapes)."""
        nonlocal line
        while j < n:
            c = text[j]
            if c == "\\":
                if j + 1 < n and text[j + 1] == "\n":
                    line += 1
                j += 2
                continue
            if c == "\n":
                line += 1
            if c == quote:
                return j + 1
            j += 1
        return n

    def skip_raw(j, hashes):
        """From just after `r#..#"` to just after the closing `"#..#`."""
        nonlocal line
        closing = '"' + "#" * hashes
        end = text.find(closing, j)
        end = n if end < 0 else end + len(closing)
        line += text.count("\n", j, end)
        return end

    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    if text[j] == "\n":
                        line += 1
                    j += 1
            i = j
        elif c == '"':
            start = line
            i = skip_quoted(i + 1, '"')
            tokens.append(Token("lit", '""', start))
        elif c == "'":
            # A character literal ('a', '\n', '\u{1F600}', '"') or a lifetime / label ('a).
            if text.startswith("\\", i + 1):
                start = line
                i = skip_quoted(i + 1, "'")
                tokens.append(Token("lit", "''", start))
            elif i + 2 < n and text[i + 2] == "'":
                tokens.append(Token("lit", "''", line))
                if text[i + 1] == "\n":
                    line += 1
                i += 3
            else:
                j = i + 1
                while j < n and _ident_char(text[j]):
                    j += 1
                i = max(j, i + 1)
        elif c.isdigit():
            j = i
            while j < n and _ident_char(text[j]):
                j += 1
            tokens.append(Token("lit", text[i:j], line))
            i = j
        elif _ident_start(c):
            j = i
            while j < n and _ident_char(text[j]):
                j += 1
            word, after = text[i:j], text[j] if j < n else ""
            if word in ("r", "br", "cr") and after in ('"', "#"):
                k = j
                while k < n and text[k] == "#":
                    k += 1
                if k < n and text[k] == '"':
                    start = line
                    i = skip_raw(k + 1, k - j)
                    tokens.append(Token("lit", '""', start))
                    continue
                if word == "r" and k == j + 1 and k < n and _ident_start(text[k]):
                    m = k
                    while m < n and _ident_char(text[m]):
                        m += 1
                    tokens.append(Token("id", text[k:m], line))
                    i = m
                    continue
            if word in ("b", "c") and after == '"':
                start = line
                i = skip_quoted(j + 1, '"')
                tokens.append(Token("lit", '""', start))
                continue
            if word == "b" and after == "'":
                i = skip_quoted(j + 1, "'")
                tokens.append(Token("lit", "''", line))
                continue
            tokens.append(Token("id", word, line))
            i = j
        elif c == "$" and i + 1 < n and _ident_start(text[i + 1]):
            i += 1  # `$crate` in a macro is `crate`; `$x` fragments are harmless
        elif text.startswith("::", i):
            tokens.append(Token("p", "::", line))
            i += 2
        else:
            tokens.append(Token("p", c, line))
            i += 1
    return tokens


def _is(tokens, i, text, kind=None):
    return i < len(tokens) and tokens[i].text == text and (kind is None or tokens[i].kind == kind)


def _close(tokens, i):
    """Index just after the bracket group opening at i."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack = []
    while i < len(tokens):
        t = tokens[i]
        if t.kind == "p" and t.text in pairs:
            stack.append(pairs[t.text])
        elif t.kind == "p" and stack and t.text == stack[-1]:
            stack.pop()
            if not stack:
                return i + 1
        i += 1
    return i


def _is_cfg_test(tokens, i):
    """`#[cfg(test)]` starts at i (outer, or inner `#![cfg(test)]`)."""
    j = i + 1
    inner = _is(tokens, j, "!")
    if inner:
        j += 1
    shape = ["[", "cfg", "(", "test", ")", "]"]
    return all(_is(tokens, j + k, s) for k, s in enumerate(shape)), inner, j + len(shape)


def strip_test_code(tokens):
    """The tokens without items under `#[cfg(test)]`; also the names of file modules
    declared that way (`#[cfg(test)] mod tests;`) and whether the whole file is
    `#![cfg(test)]`."""
    kept, test_children, i = [], set(), 0
    while i < len(tokens):
        t = tokens[i]
        if not (t.kind == "p" and t.text == "#"):
            kept.append(t)
            i += 1
            continue
        is_test, inner, j = _is_cfg_test(tokens, i)
        if not is_test:
            kept.append(t)
            i += 1
            continue
        if inner:
            return [], set(), True
        while _is(tokens, j, "#") and _is(tokens, j + 1, "["):  # more attributes
            j = _close(tokens, j + 1)
        item = j
        while j < len(tokens):
            s = tokens[j]
            if s.kind == "p" and s.text in ("(", "["):
                j = _close(tokens, j)
            elif s.kind == "p" and s.text == "{":
                j = _close(tokens, j)
                break
            elif s.kind == "p" and s.text in (";", "}"):
                if s.text == ";":
                    j += 1
                break
            else:
                j += 1
        words = [s.text for s in tokens[item:j]]
        if "mod" in words:
            at = words.index("mod")
            if at + 2 < len(words) and words[at + 2] == ";":
                test_children.add(words[at + 1])
        i = j
    return kept, test_children, False


# ---------------------------------------------------------------- references


@dataclass
class Ref:
    segments: list  # the path as written, e.g. ["super", "client", "Client"]
    scope: tuple  # the (inline) module the path is written in
    line: int
    kind: str  # "use", "pub use" or "path"
    glob: bool = False
    alias: str = ""  # `use a::b as c;` names `b` as `c`


def _visibility_end(tokens, i):
    """Index after `pub` / `pub(crate)` / `pub(in a::b)` starting at i."""
    j = i + 1
    if _is(tokens, j, "("):
        j = _close(tokens, j)
    return j


def _parse_use_tree(tokens, i, prefix, out):
    """Parse one use tree at i under `prefix`; append (segments, glob, alias, line) to
    out, one per leaf (`self` is the prefix itself); return the index after the tree."""
    segments = list(prefix)
    while i < len(tokens):
        t = tokens[i]
        if t.kind == "p" and t.text == "::":
            i += 1  # a leading `::` (`use ::std::x`) or a separator
            if not segments:
                segments.append("::")
            continue
        if t.kind == "p" and t.text == "{":
            i += 1
            while i < len(tokens) and not _is(tokens, i, "}"):
                i = _parse_use_tree(tokens, i, segments, out)
                if _is(tokens, i, ","):
                    i += 1
                elif not _is(tokens, i, "}"):
                    i += 1  # unexpected: keep going
            return i + 1
        if t.kind == "p" and t.text == "*":
            out.append((segments, True, "", t.line))
            return i + 1
        if t.kind == "id":
            i += 1
            if _is(tokens, i, "::"):
                segments.append(t.text)
                continue
            alias = ""
            if _is(tokens, i, "as") and i + 1 < len(tokens):
                alias = tokens[i + 1].text
                i += 2
            if t.text == "self":
                out.append((segments, False, alias or (segments[-1] if segments else ""), t.line))
            else:
                out.append((segments + [t.text], False, alias, t.line))
            return i
        return i + 1
    return i


def references(tokens, module, inline=None):
    """Every path of a file's (test-free) tokens that may name a module of the crate;
    the inline modules it declares (`mod endpoint { ... }`) are added to `inline`."""
    refs, scopes, depth, i = [], [], 0, 0
    inline = set() if inline is None else inline
    n = len(tokens)

    def scope():
        return tuple(module) + tuple(name for name, _ in scopes)

    while i < n:
        t = tokens[i]
        if t.kind == "p" and t.text == "{":
            depth += 1
        elif t.kind == "p" and t.text == "}":
            depth -= 1
            if scopes and scopes[-1][1] == depth:
                scopes.pop()
        elif t.kind == "id" and t.text == "mod" and i + 2 < n and tokens[i + 1].kind == "id" \
                and _is(tokens, i + 2, "{"):
            scopes.append((tokens[i + 1].text, depth))
            inline.add(scope())
            depth += 1
            i += 3
            continue
        elif t.kind == "id" and t.text in ("pub", "use"):
            public = t.text == "pub"
            j = _visibility_end(tokens, i) if public else i
            if _is(tokens, j, "use", "id"):
                trees = []
                k = _parse_use_tree(tokens, j + 1, [], trees)
                for segments, glob, alias, line in trees:
                    refs.append(Ref(segments, scope(), line, "pub use" if public else "use",
                                    glob, alias))
                i = k
                continue
            i = j  # skip `pub(in crate::x)`: a visibility names no dependency
            continue
        elif t.kind == "id" and _is(tokens, i + 1, "::") and not _is(tokens, i - 1, "::") \
                and i + 2 < n and tokens[i + 2].kind == "id":
            segments, j = [t.text], i + 1
            while _is(tokens, j, "::") and j + 1 < n and tokens[j + 1].kind == "id":
                segments.append(tokens[j + 1].text)
                j += 2
            refs.append(Ref(segments, scope(), t.line, "path"))
            i = j
            continue
        i += 1
    return refs


# ---------------------------------------------------------------- the crate


@dataclass
class Edge:
    names: dict = field(default_factory=dict)  # item name -> lines
    modules: dict = field(default_factory=dict)  # module imported whole -> lines

    def tie(self):
        """The names that tie the two modules, in order of first appearance, and the lines."""
        named = self.names or self.modules
        order = sorted(named, key=lambda name: (min(named[name]), name))
        lines = sorted({line for lines in named.values() for line in lines})
        return order, lines


@dataclass
class Crate:
    src: Path
    files: dict  # module path (tuple) -> file path relative to src (str, with /)
    edges: dict  # (from, to) -> Edge
    warnings: list

    @property
    def modules(self):
        return sorted(self.files)

    def targets(self, module):
        return sorted(to for (frm, to) in self.edges if frm == module)


def module_of(relative):
    """`lib.rs` -> (), `a.rs` and `a/mod.rs` -> ("a",), `a/b.rs` -> ("a", "b")."""
    parts = list(relative.parts)
    stem = parts[-1][: -len(".rs")]
    if len(parts) == 1 and stem in ("lib", "main"):
        return ()
    if stem == "mod":
        return tuple(parts[:-1])
    return tuple(parts[:-1] + [stem])


def label(module):
    return "::".join(module) if module else "crate"


def resolve(segments, scope, modules, aliases):
    """The module a path names and the rest of the path after it (empty: the module
    itself), or None when the path leaves the crate."""
    first = segments[0]
    if first == "crate":
        full = list(segments[1:])
    elif first in ("self", "super"):
        base, k = list(scope), 1 if first == "self" else 0
        while k < len(segments) and segments[k] == "super":
            if not base:
                return None
            base.pop()
            k += 1
        full = base + list(segments[k:])
    elif first in aliases:
        full = list(aliases[first]) + list(segments[1:])
    elif tuple(scope) + (first,) in modules:
        full = list(scope) + list(segments)
    else:
        return None  # std, another crate, a type or enum (`Self::`, `Vec::new`)
    for length in range(len(full), -1, -1):
        if tuple(full[:length]) in modules:
            return tuple(full[:length]), full[length:]
    return None


def read_crate(src):
    src = Path(src)
    if not src.is_dir():
        print(f"structure: {src} is not a folder", file=sys.stderr)
        sys.exit(2)
    files, sources, warnings = {}, {}, []
    for path in sorted(src.rglob("*.rs")):
        relative = path.relative_to(src)
        if relative.parts[0] == "bin" or (relative.name == "main.rs" and (src / "lib.rs").exists()
                                          and len(relative.parts) == 1):
            continue  # other crates (binaries) in the same folder
        module = module_of(relative)
        if module in files:
            warnings.append(f"{files[module]} and {relative.as_posix()} are both `{label(module)}`;"
                            f" read {files[module]}")
            continue
        files[module] = relative.as_posix()
        sources[module] = path.read_text(encoding="utf-8", errors="replace")

    tokens, test_only = {}, set()
    for module, text in sources.items():
        kept, test_children, whole_file = strip_test_code(tokenize(text))
        if whole_file:
            test_only.add(module)
        tokens[module] = kept
        test_only.update(module + (child,) for child in test_children)
    for module in sorted(test_only):  # test modules and everything under them
        for other in list(files):
            if other[: len(module)] == module:
                files.pop(other, None)
                tokens.pop(other, None)
    modules = set(files)

    inline = set()  # inline modules (`mod endpoint { ... }`): not files, not drawn
    refs = {module: references(tokens[module], module, inline) for module in sorted(files)}
    for module in sorted(files):  # `pub use query::endpoint;` names `connectwise::endpoint`
        for ref in refs[module]:
            if ref.kind == "pub use" and not ref.glob and ref.segments:
                found = resolve(ref.segments, ref.scope, modules, {})
                if not found:
                    continue
                target, rest = found
                if not rest or (len(rest) == 1 and target + (rest[0],) in inline):
                    inline.add(tuple(ref.scope) + (ref.alias or ref.segments[-1],))

    edges = {}
    for module in sorted(files):
        aliases = {}
        for ref in refs[module]:  # `use crate::lease;` makes `lease::acquire` a path into `lease`
            if ref.kind != "path" and not ref.glob and ref.segments:
                found = resolve(ref.segments, ref.scope, modules, {})
                if found and not found[1]:
                    aliases[ref.alias or ref.segments[-1]] = found[0]
        for ref in refs[module]:
            if not ref.segments or ref.segments[0] == "::":
                continue
            found = resolve(ref.segments, ref.scope, modules, aliases if ref.kind == "path" else {})
            if not found:
                continue
            target, rest = found
            if len(rest) >= 2 and rest[0][:1].islower() and target + (rest[0],) not in inline:
                warnings.append(f"{files[module]}:{ref.line}: `{'::'.join(ref.segments)}` names a"
                                f" module `{label(target + (rest[0],))}` with no file; read as an"
                                f" import of `{label(target)}`")
            if target == module:
                continue
            if ref.kind == "pub use" and target[: len(module)] == module:
                continue  # a module re-exporting its own children
            edge = edges.setdefault((module, target), Edge())
            if ref.glob and not rest:
                edge.names.setdefault("*", []).append(ref.line)
            elif not rest:
                edge.modules.setdefault(target[-1] if target else "crate", []).append(ref.line)
            else:
                through_inline = len(rest) >= 2 and target + (rest[0],) in inline
                name = "::".join(rest[:2]) if through_inline else rest[0]
                edge.names.setdefault(name, []).append(ref.line)
    return Crate(src, files, edges, warnings)


# ---------------------------------------------------------------- graph


def circles(crate):
    """Strongly connected components of more than one module (Tarjan), each sorted,
    in order of their first module."""
    graph = {m: crate.targets(m) for m in crate.modules}
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for root in crate.modules:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def layers(crate):
    """Module -> layer: 1 for a module that imports nothing, else one above the highest
    module it imports; the modules of a circle share one layer."""
    circle_of = {m: k for k, members in enumerate(circles(crate)) for m in members}
    group = {m: ("circle", circle_of[m]) if m in circle_of else ("module", m)
             for m in crate.modules}
    members = {}
    for m in crate.modules:
        members.setdefault(group[m], []).append(m)
    layer = {}

    def layer_of(g):
        if g not in layer:
            layer[g] = 0  # guard; groups form a DAG
            below = [layer_of(group[t]) for m in members[g] for t in crate.targets(m)
                     if group[t] != g]
            layer[g] = 1 + max(below, default=0)
        return layer[g]

    sys.setrecursionlimit(max(1000, 4 * len(crate.modules) + 100))
    return {m: layer_of(group[m]) for m in crate.modules}


# ---------------------------------------------------------------- output


def shown_src(src):
    src = Path(src).resolve()
    try:
        return src.relative_to(ROOT).as_posix()
    except ValueError:
        return str(src)


def node_id(module):
    return "m_" + ("__".join(module) if module else "crate")


def mermaid(crate):
    members = {m for c in circles(crate) for m in c}
    circle_edges = {(a, b) for c in circles(crate) for a in c for b in c}
    lines = ["flowchart TD",
             f"    %% {len(crate.modules)} modules of {shown_src(crate.src)} and their imports;"
             f" regenerate: python3 infra/local/structure.py mermaid {shown_src(crate.src)}"]

    folders = {}  # folder (tuple) -> modules drawn in it
    for module in crate.modules:
        relative = Path(crate.files[module])
        folders.setdefault(tuple(relative.parts[:-1]), []).append(module)
    all_folders = set()
    for folder in folders:
        for length in range(1, len(folder) + 1):
            all_folders.add(folder[:length])

    def draw(folder, indent):
        pad = "    " * indent
        for module in sorted(folders.get(folder, [])):
            lines.append(f'{pad}{node_id(module)}["{label(module)}"]')
        for sub in sorted(f for f in all_folders if len(f) == len(folder) + 1 and f[:-1] == folder):
            name = "d_" + "__".join(sub)
            lines.append(f'{pad}subgraph {name}["{"/".join(sub)}/"]')
            draw(sub, indent + 1)
            lines.append(f"{pad}end")

    draw((), 1)
    red = []
    for number, (frm, to) in enumerate(sorted(crate.edges)):
        lines.append(f"    {node_id(frm)} --> {node_id(to)}")
        if (frm, to) in circle_edges:
            red.append(str(number))
    if members:
        lines.append(f"    classDef circle stroke:{CIRCLE_COLOUR},stroke-width:3px")
        lines.append("    class " + ",".join(node_id(m) for m in sorted(members)) + " circle")
        lines.append(f"    linkStyle {','.join(red)} stroke:{CIRCLE_COLOUR},stroke-width:2px")
    return "\n".join(lines) + "\n"


def check(crate):
    found = circles(crate)
    modules, imports = len(crate.modules), len(crate.edges)
    if not found:
        return f"no import circle among {modules} modules ({imports} imports)\n", 0
    out = [f"{len(found)} import circle{'s' if len(found) > 1 else ''} among {modules} modules"
           f" ({imports} imports) in {shown_src(crate.src)}:"]
    for number, members in enumerate(found, 1):
        out.append("")
        out.append(f"circle {number}: {', '.join(label(m) for m in members)}")
        for frm in members:
            for to in crate.targets(frm):
                if to in members:
                    names, lines = crate.edges[(frm, to)].tie()
                    where = "line" if len(lines) == 1 else "lines"
                    out.append(f"  {crate.files[frm]} -> {crate.files[to]}: {', '.join(names)}"
                               f" ({where} {', '.join(map(str, lines))})")
    out.append("")
    out.append("Break a circle by moving what ties it into a module both sides can import,"
               " or by passing it in.")
    return "\n".join(out) + "\n", 1


def layers_table(crate):
    layer = layers(crate)
    circle_of = {m: k for k, c in enumerate(circles(crate), 1) for m in c}
    imported_by = {m: 0 for m in crate.modules}
    for _, to in crate.edges:
        imported_by[to] += 1
    rows = [("layer", "module", "file", "imports", "imported by", "circle")]
    for module in sorted(crate.modules, key=lambda m: (layer[m], m)):
        rows.append((str(layer[module]), label(module), crate.files[module],
                     str(len(crate.targets(module))), str(imported_by[module]),
                     f"* {circle_of[module]}" if module in circle_of else ""))
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    right = {0, 3, 4}
    out = []
    for row in rows:
        cells = [cell.rjust(w) if k in right else cell.ljust(w)
                 for k, (cell, w) in enumerate(zip(row, widths))]
        out.append("  ".join(cells).rstrip())
    out.append("")
    top = max(layer.values(), default=0)
    out.append(f"{len(crate.modules)} modules in {top} layers; layer 1 imports no module of the"
               " crate, each other module sits one above the highest it imports.")
    if circle_of:
        out.append("* = in an import circle (numbered as `check` prints them); a circle's modules"
                   " share one layer.")
    return "\n".join(out) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="structure.py",
        description="The module structure of a Rust crate, from its own imports.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in [("mermaid", "print a Mermaid flowchart of the modules and their imports"),
                       ("check", "print every import circle; exit 1 if there is one"),
                       ("layers", "print the modules by layer")]:
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("src", nargs="?", default=str(DEFAULT_SRC),
                             help="the crate's source folder (default: shared/src)")
    args = parser.parse_args(argv)
    crate = read_crate(args.src)
    for warning in crate.warnings:
        print(f"structure: {warning}", file=sys.stderr)
    if args.command == "mermaid":
        sys.stdout.write(mermaid(crate))
        return 0
    if args.command == "layers":
        sys.stdout.write(layers_table(crate))
        return 0
    text, code = check(crate)
    sys.stdout.write(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
