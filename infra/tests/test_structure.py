"""infra/local/structure.py, the picture of a crate's modules drawn from its imports, on
small fake crates written to a temporary folder: which paths are imports, which are not,
what `super` means where, and what `check`, `layers` and `mermaid` print. Standard
library only."""

import importlib.util
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "local" / "structure.py"

_spec = importlib.util.spec_from_file_location("structure", SCRIPT)
structure = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(structure)


def m(path):
    """A module path as the script keys it: "a::b" -> ("a", "b"), "crate" -> ()."""
    return () if path == "crate" else tuple(path.split("::"))


class FakeCrate(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="structure-"))
        self.src = self.tmp / "src"

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def write(self, files, order=None):
        """Write {relative path: Rust text} under src/ (in `order` if given)."""
        for relative in order or files:
            path = self.src / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(files[relative]))

    def crate(self, files):
        self.write(files)
        return structure.read_crate(self.src)

    def arrows(self, crate, source=None):
        """{(from, to): [names]} as "a::b" strings, optionally only from `source`."""
        return {(structure.label(a), structure.label(b)): edge.tie()[0]
                for (a, b), edge in crate.edges.items()
                if source is None or structure.label(a) == source}

    def run_script(self, *args):
        return subprocess.run([sys.executable, str(SCRIPT), *args, str(self.src)],
                              capture_output=True, text=True, timeout=60)


