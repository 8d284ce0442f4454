"""azmm_magic.core.lazy.import_jsonschema: jsonschema without building rfc3987_syntax's IRI grammars up front
(they cost ~1.5 s of CPU at import and ~0.3 s at interpreter exit, which a kernel pays at shut-down), with
jsonschema's format checks unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import json, sys
sys.path.insert(0, {root!r})
{imports}
deferred = "rfc3987_syntax" not in sys.modules and "lark" not in sys.modules
checker = js.FormatChecker()
samples = ["http://example.com/p\\u00e4th?q=1#f", "not an iri", "//host/path", "http://[::1]:80/", "", 7]
verdicts = {{f: [checker.conforms(s, f) for s in samples] for f in ("iri", "iri-reference", "uri", "email")}}
real = sys.modules.get("rfc3987_syntax")
print(json.dumps({{
    "deferred": deferred,
    "checkers": sorted(checker.checkers),
    "verdicts": verdicts,
    "real_after": real is None or real.__doc__ != "Stand-in while jsonschema is imported (azmm_magic.core.lazy).",
    "valid": js.Draft202012Validator({{"type": "string", "format": "iri"}}).is_valid("x"),
}}))
"""


def probe(imports: str) -> dict[str, object]:
    code = textwrap.dedent(_PROBE).format(root=str(ROOT), imports=imports)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_import_jsonschema_defers_the_iri_grammar_and_keeps_every_format_check():
    ours = probe("from azmm_magic.core.lazy import import_jsonschema\njs = import_jsonschema()")
    plain = probe("import jsonschema as js")
    assert ours["deferred"] is True  # the Lark grammars are not built by the import
    assert ours["checkers"] == plain["checkers"]  # the same formats are checked (iri included when installed)
    assert ours["verdicts"] == plain["verdicts"]  # with the same verdicts (the first iri check imports the package)
    assert ours["real_after"] is True  # the stand-in never outlives the import: later imports get the real package
    assert ours["valid"] is True


def test_import_jsonschema_returns_the_module_already_imported():
    import jsonschema

    from azmm_magic.core.lazy import import_jsonschema

    assert import_jsonschema() is jsonschema


_FIRST_IMPORT = """
import sys
sys.path.insert(0, {root!r})
{code}
assert "jsonschema" in sys.modules
assert "rfc3987_syntax" not in sys.modules and "lark" not in sys.modules
print("ok")
"""


def first_import_is_lazy(code: str) -> None:
    script = textwrap.dedent(_FIRST_IMPORT).format(root=str(ROOT), code=textwrap.dedent(code))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_emulator_request_check_imports_jsonschema_through_it():
    first_import_is_lazy("""
        from azmm_magic.emulator.validation import check_schema
        check_schema({"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 16})
    """)


def test_structured_outputs_import_jsonschema_through_it():
    first_import_is_lazy("""
        from azmm_magic.core.structured import response_spec
        spec = response_spec({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
        assert spec.parse('{"n": 1}') == {"n": 1}
    """)
