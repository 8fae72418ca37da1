"""The one Java-style stringifier (sfbulk.javatext.java_string)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from lxml import etree

from sfbulk.javatext import java_string
from sfbulk.secrets import MASK, Secret


class _Str(str):
    pass


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),  # String.valueOf(null)
        (True, "true"),  # Boolean.toString
        (False, "false"),
        ("", ""),
        ("True", "True"),  # text stays text
        (0, "0"),
        (42, "42"),
        (2.5, "2.5"),
        ([1, "a"], "[1, 'a']"),
    ],
)
def test_java_string(value, text) -> None:
    assert java_string(value) == text


def test_null_text_is_a_parameter() -> None:
    assert java_string(None, null="") == ""
    assert java_string(False, null="") == "false"  # only None is null


def test_a_str_subclass_comes_back_as_plain_str() -> None:
    out = java_string(_Str("x"))
    assert out == "x" and type(out) is str


def test_secrets_stay_masked_unless_revealed() -> None:
    secret = Secret("s3cr3t-javatext")
    masked = java_string(secret)
    assert MASK in masked and "s3cr3t" not in masked
    assert java_string(secret, reveal=True) == "s3cr3t-javatext"


def test_an_element_prints_its_xml_without_unused_namespaces_or_tail() -> None:
    root = etree.fromstring(b'<s:Envelope xmlns:s="urn:s"><s:Body><a x="1">t</a>tail</s:Body></s:Envelope>')
    el = root[0][0]
    assert java_string(el) == '<a x="1">t</a>'


def test_it_does_not_import_lxml() -> None:
    code = "import sys, sfbulk.javatext; print('lxml.etree' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
