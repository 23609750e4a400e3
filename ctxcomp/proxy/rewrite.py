"""What a chat request holds to compress, and the request with the compressed text put back.

Pure functions over the parsed JSON body; no I/O, no model. :func:`extract` finds the
pieces (``<document>`` elements in messages, tool results, the documents of the
``ctxcomp`` extension) and returns an :class:`Extraction` whose :meth:`~Extraction.apply`
builds the body to forward from the kept text of each piece. Everything it does not
name is forwarded as it came: unknown fields, unknown roles, images and other non-text
content parts, the system prompt's own text and the latest user question.

Conventions:

* ``<document id="a">...</document>`` (the ``id`` and ``title`` attributes are optional)
  anywhere in a message's text is one piece; a ``<documents>...</documents>`` block with
  no ``<document>`` inside is one piece. A dropped document is removed with its tags.
* A tool result that is valid JSON keeps being valid JSON: only its string values of at
  least ``min_chars`` characters are compressed, and the result is re-serialized (compact)
  and checked; a dropped value becomes ``"[…]"``. JSON with no such string is forwarded
  unchanged and a note says so. Any other tool result is compressed as text.
* The extension ``{"ctxcomp": {"documents": [...], "budget": ..., "compress": {...}}}`` is
  removed; its (compressed) documents are put before the latest user message's text in a
  ``<documents>`` block.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any, Literal

from ctxcomp.errors import InputError
from ctxcomp.proxy.config import EXTENSION_KEY, Switches
from ctxcomp.types import Chunk

#: What a dropped tool result or JSON string value becomes.
ELIDED = "[…]"
_DOC = re.compile(r"<document\b([^>]*)>(.*?)</document\s*>\n?", re.S | re.I)
_DOCS = re.compile(r"<documents\b[^>]*>(.*?)</documents\s*>", re.S | re.I)
_ATTR = re.compile(r"""\b(id|title)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
_EXTENSION_KEYS = {"documents", "budget", "compress"}
_DOCUMENT_ROLES = {"user", "assistant"}
_SYSTEM_ROLES = {"system", "developer"}

Kind = Literal["document", "tool", "extension"]
#: Kept text per piece id: a str (the compressed text) or None (dropped); absent: unchanged.
Replacements = Mapping[str, "str | None"]


class RequestError(InputError):
    """The request cannot be used as given (answered 400 in the OpenAI error shape).

    Attributes:
        param: the request field at fault (``messages``, ``ctxcomp.documents`` ...).
    """

    def __init__(self, message: str, param: str | None = None) -> None:
        self.param = param
        super().__init__(message)


@dataclass(frozen=True)
class Piece:
    """One compressible text: its chunk id, text, kind and where it is (for notes)."""

    id: str
    text: str
    kind: Kind
    where: str
    title: str | None = None

    def chunk(self) -> Chunk:
        return Chunk(self.text, id=self.id, metadata={"title": self.title} if self.title else {})


Edit = Callable[[dict[str, Any], Replacements], None]


@dataclass
class Extraction:
    """The pieces of one request and how to put their kept text back.

    Attributes:
        body: the request without the extension object (the caller's dict is not changed).
        query: the latest user message's text outside its documents ("" if none).
        pieces: what may be compressed.
        passthrough: pieces that go back verbatim (a kind switched off for this request).
        notes: what was left alone and why.
        extension: the extension object as sent (None: none).
    """

    body: dict[str, Any]
    query: str = ""
    pieces: list[Piece] = field(default_factory=list)
    passthrough: list[Piece] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extension: Mapping[str, Any] | None = None
    edits: list[Edit] = field(default_factory=list)
    finish: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # maps a view back (/responses)

    def apply(self, kept: Replacements) -> dict[str, Any]:
        """The body to forward: each piece's text replaced by ``kept[id]`` (None: dropped;
        absent: unchanged). ``apply({})`` is the request minus the extension, with the
        extension's documents inserted as they came."""
        body = dict(self.body)
        messages = body.get("messages")
        if isinstance(messages, list):
            body["messages"] = [dict(m) if isinstance(m, Mapping) else m for m in messages]
        for edit in self.edits:
            edit(body, kept)
        return self.finish(body) if self.finish is not None else body