class ImportsTest(FakeCrate):
    def test_nested_use_trees_resolve_to_the_longest_module(self):
        """Breaking it looks like: `use crate::{a::{X, deep::Z}, b};` loses an arm or
        lands on the wrong module (`a` instead of `a::deep`), so the picture misses or
        misplaces arrows the code has."""
        crate = self.crate({
            "lib.rs": "pub mod a; pub mod b; pub mod app;",
            "a/mod.rs": "pub mod deep; pub struct X;",
            "a/deep.rs": "pub struct Z;",
            "b.rs": "pub fn f() {}",
            "app.rs": """
                use crate::{a::{X, deep::Z}, b};
                use std::collections::{HashMap, hash_map::{Entry}};
                fn go() { crate::a::deep::Z::new(); crate::a::Missing::call(); b::f(); }
            """,
        })
        self.assertEqual(self.arrows(crate, "app"), {
            ("app", "a"): ["X", "Missing"],
            ("app", "a::deep"): ["Z"],
            ("app", "b"): ["f"],
        })

    def test_super_in_mod_rs_is_the_parent_folder_and_in_a_plain_file_the_folder(self):
        """Breaking it looks like: `super::` in `foo/mod.rs` read as `foo` (a self-arrow,
        dropped) or in `foo/bar.rs` read as the crate root: arrows point one level off."""
        crate = self.crate({
            "lib.rs": "pub mod top; pub mod foo;",
            "top.rs": "pub struct T;",
            "foo/mod.rs": "mod bar; mod baz; use super::top::T; pub struct Thing;",
            "foo/bar.rs": """
                use super::{Thing, baz::Z};
                fn f() { self::g(); super::super::top::T; }
                fn g() {}
            """,
            "foo/baz.rs": "pub struct Z;",
        })
        self.assertEqual(self.arrows(crate), {
            ("foo", "top"): ["T"],
            ("foo::bar", "foo"): ["Thing"],
            ("foo::bar", "foo::baz"): ["Z"],
            ("foo::bar", "top"): ["T"],
        })

    def test_test_code_comments_and_literals_are_not_imports(self):
        """Breaking it looks like: a circle reported through a `#[cfg(test)] mod tests`,
        a comment, a doc example or a string, none of which the build links; or real
        imports after such a block missed because the block's end was misread."""
        names = ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "real", "real2"]
        files = {f"{n}.rs": "pub fn f() {}\npub struct S;" for n in names}
        files["lib.rs"] = "".join(f"pub mod {n};\n" for n in names + ["app"])
        files["app.rs"] = r'''
            //! crate::c5::f
            // use crate::c1::S;
            /* crate::c2::S /* nested */ crate::c3::S */
            /// ```
            /// crate::c4::f();
            /// ```
            fn lit<'a>(x: &'a str) -> char {
                let _ = "crate::c6::S \" crate::c6::f";
                let _ = r#"crate::c7::S " still raw"#;
                let _ = b"crate::c10::S";
                let q = '"';
                'outer: loop { break 'outer; }
                crate::real::f();
                q
            }
            #[cfg(test)]
            mod tests {
                use crate::c8::S;
                fn t() { crate::c9::f(); if true { } }
            }
            fn after() { crate::real2::f(); }
        '''
        crate = self.crate(files)
        self.assertEqual(set(self.arrows(crate, "app")), {("app", "real"), ("app", "real2")})

    def test_a_folder_re_exporting_its_children_is_not_an_arrow_but_its_own_use_is(self):
        """Breaking it looks like: every folder with a `pub use child::X;` front door
        in a circle with its children; or a child's import of the folder's re-export
        no longer drawn; or mod.rs code calling into a child not drawn."""
        crate = self.crate({
            "lib.rs": "pub mod conn;",
            "conn/mod.rs": """
                mod client; mod pager;
                pub use client::Client;
                pub use self::pager::{Pager, pages};
                pub(crate) use client::*;
            """,
            "conn/client.rs": "use super::Pager;\npub struct Client;",
            "conn/pager.rs": "use super::client::Client;\npub struct Pager;\npub fn pages() {}",
        })
        self.assertEqual(self.arrows(crate), {
            ("conn::client", "conn"): ["Pager"],
            ("conn::pager", "conn::client"): ["Client"],
        })
        self.assertEqual(structure.circles(crate), [])
        self.write({"conn/mod.rs": "mod client; mod pager;\npub use client::Client;\n"
                                   "pub fn build() { client::make(); }"})
        crate = structure.read_crate(self.src)
        self.assertEqual(self.arrows(crate, "conn"), {("conn", "conn::client"): ["make"]})
        self.assertEqual(structure.circles(crate), [[m("conn"), m("conn::client")]])

    def test_raw_identifiers_and_modules_imported_by_name(self):
        """Breaking it looks like: `pipeline/match.rs` (declared `mod r#match;`) never
        reached through `super::r#match::...`, or `use crate::lease;` then
        `lease::acquire()` tied by `lease` instead of the item actually used."""
        crate = self.crate({
            "lib.rs": "pub mod pipeline; pub mod lease;",
            "lease.rs": "pub fn acquire() {}",
            "pipeline/mod.rs": "mod r#match; mod run;",
            "pipeline/match.rs": "pub fn go() {}\npub fn other() {}",
            "pipeline/run.rs": """
                use super::r#match::{self, go};
                use crate::lease;
                fn f() { go(); r#match::other(); lease::acquire(); }
            """,
        })
        self.assertEqual(self.arrows(crate, "pipeline::run"), {
            ("pipeline::run", "pipeline::match"): ["go", "other"],
            ("pipeline::run", "lease"): ["acquire"],
        })

    def test_inline_modules_move_super_and_a_missing_module_is_warned(self):
        """Breaking it looks like: `super::` inside `mod inner { }` read from the file's
        module (an arrow one level too high), or `crate::gone::f` after `gone.rs` was
        removed drawn silently as an import of the crate root."""
        crate = self.crate({
            "lib.rs": "pub mod app; pub mod b;",
            "b.rs": "pub struct Y;",
            "app.rs": """pub struct X;
                mod inner {
                    use super::X;
                    use super::super::b::Y;
                }
                use crate::gone::f;
            """,
        })
        self.assertEqual(self.arrows(crate, "app"),
                         {("app", "b"): ["Y"], ("app", "crate"): ["gone"]})
        self.assertEqual(len(crate.warnings), 1)
        self.assertIn("app.rs:6: `crate::gone::f` names a module `gone` with no file",
                      crate.warnings[0])


