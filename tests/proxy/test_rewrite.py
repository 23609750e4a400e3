"""What the proxy finds to compress in a request, and the request it builds back (pure)."""

from __future__ import annotations

import json

import pytest

from ctxcomp.proxy.config import Switches
from ctxcomp.proxy.rewrite import ELIDED, RequestError, extract

TEXT = ("Alpha beta gamma delta. " * 10).strip()
ALL = Switches(tools=True, documents=True, extension=True, system=True)


def user(content: object) -> dict:
    return {"role": "user", "content": content}


def test_documents_ids_titles_and_the_query() -> None:
    content = (f"<documents>\n<document id=\"a\" title='Rivers'>\n{TEXT}\n</document>\n"
               f"<document id=b>{TEXT}</document>\n<document>short</document>\n</documents>\nWhich river?")
    found = extract({"messages": [user(content)]}, Switches(), min_chars=20)
    assert found.query == "Which river?"
    assert [p.text for p in found.pieces] == [TEXT.strip(), TEXT.strip()]
    assert [p.title for p in found.pieces] == ["Rivers", "b"]
    a, b = (p.id for p in found.pieces)
    assert found.apply({})["messages"][0]["content"] == content  # nothing kept changed: the same text
    out = found.apply({a: "Alpha beta.", b: None})["messages"][0]["content"]
    assert out == ("<documents>\n<document id=\"a\" title='Rivers'>\nAlpha beta.\n</document>\n"
                   "<document>short</document>\n</documents>\nWhich river?")


def test_a_bare_documents_block_is_one_piece() -> None:
    content = f"<documents>{TEXT}</documents> Q?"
    found = extract({"messages": [user(content)]}, Switches(), min_chars=20)
    (piece,) = found.pieces
    assert found.apply({piece.id: None})["messages"][0]["content"] == f"<documents>{ELIDED}</documents> Q?"


def test_short_pieces_and_switched_off_kinds_are_left_alone() -> None:
    body = {"messages": [{"role": "system", "content": f"<document>{TEXT}</document>"},
                         user(f"<document>{TEXT}</document> Q?"),
                         {"role": "tool", "tool_call_id": "c", "content": TEXT}]}
    assert [p.kind for p in extract(body, Switches(), min_chars=20).pieces] == ["document", "tool"]
    assert [p.kind for p in extract(body, ALL, min_chars=20).pieces] == ["document", "document", "tool"]
    assert extract(body, Switches(tools=False, documents=False), min_chars=20).pieces == []
    assert extract(body, ALL, min_chars=len(TEXT) + 1).pieces == []


def test_json_tool_results_keep_their_structure() -> None:
    value = {"a": [TEXT, 1, {"b": TEXT, "n": None}], "short": "x", "nested": json.dumps({"k": TEXT})}
    found = extract({"messages": [{"role": "tool", "content": json.dumps(value)}]}, Switches(), min_chars=20)
    assert [p.where.rsplit(" at ", 1)[1] for p in found.pieces] == ["$.a[0]", "$.a[2].b"]
    assert any("holding JSON" in n for n in found.notes)
    first, second = (p.id for p in found.pieces)
    out = json.loads(found.apply({first: "Alpha.", second: None})["messages"][0]["content"])
    assert out == {"a": ["Alpha.", 1, {"b": ELIDED, "n": None}], "short": "x", "nested": value["nested"]}


def test_a_json_string_at_the_root_and_json_without_strings() -> None:
    found = extract({"messages": [{"role": "tool", "content": json.dumps(TEXT)},
                                  {"role": "tool", "content": json.dumps(list(range(50)))}]},
                    Switches(), min_chars=20)
    (piece,) = found.pieces
    assert json.loads(found.apply({piece.id: "Alpha."})["messages"][0]["content"]) == "Alpha."
    assert any("passed through unchanged" in n for n in found.notes)


def test_text_tool_results_and_content_parts() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:,"}}
    body = {"messages": [{"role": "tool", "content": [{"type": "text", "text": "{not json " + TEXT}, image]}]}
    found = extract(body, Switches(), min_chars=20)
    (piece,) = found.pieces
    parts = found.apply({piece.id: None})["messages"][0]["content"]
    assert parts == [{"type": "text", "text": ELIDED}, image]
    assert body["messages"][0]["content"][0]["text"].startswith("{not json")  # the caller's dict is untouched


def test_the_extension() -> None:
    body = {"model": "m", "messages": [user([{"type": "text", "text": "Q?"}])],
            "ctxcomp": {"documents": [TEXT, {"id": 7, "text": TEXT}, {"id": "e", "content": " "}]}}
    found = extract(body, Switches(), min_chars=20)
    assert [p.id for p in found.pieces] == ["x0", "x1"] and [p.id for p in found.passthrough] == ["x2"]
    out = found.apply({"x0": None, "x1": "Alpha."})
    assert "ctxcomp" not in out and "ctxcomp" in body
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": '<documents>\n<document id="7">\nAlpha.\n</document>\n'
                                 '<document id="e">\n \n</document>\n</documents>'},
        {"type": "text", "text": "Q?"}]


@pytest.mark.parametrize(("body", "param"), [
    ({}, "messages"),
    ({"messages": "hi"}, "messages"),
    ({"messages": [1]}, "messages"),
    ({"messages": [], "ctxcomp": []}, "ctxcomp"),
    ({"messages": [], "ctxcomp": {"docs": []}}, "ctxcomp"),
    ({"messages": [user("q")], "ctxcomp": {"documents": "x"}}, "ctxcomp.documents"),
    ({"messages": [user("q")], "ctxcomp": {"documents": [3]}}, "ctxcomp.documents[0]"),
    ({"messages": [{"role": "system", "content": "s"}], "ctxcomp": {"documents": ["d"]}}, "messages"),
])
def test_malformed_requests(body: dict, param: str) -> None:
    with pytest.raises(RequestError) as info:
        extract(body, Switches(), min_chars=20)
    assert info.value.param == param
