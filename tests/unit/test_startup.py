"""The start-up fast paths of bundle loading give exactly what the general paths give.

* YAML: the libyaml loader and the pure-Python loader produce the same documents and line numbers;
* templates: lazily compiled templates render like eagerly compiled ones;
* the start-up cache: a bundle loaded from it (documents, their schema checks, template
  variables) is the bundle loaded without it, and any change of a file's text is a miss;
* heavy modules stay out of ``sfbulk load/extract`` start-up (checked in a fresh interpreter).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sfbulk
from sfbulk import yamlfile as bundle_yaml
from sfbulk.config import loader as config_loader
from sfbulk.config import yaml_config as config_yaml
from sfbulk.connector.bundle import cache as bundle_cache
from sfbulk.connector.bundle import loader as bundle_loader
from sfbulk.connector.bundle import schema as bundle_schema
from sfbulk.connector.bundle import templates as bundle_templates
from sfbulk.connector.connection import Connector, bundle_root
from sfbulk.errors import ConfigError

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "connector_fixture"
HAS_LIBYAML = bundle_yaml._loaders()[1] is not None
needs_libyaml = pytest.mark.skipif(not HAS_LIBYAML, reason="PyYAML without libyaml")


# --- YAML -------------------------------------------------------------------------------------


def lines_of(value: Any) -> Any:
    """The value with its line bookkeeping made explicit, for equality checks."""
    if isinstance(value, bundle_yaml.LineDict):
        return ("map", value.line, [(k, value.lines[k], lines_of(v)) for k, v in value.items()])
    if isinstance(value, bundle_yaml.LineList):
        return ("seq", value.line, [(line, lines_of(v)) for line, v in zip(value.lines, value, strict=True)])
    return ("scalar", type(value).__name__, value)


def outcome(text: str, fast: bool) -> Any:
    try:
        return ("ok", lines_of(bundle_yaml.parse_yaml(text, "doc.yaml", fast=fast)))
    except ConfigError as exc:
        return ("error", str(exc), exc.line)
    except Exception as exc:  # noqa: BLE001 - whatever it is, both paths must raise the same
        return ("raised", type(exc).__name__, str(exc))


def bundle_yaml_files() -> list[Path]:
    files = []
    for root in (bundle_root(), FIXTURE):
        files += [root / "connector.yaml", *sorted((root / "operations").glob("*.yaml"))]
    return files


@needs_libyaml
@pytest.mark.parametrize("path", bundle_yaml_files(), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_libyaml_and_pure_python_loaders_agree_on_the_bundles(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    fast = outcome(text, fast=True)
    assert fast[0] == "ok"
    assert fast == outcome(text, fast=False)


def test_the_fast_loader_is_used_when_libyaml_is_there() -> None:
    assert HAS_LIBYAML == bool(getattr(yaml, "__with_libyaml__", False))


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=12),
    st.floats(allow_nan=False),
    st.sampled_from(["yes", "no", "~", "1e3", "0x1f", "2024-01-02", ""]),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@needs_libyaml
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.sampled_from([False, True, None]), st.integers(2, 6), st.booleans())
def test_loaders_agree_on_dumped_documents(doc: Any, flow: bool | None, indent: int, unicode: bool) -> None:
    text = yaml.safe_dump(doc, default_flow_style=flow, indent=indent, allow_unicode=unicode, width=40)
    fast = outcome(text, fast=True)
    assert fast == outcome(text, fast=False)
    assert fast[0] == "ok"


yaml_alphabet = st.sampled_from(
    list("ab1 :-?,.[]{}#&*!|>'\"%@`\\\t\n\n\n  ")
    + [
        "\r\n",
        "\r",
        "\u2028",
        "\u2029",
        "\x85",
        "\ufeff",
        "é",
        "\x07",
        "\U0001f600",
        "- ",
        ": ",
        "key: ",
        "---",
        "...",
        "|-",
        ">+",
        "|2",
        "&a ",
        "*a",
        "!!str ",
        "%YAML 1.1",
        "? ",
        "\\n",
        "\\/",
        "\\x41",
        "\\u00e9",
        "0x",
        "1e3",
    ]
)


@needs_libyaml
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(yaml_alphabet, max_size=30).map("".join))
def test_loaders_agree_on_arbitrary_text(text: str) -> None:
    assert outcome(text, fast=True) == outcome(text, fast=False)


yaml_edit = st.tuples(st.floats(0, 1), st.integers(0, 3), yaml_alphabet)


@pytest.mark.slow
@needs_libyaml
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(bundle_yaml_files()), st.lists(yaml_edit, min_size=1, max_size=4))
def test_loaders_agree_on_edited_bundle_files(path: Path, edits: list[tuple[float, int, str]]) -> None:
    text = path.read_text(encoding="utf-8")
    for where, cut, insert in edits:
        at = int(where * len(text))
        text = text[:at] + insert + text[at + cut :]
    assert outcome(text, fast=True) == outcome(text, fast=False)


def test_the_shipped_bundle_takes_the_fast_path() -> None:
    for path in bundle_yaml_files():
        assert bundle_yaml._LIBYAML_DIFFERS.search(path.read_text(encoding="utf-8")) is None, path


@needs_libyaml
@pytest.mark.parametrize(
    "text",
    [
        "a: 1\na: 2\n",  # duplicate key: a ConfigError from the constructor
        "a: [1, 2\n",  # syntax error
        "a: 1\n---\nb: 2\n",  # two documents
        "%YAML 1.2\n---\na: 1\n",  # a directive libyaml and PyYAML judge differently
        "a: *x\n",  # unknown alias
        "? [1, 2]\n: x\n",  # unhashable key
        "a:\n\t- 1\n",  # tab indentation
        "a: \x00\n",  # a character PyYAML's reader refuses
        "a:\u2028  b\n",  # a Unicode line break
        "a: |#\n",  # a block scalar header PyYAML refuses
        "[a?]\n",  # '?' in a flow plain scalar
        "!\n",  # a bare tag
        "a\t\n",  # a trailing tab
        "\r\n\ufeff",  # a byte-order mark after the start
    ],
)
def test_loaders_agree_on_errors_and_edge_cases(text: str) -> None:
    assert outcome(text, fast=True) == outcome(text, fast=False)


# --- the schema check -----------------------------------------------------------------------


SCHEMAS = {"connector": bundle_schema.CONNECTOR_SCHEMA, "operation": bundle_schema.OPERATION_SCHEMA}


def test_jsonschema_accepts_every_bundle_document() -> None:
    for path in bundle_yaml_files():
        doc = bundle_yaml.parse_yaml(path.read_text(encoding="utf-8"), str(path), fast=False)
        bundle_schema.validate(
            doc, SCHEMAS["connector" if path.name == "connector.yaml" else "operation"], str(path)
        )


# --- templates --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="ab /-_.:;=?&%é", max_size=5), st.sampled_from(["{{ a }}", "{{b}}", "{{\tc }}"])
        ),
        max_size=6,
    ).map("".join),
    st.fixed_dictionaries({"a": st.text(max_size=6), "b": st.text(max_size=6), "c": st.text(max_size=6)}),
)
def test_lazy_inline_templates_render_like_eager_ones(source: str, values: dict[str, str]) -> None:
    for environment in (bundle_templates.INLINE_ENVIRONMENT, bundle_templates.PATH_ENVIRONMENT):
        lazy = bundle_templates.LazyTemplate.inline(environment, source)
        assert lazy.render(values) == environment.from_string(source).render(values)


def test_the_bundle_renders_the_same_requests_as_eagerly_compiled_templates() -> None:
    connector = Connector.load()
    root = bundle_root()
    eager_env = bundle_templates.body_environment(root / "templates")
    for op in connector.operations.values():
        if op.request is None:
            continue
        values = {name: f"v-{name}" for name in op.parameter_names}
        for param in op.parameters:
            if param.allowed:
                values[param.name] = param.allowed[0]
        bound = op.bind(values)
        rendered = op.render(bound)
        path_env = bundle_templates.PATH_ENVIRONMENT
        assert rendered.path == path_env.from_string(op.request.path).render(bound)
        for name, source in op.request.query:
            expected_value = bundle_templates.INLINE_ENVIRONMENT.from_string(source).render(bound)
            assert dict(rendered.query).get(name, "") == expected_value
        if op.request.body.kind == "template":
            assert op.request.body.template is not None
            expected = eager_env.get_template(op.request.body.template).render(bound).encode("utf-8")
            assert rendered.body == expected


def test_body_template_compile_errors_are_still_reported_at_load(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(FIXTURE, bundle)
    template = bundle / "templates" / "createNote.xml.j2"
    template.write_text(template.read_text().replace("{{ title }}", "{{ title | no_such_filter }}"))
    with pytest.raises(ConfigError, match="template syntax error: No filter named 'no_such_filter'"):
        Connector.load(bundle)


def test_lazy_body_template_uses_the_file_as_it_was_at_load(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(FIXTURE, bundle)
    connector = Connector.load(bundle)
    (bundle / "templates" / "createNote.xml.j2").write_text("changed after load")
    op = connector.operation("createNote")
    body = op.render(op.bind({"folder": "f", "title": "t", "body": "b"})).body
    assert body is not None and b"changed after load" not in body and b"<title>t</title>" in body


def test_lazy_templates_compile_once_under_concurrency() -> None:
    import threading

    calls = []

    def compile_() -> jinja2.Template:
        calls.append(1)
        return bundle_templates.INLINE_ENVIRONMENT.from_string("{{ a }}")

    lazy = bundle_templates.LazyTemplate(compile_, "{{ a }}")
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(lazy.render(a="x"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["x"] * 8 and len(calls) == 1


# --- the start-up cache ------------------------------------------------------------------------


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A start-up cache of its own, and no in-process memo of loaded bundles (these tests are
    about what the disk cache gives)."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("SFBULK_CACHE_DIR", str(directory))
    monkeypatch.setattr(bundle_loader, "_LOADED", OrderedDict())
    monkeypatch.setattr(bundle_loader, "_LOADED_LIMIT", 0)
    return directory


def snapshot(connector: Connector) -> Any:
    """Everything a loaded bundle is made of, with templates represented by what they render."""
    out = []
    for op in connector.operations.values():
        rendered = None
        if op.request is not None:
            values = {p.name: (p.allowed[0] if p.allowed else f"v-{p.name}") for p in op.parameters}
            rendered = op.render(op.bind(values))
        out.append((op, op.compiled.path_variables, rendered))
    return connector.definition.name, connector.definition.version, connector.definition.description, out


@pytest.mark.parametrize("root", [None, FIXTURE], ids=["bundled", "fixture"])
def test_a_bundle_from_the_cache_is_the_bundle_without_it(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch, root: Path | None
) -> None:
    cold = Connector.load(root)
    assert (cache_dir / "bundle-cache.json").is_file()
    warm = Connector.load(root)
    monkeypatch.setenv("SFBULK_CACHE_DIR", "")
    uncached = Connector.load(root)
    assert snapshot(cold) == snapshot(warm) == snapshot(uncached)


def through_json(document: Any) -> Any:
    """A document as it comes back from the cache file."""
    return bundle_yaml._decode_document(json.loads(json.dumps(bundle_yaml._encode_document(document))))


def test_cached_documents_keep_values_and_lines(cache_dir: Path) -> None:
    cache = bundle_cache.open_cache()
    assert cache is not None
    for path in bundle_yaml_files():
        document = bundle_yaml.parse_yaml(path.read_text(encoding="utf-8"), str(path), fast=False)
        assert lines_of(through_json(document)) == lines_of(document)
    odd = bundle_yaml.parse_yaml("a: [1, 2.5, .inf, null, true, '', x]\n1: {2: b}\nnull: c\n", "d.yaml")
    assert lines_of(through_json(odd)) == lines_of(odd)
    with pytest.raises(TypeError):
        bundle_yaml._encode_document(bundle_yaml.parse_yaml("a: 2024-01-02\n", "d.yaml"))


def test_an_edited_file_is_loaded_again(cache_dir: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(FIXTURE, bundle)
    Connector.load(bundle)
    template = bundle / "templates" / "createNote.xml.j2"
    template.write_text(template.read_text().replace("{{ title }}", "{{ titel }}"))
    with pytest.raises(ConfigError, match="'titel'"):
        Connector.load(bundle)
    operation = bundle / "operations" / "getNote.yaml"
    operation.write_text(operation.read_text().replace("method: GET", "method: FETCH"))
    with pytest.raises(ConfigError, match="FETCH"):
        Connector.load(bundle)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda text: "name: getNote\nname: again\n", "duplicate key 'name'"),  # YAML
        (lambda text: text.replace("method: GET", "method: FETCH"), "'FETCH' is not one of"),  # schema
        (
            lambda text: text.replace("{{ noteId }}", "{{ noteId | nope }}"),
            "No filter named 'nope'",
        ),  # template
    ],
)
def test_errors_are_never_cached(cache_dir: Path, tmp_path: Path, edit: Any, message: str) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(FIXTURE, bundle)
    operation = bundle / "operations" / "getNote.yaml"
    operation.write_text(edit(operation.read_text()))
    for _ in range(2):
        with pytest.raises(ConfigError, match=message):
            Connector.load(bundle)


def test_only_a_passed_schema_check_is_skipped(cache_dir: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(FIXTURE, bundle)
    operation = bundle / "operations" / "getNote.yaml"
    operation.write_text(operation.read_text().replace("method: GET", "method: FETCH"))
    cache = bundle_cache.open_cache()
    assert cache is not None
    cache.put("valid-operation", operation.read_text(), 42)  # a damaged entry for this very text
    cache.save()
    with pytest.raises(ConfigError, match="'FETCH' is not one of"):
        Connector.load(bundle)


@pytest.mark.parametrize("content", ["", "{", "[]", '{"format": 1, "entries": {"x": 1}}', "\x00\xff"])
def test_a_damaged_cache_is_ignored(cache_dir: Path, content: str) -> None:
    expected = snapshot(Connector.load())  # parsed from the files: no cache yet
    (cache_dir / "bundle-cache.json").write_text(content, encoding="latin-1")
    assert snapshot(Connector.load()) == expected


def test_damaged_entries_are_parsed_again(cache_dir: Path) -> None:
    expected = snapshot(Connector.load(FIXTURE))  # parsed from the files: no cache yet
    data = json.loads((cache_dir / "bundle-cache.json").read_text())
    data["entries"] = {
        key: ["m", "x", 3] if isinstance(value, list) and value and value[0] == "m" else 42
        for key, value in data["entries"].items()
    }
    (cache_dir / "bundle-cache.json").write_text(json.dumps(data))
    assert snapshot(Connector.load(FIXTURE)) == expected


def test_the_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SFBULK_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert bundle_cache._cache_file() == tmp_path / "sfbulk" / "bundle-cache.json"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")
    assert bundle_cache._cache_file() is None
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert bundle_cache._cache_file() == tmp_path / ".cache" / "sfbulk" / "bundle-cache.json"
    monkeypatch.setenv("SFBULK_CACHE_DIR", "")
    assert bundle_cache._cache_file() is None


def test_the_cache_key_covers_the_modules_computing_what_is_cached() -> None:
    modules = (
        bundle_cache,
        bundle_yaml,
        bundle_templates,
        bundle_schema,
        bundle_loader,
        config_yaml,
        config_loader,
    )
    package = Path(sfbulk.__file__ or "").parent
    computing = {Path(module.__file__ or "").relative_to(package).as_posix() for module in modules}
    assert computing | {"config/schema.yaml"} == set(bundle_cache.CACHED_BY)
    for name in bundle_cache.CACHED_BY:
        assert (package / name).is_file()


def test_an_unwritable_cache_is_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("SFBULK_CACHE_DIR", str(blocker / "cache"))
    assert Connector.load().name == "salesforcebulk"


# --- what start-up imports --------------------------------------------------------------------


def test_loading_the_bundle_imports_no_heavy_module(cache_dir: Path) -> None:
    code = (
        "import sys\nfrom sfbulk.connector.connection import Connector\nConnector.load()\n"
        "print(sorted(m for m in ('jsonschema', 'filelock', 'tqdm', 'yaml') if m in sys.modules))"
    )
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert first.stdout.strip() == "['jsonschema', 'yaml']"
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert second.stdout.strip() == "[]"  # the documents and their schema checks came from the cache


# --- YAML flows files: a text that passed the schema is not checked again ----------------------

FLOWS = """\
proxies:
  hello:
    inSequence:
      - payloadFactory: {media-type: json, format: '{"hello": "world"}'}
      - respond: {}
