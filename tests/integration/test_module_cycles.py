"""tools/module_cycles.py, the import-cycle guard of ./build.sh lint: it refuses a
cycle (naming each edge with file:line, grouped `use crate::{..}` imports included),
ignores comments and test files, and passes on the crate's own src/."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "module_cycles.py"


def run(src):
    return subprocess.run([sys.executable, str(TOOL), str(src)],
                          capture_output=True, text=True, cwd=src.parent)


def write(src, files):
    for name, text in files.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_crate_has_no_cycle():
    r = run(ROOT / "src")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == ""


def test_a_cycle_through_a_grouped_import_is_refused_with_its_edges(tmp_path):
    src = tmp_path / "src"
    write(src, {
        "lib.rs": "pub mod a;\npub mod b;\npub mod c;\n",
        "a.rs": "use crate::{\n    b::X,\n    c::{self, Y},\n};\n",
        "b.rs": "// crate::a in a comment is not an edge\nuse crate::c::Z;\n",
        "c.rs": "pub fn f() {\n    crate::a::g();\n}\n",
    })
    r = run(src)
    assert r.returncode == 1, r.stdout
    assert "import cycle among modules: a, b, c" in r.stdout
    assert "a -> b  at src/a.rs:2" in r.stdout
    assert "a -> c  at src/a.rs:3" in r.stdout
    assert "b -> c  at src/b.rs:2" in r.stdout
    assert "c -> a  at src/c.rs:2" in r.stdout
    assert "b -> a" not in r.stdout


def test_comments_test_files_and_test_modules_are_not_edges(tmp_path):
    src = tmp_path / "src"
    write(src, {
        "a.rs": "use crate::b::X;\n",
        "b.rs": "/* crate::a */\n/// [`crate::a`]\n#[cfg(test)]\nmod tests {\n    use crate::a;\n}\n",
        "b/tests.rs": "use crate::a;\n",
        "b/policy_test.rs": "use crate::a;\n",
        "bin/tool.rs": "use crate::a;\n",
    })
    r = run(src)
    assert r.returncode == 0, r.stdout