class OutputTest(FakeCrate):
    CIRCLE = {
        "lib.rs": "pub mod a; pub mod b; pub mod c;",
        "a.rs": "use crate::b::Foo;\nuse crate::c::helper;\npub fn bar() {}\npub struct Baz;",
        "b.rs": "pub struct Foo;\nfn f() { super::a::bar(); }\nuse super::a::Baz;",
        "c.rs": "pub fn helper() {}",
    }

    def test_a_circle_is_printed_with_what_ties_it_and_check_exits_1(self):
        """Breaking it looks like: `check` passing (exit 0) on a crate whose modules import
        each other, or a report that does not say which file and names tie the circle."""
        self.write(self.CIRCLE)
        done = self.run_script("check")
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        self.assertIn("1 import circle among 4 modules (3 imports)", done.stdout)
        self.assertIn("circle 1: a, b\n", done.stdout)
        self.assertIn("  a.rs -> b.rs: Foo (line 1)\n", done.stdout)
        self.assertIn("  b.rs -> a.rs: bar, Baz (lines 2, 3)\n", done.stdout)
        self.assertNotIn("c.rs ->", done.stdout)

    def test_a_clean_tree_passes_check_with_exit_0(self):
        """Breaking it looks like: `check` failing a crate with no circle (a false alarm
        that would block `make test`), or miscounting its modules and imports."""
        self.write({
            "lib.rs": "pub mod a; pub mod b;",
            "a.rs": """
                use crate::b::Foo;
                #[cfg(test)]
                mod tests { use super::*; use crate::b::*; }
            """,
            "b.rs": "pub struct Foo;\n#[cfg(test)]\nmod tests { use crate::a::*; }",
        })
        done = self.run_script("check")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(done.stdout, "no import circle among 3 modules (1 imports)\n")

    def test_layers_put_leaves_first_and_mark_circles(self):
        """Breaking it looks like: a module that imports nothing above layer 1, a module
        not one above the highest it imports, or a circle's modules left unmarked."""
        self.write(self.CIRCLE)
        done = self.run_script("layers")
        self.assertEqual(done.returncode, 0, done.stderr)
        rows = {line.split()[1]: line.split() for line in done.stdout.splitlines()[1:5]}
        self.assertEqual(rows["crate"][0], "1")
        self.assertEqual(rows["c"][0], "1")
        self.assertEqual(rows["a"][0], "2")
        self.assertEqual(rows["b"][0], "2")
        self.assertEqual(rows["a"][-2:], ["*", "1"])
        self.assertEqual(rows["b"][-2:], ["*", "1"])
        self.assertNotIn("*", rows["c"])

    def test_mermaid_is_deterministic_and_one_arrow_per_import(self):
        """Breaking it looks like: the README's picture changing on every regeneration
        (files read in directory order), or a drawing that is not one node per module,
        one subgraph per folder and one arrow per import."""
        files = {
            "lib.rs": "pub mod x; pub mod conn; pub mod a;",
            "a.rs": "use crate::conn::Client; use crate::x::Y; use crate::conn::Client as C2;",
            "x.rs": "pub struct Y;",
            "conn/mod.rs": "mod client; pub use client::Client;",
            "conn/client.rs": "use crate::x::Y; pub struct Client;",
        }
        self.write(files)
        first = self.run_script("mermaid").stdout
        shutil.rmtree(self.src)
        self.write(files, order=sorted(files, reverse=True))
        second = self.run_script("mermaid").stdout
        self.assertEqual(first, second)
        lines = first.splitlines()
        self.assertEqual(lines[0], "flowchart TD")
        self.assertEqual([line.strip() for line in lines if "-->" in line], [
            "m_a --> m_conn",
            "m_a --> m_x",
            "m_conn__client --> m_x",
        ])
        self.assertIn('    subgraph d_conn["conn/"]', lines)
        self.assertIn('        m_conn__client["conn::client"]', lines)
        self.assertIn('    m_crate["crate"]', lines)
        self.assertFalse(any("classDef" in line for line in lines), "no circle, nothing red")


if __name__ == "__main__":
    unittest.main()