def extract(body: Mapping[str, Any], switches: Switches, *, min_chars: int) -> Extraction:
    """The compressible pieces of a chat-completions request body.

    Args:
        body: the parsed request (not changed).
        switches: what to compress (the extension's ``compress`` object, if any, is applied
            by the caller before; see :func:`extension_of`).
        min_chars: pieces shorter than this stay verbatim.

    Raises:
        RequestError: ``messages`` missing or not a list of objects; a malformed extension.
    """
    messages = body.get("messages")
    if messages is None:
        raise RequestError("missing required parameter: 'messages'", "messages")
    if not isinstance(messages, list) or not all(isinstance(m, Mapping) for m in messages):
        raise RequestError("'messages' must be a list of message objects", "messages")
    out = Extraction({k: v for k, v in body.items() if k != EXTENSION_KEY}, extension=extension_of(body))
    latest_user = _latest_user(messages)
    if latest_user is not None:
        out.query = _question(_plain_text(messages[latest_user].get("content")))
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            if switches.tools:
                _tool_pieces(out, i, message.get("content"), min_chars)
        elif role in _DOCUMENT_ROLES or role in _SYSTEM_ROLES:
            take = switches.documents and (role not in _SYSTEM_ROLES or switches.system)
            _document_pieces(out, i, message.get("content"), min_chars, skip=not take)
    if out.extension is not None:
        _extension_pieces(out, out.extension, latest_user, switches.extension)
    return out


def extension_of(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``ctxcomp`` extension object of a body, checked (None when absent)."""
    ext = body.get(EXTENSION_KEY)
    if ext is None:
        return None
    if not isinstance(ext, Mapping):
        raise RequestError(f"'{EXTENSION_KEY}' must be an object with documents, budget or compress", EXTENSION_KEY)
    unknown = set(ext) - _EXTENSION_KEYS
    if unknown:
        raise RequestError(f"unknown keys in '{EXTENSION_KEY}': {sorted(map(str, unknown))}; "
                           f"allowed: {sorted(_EXTENSION_KEYS)}", EXTENSION_KEY)
    return ext


# -- messages ------------------------------------------------------------------------------
def _latest_user(messages: Sequence[Mapping[str, Any]]) -> int | None:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return i
    return None


def _plain_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content
                         if isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str))
    return ""


def _question(text: str) -> str:
    """A user message's text without its documents: what the documents are ranked for."""
    return _DOCS.sub(" ", _DOC.sub(" ", text)).strip()


def _texts(content: Any) -> list[tuple[int | None, str]]:
    """(part index or None for a string content, text) of a message's text."""
    if isinstance(content, str):
        return [(None, content)]
    if isinstance(content, list):
        return [(j, p["text"]) for j, p in enumerate(content)
                if isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str)]
    return []


def _set_text(body: dict[str, Any], i: int, part: int | None, text: str) -> None:
    message = body["messages"][i]
    if part is None:
        message["content"] = text
    else:
        parts = list(message["content"])
        parts[part] = {**parts[part], "text": text}
        message["content"] = parts


