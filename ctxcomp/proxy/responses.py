"""``/v1/responses`` requests seen as chat requests, so one rewrite serves both APIs.

:func:`chat_view` turns a Responses body into a chat-shaped one: ``input`` (a string, or a
list of items) becomes ``messages``; a message item keeps its role and its content
(``input_text``/``output_text`` parts become ``text`` parts); a ``function_call_output``
item becomes a ``tool`` message; every other item (function calls, reasoning ...) becomes
a message of a role the rewrite leaves alone. The returned function maps a rewritten view
back onto the original body: only the texts change, every other field stays as it came.
``instructions`` (the system prompt) is never compressed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ctxcomp.proxy.config import EXTENSION_KEY
from ctxcomp.proxy.rewrite import RequestError

_TEXT_TYPES = ("input_text", "output_text")
_OTHER = "_responses_item"  # a role no rewrite touches
_ORIGINAL_TYPE = "_responses_type"


def _content_view(content: Any) -> Any:
    if not isinstance(content, list):
        return content
    return [{**p, "type": "text", _ORIGINAL_TYPE: p["type"]}
            if isinstance(p, Mapping) and p.get("type") in _TEXT_TYPES else p for p in content]


def _content_back(content: Any, role: str) -> Any:
    if not isinstance(content, list):
        return content
    out = []
    for part in content:
        if isinstance(part, Mapping) and part.get("type") == "text":
            original = part.get(_ORIGINAL_TYPE) or ("output_text" if role == "assistant" else "input_text")
            part = {**{k: v for k, v in part.items() if k != _ORIGINAL_TYPE}, "type": original}
        out.append(part)
    return out


def chat_view(body: Mapping[str, Any]) -> tuple[dict[str, Any], Callable[[dict[str, Any]], dict[str, Any]]]:
    """A chat-shaped view of a Responses request, and the function that maps a rewritten
    view back to a Responses body.

    Raises:
        RequestError: ``input`` missing, or neither a string nor a list of objects.
    """
    items = body.get("input")
    if items is None:
        raise RequestError("missing required parameter: 'input'", "input")
    as_string = isinstance(items, str)
    if as_string:
        items = [{"role": "user", "content": items}]
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise RequestError("'input' must be a string or a list of input items", "input")
    messages: list[dict[str, Any]] = []
    for item in items:
        if item.get("type") == "function_call_output":
            messages.append({"role": "tool", "content": item.get("output")})
        elif isinstance(item.get("role"), str) and item.get("type", "message") == "message":
            messages.append({"role": item["role"], "content": _content_view(item.get("content"))})
        else:
            messages.append({"role": _OTHER})
    view: dict[str, Any] = {"messages": messages}
    if EXTENSION_KEY in body:
        view[EXTENSION_KEY] = body[EXTENSION_KEY]

    def back(rewritten: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in body.items() if k != EXTENSION_KEY}
        new_items = []
        for item, message in zip(items, rewritten["messages"], strict=True):
            if message["role"] == "tool":
                item = {**item, "output": message["content"]}
            elif message["role"] != _OTHER:
                item = {**item, "content": _content_back(message.get("content"), message["role"])}
            new_items.append(item)
        out["input"] = new_items[0]["content"] if as_string and isinstance(new_items[0]["content"], str) \
            else new_items
        return out

    return view, back