"""


def flows_schema_checks(flows: Path) -> str:
    """Load ``flows`` in a fresh interpreter; say whether jsonschema was imported, or the error."""
    code = (
        "import sys\nfrom sfbulk.config.loader import load_paths\nfrom sfbulk.errors import ConfigErrors\n"
        f"try:\n    load_paths([{str(flows)!r}])\nexcept ConfigErrors as exc:\n    print(exc)\n"
        "print('jsonschema' in sys.modules)"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_a_flows_text_that_passed_is_not_checked_again(cache_dir: Path, tmp_path: Path) -> None:
    flows = tmp_path / "flows.yaml"
    flows.write_text(FLOWS)
    assert flows_schema_checks(flows) == "True\n"  # checked, and remembered
    assert flows_schema_checks(flows) == "False\n"  # known to pass: jsonschema is not even imported
    flows.write_text(FLOWS.replace("respond: {}", "respond: {}\n      - lgo: {}"))
    edited = flows_schema_checks(flows)  # a new text is checked again, and its error reported
    assert "lgo" in edited and edited.endswith("True\n")
    assert flows_schema_checks(flows) == edited  # an error is never remembered


def test_flows_checks_with_and_without_the_cache_agree(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    files = sorted(examples.rglob("*.yaml"))
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        cold = config_loader.read_document(path, bundle_cache.open_cache())[0].data if _passes(path) else None
        monkeypatch.setenv("SFBULK_CACHE_DIR", "")
        uncached = config_loader.read_document(path)[0].data if _passes(path) else None
        monkeypatch.setenv("SFBULK_CACHE_DIR", str(cache_dir))
        assert cold == uncached, path
        if cold is not None:
            cache = bundle_cache.open_cache()
            assert cache is not None
            cache.put(config_loader.FLOWS_SCHEMA_PASSED, text, True)
            assert config_loader.read_document(path, cache)[0].data == cold


def _passes(path: Path) -> bool:
    try:
        config_loader.read_document(path)
    except ConfigError:
        return False
    return True


def test_the_flows_schema_reads_the_same_with_libyaml_and_without() -> None:
    text = (Path(config_yaml.__file__).parent / "schema.yaml").read_text(encoding="utf-8")
    assert config_yaml.schema() == yaml.load(text, Loader=yaml.SafeLoader)


# --- the in-process memo of loaded bundles ------------------------------------------------------


def test_a_bundle_loaded_again_from_the_same_files_is_the_same_definition(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(FIXTURE, bundle)
    first = Connector.load(bundle)
    assert Connector.load(bundle).definition is first.definition
    assert Connector.load(bundle) is not first  # connections are never shared between connectors


@pytest.mark.parametrize(
    "edit",
    [
        lambda b: (b / "operations" / "getNote.yaml").write_text(
            (b / "operations" / "getNote.yaml").read_text().replace("method: GET", "method: PUT")
        ),  # the same size: only the bytes tell
        lambda b: (b / "templates" / "createNote.xml.j2").write_text(
            (b / "templates" / "createNote.xml.j2").read_text() + "{# changed #}"
        ),
        lambda b: (b / "templates" / "new.xml").write_text("<new/>"),
    ],
    ids=["operation", "template", "new-template"],
)
def test_any_change_of_a_bundle_file_loads_it_again(tmp_path: Path, edit: Any) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(FIXTURE, bundle)
    first = Connector.load(bundle).definition
    edit(bundle)
    again = Connector.load(bundle).definition
    assert again is not first
    assert Connector.load(bundle).definition is again


def test_an_operation_file_kept_outside_operations_is_signed_too(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(FIXTURE, bundle)
    (bundle / "extra").mkdir()
    (bundle / "operations" / "getNote.yaml").rename(bundle / "extra" / "getNote.yaml")
    manifest = bundle / "connector.yaml"
    manifest.write_text(manifest.read_text().replace("operations/getNote.yaml", "extra/getNote.yaml"))
    first = Connector.load(bundle).definition
    assert Connector.load(bundle).definition is first
    moved = bundle / "extra" / "getNote.yaml"
    moved.write_text(moved.read_text().replace("method: GET", "method: PUT"))
    assert Connector.load(bundle).definition is not first


def test_a_broken_bundle_is_reported_at_every_load(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(FIXTURE, bundle)
    Connector.load(bundle)
    operation = bundle / "operations" / "getNote.yaml"
    operation.write_text(operation.read_text().replace("method: GET", "method: FETCH"))
    for _ in range(2):
        with pytest.raises(ConfigError, match="'FETCH' is not one of"):
            Connector.load(bundle)


def test_the_cache_file_is_decoded_once_per_process_until_it_is_replaced(cache_dir: Path) -> None:
    first = bundle_cache.open_cache()
    assert first is not None
    first.put("kind", "text", True)
    first.save()
    path = cache_dir / "bundle-cache.json"
    st = path.stat()
    # the same file (inode, size, time) holds what this process wrote: not decoded again
    path.write_bytes(b"x" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = bundle_cache.open_cache()
    assert again is not None and again.get("kind", "text") is True
    # another process replaces the file (os.replace: a new inode): its entries are read
    other = cache_dir / "other.json"
    other.write_text(json.dumps({"format": bundle_cache.CACHE_FORMAT, "entries": {}}))
    os.replace(other, path)
    assert bundle_cache.open_cache().get("kind", "text") is None  # type: ignore[union-attr]