def _attrs(raw: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for m in _ATTR.finditer(raw):
        found[m.group(1).lower()] = next(g for g in m.groups()[1:] if g is not None)
    return found


# -- documents -----------------------------------------------------------------------------
def _document_pieces(out: Extraction, i: int, content: Any, min_chars: int, *, skip: bool) -> None:
    for part, text in _texts(content):
        # (element start, element end, inner start, inner end, piece id or None)
        spans: list[tuple[int, int, int, int, str | None]] = []
        for block in _DOCS.finditer(text):
            if not _DOC.search(block.group(1)):
                spans.append((*block.span(1), *_stripped(text, *block.span(1)), None))
        for m in _DOC.finditer(text):
            spans.append((m.start(), m.end(), *_stripped(text, *m.span(2)), None))
        spans.sort()
        if not spans:
            continue
        where = f"messages[{i}]" + (f".content[{part}]" if part is not None else "")
        if skip:
            out.notes.append(f"{where}: documents left as they are (kind switched off)")
            continue
        named: list[tuple[int, int, int, int, str | None]] = []
        for k, (start, end, inner_start, inner_end, _) in enumerate(spans):
            body = text[inner_start:inner_end]
            if len(body) < max(min_chars, 1):
                named.append((start, end, inner_start, inner_end, None))
                continue
            attrs = _attrs(text[start:inner_start]) if text.startswith("<document", start) and \
                not text.startswith("<documents", start) else {}
            pid = f"m{i}.p{part if part is not None else 0}.d{k}"
            label = f"{where} document {attrs['id']!r}" if "id" in attrs else f"{where} document {k}"
            out.pieces.append(Piece(pid, body, "document", label, attrs.get("title") or attrs.get("id")))
            named.append((start, end, inner_start, inner_end, pid))
        if any(s[4] for s in named):
            out.edits.append(_document_edit(i, part, text, named))


def _stripped(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _document_edit(i: int, part: int | None, text: str, spans: list[tuple[int, int, int, int, str | None]]) -> Edit:
    def edit(body: dict[str, Any], kept: Replacements) -> None:
        if not any(s[4] in kept for s in spans):
            return
        parts, prev = [], 0
        for start, end, inner_start, inner_end, pid in spans:
            if pid is None or pid not in kept:
                continue
            new = kept[pid]
            if new is None and text.startswith("<document", start) and not text.startswith("<documents", start):
                parts.append(text[prev:start])  # the whole element goes
            else:
                parts.append(text[prev:inner_start] + (ELIDED if new is None else new))
                parts.append(text[inner_end:end])
            prev = end
        parts.append(text[prev:])
        _set_text(body, i, part, "".join(parts))

    return edit


# -- tool results --------------------------------------------------------------------------
def _tool_pieces(out: Extraction, i: int, content: Any, min_chars: int) -> None:
    for part, text in _texts(content):
        where = f"messages[{i}] (tool)" + (f".content[{part}]" if part is not None else "")
        if len(text) < max(min_chars, 1):
            continue
        parsed, is_json = _parse_json(text)
        prefix = f"m{i}.p{part if part is not None else 0}"
        if not is_json:
            out.pieces.append(Piece(f"{prefix}.t", text, "tool", where))
            out.edits.append(_tool_text_edit(i, part, f"{prefix}.t"))
            continue
        leaves = [(path, s) for path, s in _string_leaves(parsed) if len(s) >= max(min_chars, 1)]
        nested = [path for path, s in leaves if _parse_json(s)[1] and s.lstrip()[:1] in "{["]
        if nested:
            out.notes.append(f"{where}: {len(nested)} JSON string value(s) holding JSON left as they are")
            leaves = [(p, s) for p, s in leaves if p not in nested]
        if not leaves:
            out.notes.append(f"{where}: JSON with no string value of {min_chars}+ characters; "
                             "passed through unchanged (compressing it would break the JSON)")
            continue
        ids = [f"{prefix}.j{k}" for k in range(len(leaves))]
        for pid, (path, s) in zip(ids, leaves, strict=True):
            out.pieces.append(Piece(pid, s, "tool", f"{where} at {_path_text(path)}"))
        out.edits.append(_tool_json_edit(out, i, part, text, [p for p, _ in leaves], ids))


def _parse_json(text: str) -> tuple[Any, bool]:
    if text.lstrip()[:1] not in ('{', '[', '"'):
        return None, False
    try:
        return json.loads(text), True
    except (ValueError, RecursionError):
        return None, False


Path = tuple[str | int, ...]


def _string_leaves(value: Any) -> list[tuple[Path, str]]:
    """Every string value (not key) of a JSON value with its path, in document order."""
    found: list[tuple[Path, str]] = []
    stack: list[tuple[Path, Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            found.append((path, node))
        elif isinstance(node, dict):
            stack.extend(((*path, k), v) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend(((*path, j), v) for j, v in reversed(list(enumerate(node))))
    return found


def _path_text(path: Path) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _set_path(root: Any, path: Path, value: str) -> Any:
    if not path:
        return value
    node = root
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return root


def _tool_text_edit(i: int, part: int | None, pid: str) -> Edit:
    def edit(body: dict[str, Any], kept: Replacements) -> None:
        if pid in kept:
            new = kept[pid]
            _set_text(body, i, part, new if new else ELIDED)

    return edit


def _tool_json_edit(out: Extraction, i: int, part: int | None, text: str, paths: list[Path], ids: list[str]) -> Edit:
    def edit(body: dict[str, Any], kept: Replacements) -> None:
        if not any(pid in kept for pid in ids):
            return
        root = json.loads(text)  # a fresh copy to change
        for path, pid in zip(paths, ids, strict=True):
            if pid in kept:
                root = _set_path(root, path, kept[pid] or ELIDED)
        new = json.dumps(root, ensure_ascii=False, separators=(",", ":"))
        try:
            valid = json.loads(new) == root
        except (ValueError, RecursionError):
            valid = False
        if not valid:  # never forward broken JSON
            out.notes.append(f"messages[{i}] (tool): the compressed JSON did not round-trip; passed through unchanged")
            return
        _set_text(body, i, part, new)

    return edit


# -- the extension -------------------------------------------------------------------------
def _extension_pieces(out: Extraction, ext: Mapping[str, Any], latest_user: int | None, take: bool) -> None:
    docs = ext.get("documents")
    if docs is None:
        return
    if not isinstance(docs, list):
        raise RequestError(f"'{EXTENSION_KEY}.documents' must be a list", f"{EXTENSION_KEY}.documents")
    if latest_user is None and docs:
        raise RequestError(f"'{EXTENSION_KEY}.documents' needs a user message to go with", "messages")
    items: list[Piece] = []
    for k, doc in enumerate(docs):
        where = f"{EXTENSION_KEY}.documents[{k}]"
        if isinstance(doc, str):
            doc_id, text = str(k + 1), doc
        elif isinstance(doc, Mapping) and isinstance(doc.get("text", doc.get("content")), str):
            doc_id = doc.get("id", k + 1)
            if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
                raise RequestError(f"{where}.id must be a string or a number", where)
            doc_id, text = str(doc_id), doc.get("text", doc.get("content"))
        else:
            raise RequestError(f"{where} must be a string or an object with a 'text' string", where)
        items.append(Piece(f"x{k}", text, "extension", f"{where} {doc_id!r}", doc_id))
    for piece in items:
        if take and piece.text.strip():
            out.pieces.append(piece)
        else:
            out.passthrough.append(piece)
    if items:
        assert latest_user is not None
        out.edits.append(_extension_edit(latest_user, items))


def render_documents(docs: Sequence[tuple[str, str]]) -> str:
    """A ``<documents>`` block of (id, text) pairs."""
    inner = "".join(f'<document id="{escape(doc_id, quote=True)}">\n{text}\n</document>\n' for doc_id, text in docs)
    return f"<documents>\n{inner}</documents>"


def _extension_edit(i: int, items: list[Piece]) -> Edit:
    def edit(body: dict[str, Any], kept: Replacements) -> None:
        docs = []
        for piece in items:
            text = kept.get(piece.id, piece.text) if piece.id in kept else piece.text
            if text:
                docs.append((piece.title or piece.id, text))
        if not docs:
            return
        block = render_documents(docs)
        message = body["messages"][i]
        content = message.get("content")
        if isinstance(content, list):
            message["content"] = [{"type": "text", "text": block}, *content]
        else:
            message["content"] = block + ("\n\n" + content if isinstance(content, str) and content else "")

    return edit
