"""The OpenAI-compatible HTTP surface of `trainer/mella_serve.py`: routes, request validation, response and
error shapes. Standard library only (http.server); the models are `serve_model.ServedModel`s.

    GET  /v1/models, /v1/models/{id}
    POST /v1/chat/completions          non-streaming; text and image_url (data: URLs) parts
    GET  /health                       {"status": "ok", "models": [...]}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .serve_model import Prompt, RequestError, ServedModel, placeholder_count

MAX_BODY_BYTES = 64 * 2**20
MAX_N = 8
FINGERPRINT = "mella-serve"
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,(?P<data>.*)$", re.S)


def error_body(message: str, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise RequestError(f"{where}.content[{i}] must be a text part here", param=f"{where}.content")
            out.append(part["text"])
        return "".join(out)
    if content is None:
        return ""
    raise RequestError(f"{where}.content must be a string or a list of content parts", param=f"{where}.content")


def decode_image(url: Any, param: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    if not isinstance(url, str) or not url:
        raise RequestError("image_url.url must be a non-empty string", param=param, code="invalid_image_url")
    if re.match(r"^https?:", url, re.I):
        raise RequestError("only data: URLs (base64 JPEG/PNG) are accepted; this server fetches nothing", param=param, code="invalid_image_url")
    m = _DATA_URL.match(url)
    if not m:
        raise RequestError("image_url.url must be a data URL: data:image/jpeg;base64,...", param=param, code="invalid_image_url")
    try:
        raw = base64.b64decode(re.sub(r"\s+", "", m.group("data")), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("the image data URL is not valid base64", param=param, code="invalid_image_url") from None
    if not raw:
        raise RequestError("the image data URL is empty", param=param, code="invalid_image_url")
    try:
        im = Image.open(io.BytesIO(raw))
        im.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise RequestError(f"the image cannot be decoded: {type(e).__name__}: {e}", param=param, code="invalid_image_format") from None
    w, h = im.size
    if w < 1 or h < 1 or max(w, h) / min(w, h) > 200:
        raise RequestError(f"the image is {w}x{h}; the aspect ratio must be at most 200", param=param, code="invalid_image_format")
    return im


def parse_messages(messages: Any) -> Prompt:
    """OpenAI messages -> the trainer's sample shape. Leading system/developer messages are the system
    prompt; user and assistant turns follow; the last one must be the user's. Image parts become `<image>`
    placeholders where they stand, unless the user text already carries one `<image>` per image part
    (LLaMA-Factory's convention, as in the export): then the text's placeholders place them."""
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages must be a non-empty array", param="messages")
    system_parts: list[str] = []
    turns: list[tuple[str, str]] = []
    images: list[Any] = []
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise RequestError(f"{where} must be an object", param=where)
        role = msg.get("role")
        content = msg.get("content")
        if role in ("system", "developer"):
            if turns:
                raise RequestError(f"{where}: a {role} message may only come before the conversation", param=f"{where}.role")
            system_parts.append(_text_of(content, where))
        elif role == "assistant":
            if not turns:
                raise RequestError(f"{where}: the conversation must start with a user message", param=f"{where}.role")
            text = _text_of(content, where)
            if placeholder_count(text):
                raise RequestError(f"{where}: an assistant message may not contain <image>", param=f"{where}.content")
            turns.append(("assistant", text))
        elif role == "user":
            if isinstance(content, str):
                pieces = [content]
                part_images: list[Any] = []
            elif isinstance(content, list) and content:
                pieces, part_images = [], []
                for j, part in enumerate(content):
                    p = f"{where}.content[{j}]"
                    if not isinstance(part, dict):
                        raise RequestError(f"{p} must be an object", param=p)
                    if part.get("type") == "text" and isinstance(part.get("text"), str):
                        pieces.append(part["text"])
                    elif part.get("type") == "image_url":
                        iu = part.get("image_url")
                        url = iu.get("url") if isinstance(iu, dict) else iu
                        part_images.append(decode_image(url, f"{p}.image_url.url"))
                        pieces.append(None)  # type: ignore[arg-type]
                    else:
                        raise RequestError(f"{p}: unsupported content part type {part.get('type')!r} (text and image_url are)", param=f"{p}.type")
            else:
                raise RequestError(f"{where}.content must be a string or a non-empty list of content parts", param=f"{where}.content")
            given = sum(placeholder_count(t) for t in pieces if t is not None)
            if given == 0:
                text = "".join("<image>" if t is None else t for t in pieces)
            elif given == len(part_images):
                text = "".join(t for t in pieces if t is not None)
            else:
                raise RequestError(f"{where} has {given} <image> placeholder(s) in its text but {len(part_images)} image part(s)",
                                   param=f"{where}.content", code="image_token_mismatch")
            images.extend(part_images)
            turns.append(("user", text))
        elif role in ("tool", "function"):
            raise RequestError(f"{where}: {role} messages are not supported", param=f"{where}.role")
        else:
            raise RequestError(f"{where}.role must be system, developer, user or assistant", param=f"{where}.role")
    if not turns or turns[-1][0] != "user":
        raise RequestError("the last message must be a user message", param="messages")
    return Prompt(system="\n".join(system_parts) if system_parts else None, turns=turns, images=images)


def _number(body: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    v = body.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise RequestError(f"{key} must be a number between {lo} and {hi}", param=key)
    return float(v)


def _int(body: dict[str, Any], key: str, lo: int, hi: int) -> int | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise RequestError(f"{key} must be an integer between {lo} and {hi}", param=key)
    return v


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], models: dict[str, ServedModel], default_max_tokens: int, log: bool) -> None:
        super().__init__(address, Handler)
        self.models = models
        self.default_max_tokens = default_max_tokens
        self.log = log
        self.started = int(time.time())


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"
    server_version = "mella-serve"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def _log(self, status: int, model: str | None, ms: float, extra: str = "") -> None:
        if self.server.log:
            try:
                sys.stderr.write(f"[mella-serve] {self.command} {self.path} {status} model={model or '-'} {ms:.0f}ms{extra}\n")
                sys.stderr.flush()
            except (BrokenPipeError, ValueError):
                pass

    def _send(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", getattr(self, "_request_id", ""))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None) -> None:
        self._send(status, error_body(message, type_, param, code))

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            self._error(411, "chunked request bodies are not supported; send Content-Length", code="length_required")
            return None
        try:
            n = int(length or 0)
        except ValueError:
            n = -1
        if n < 0:
            self.close_connection = True
            self._error(400, "invalid Content-Length")
            return None
        if n > MAX_BODY_BYTES:
            self.close_connection = True
            self._error(413, f"the request body is over {MAX_BODY_BYTES} bytes", code="request_too_large")
            return None
        return self.rfile.read(n) if n else b""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._request_id = f"req_{uuid.uuid4().hex[:24]}"
        path = self.path.split("?", 1)[0].rstrip("/")
        models = self.server.models
        if path == "/v1/models":
            self._send(200, {"object": "list", "data": [self._model_obj(m) for m in models.values()]})
        elif path.startswith("/v1/models/"):
            name = path[len("/v1/models/"):]
            from urllib.parse import unquote

            name = unquote(name)
            if name in models:
                self._send(200, self._model_obj(models[name]))
            else:
                self._error(404, f"The model '{name}' does not exist", param="model", code="model_not_found")
        elif path in ("/health", "/v1/health"):
            self._send(200, {"status": "ok", "models": list(models)})
        elif path == "/v1/chat/completions":
            self._error(405, "use POST for /v1/chat/completions", code="method_not_allowed")
        else:
            self._error(404, f"unknown URL {path}", code="unknown_url")

    def _model_obj(self, m: ServedModel) -> dict[str, Any]:
        return {"id": m.name, "object": "model", "created": m.created, "owned_by": "mella", "mella": m.describe()}

    def _not_allowed(self) -> None:
        self._request_id = f"req_{uuid.uuid4().hex[:24]}"
        if self._read_body() is not None:
            self._error(405, f"method {self.command} is not allowed", code="method_not_allowed")

    do_PUT = do_DELETE = do_PATCH = _not_allowed  # noqa: N815

    def do_POST(self) -> None:  # noqa: N802
        self._request_id = f"req_{uuid.uuid4().hex[:24]}"
        t0 = time.monotonic()
        path = self.path.split("?", 1)[0].rstrip("/")
        raw = self._read_body()
        if raw is None:
            self._log(413, None, (time.monotonic() - t0) * 1000)
            return
        if path != "/v1/chat/completions":
            status = 405 if path in ("/v1/models", "/health") else 404
            self._error(status, f"unknown URL {path}" if status == 404 else f"use GET for {path}", code="unknown_url" if status == 404 else "method_not_allowed")
            self._log(status, None, (time.monotonic() - t0) * 1000)
            return
        model_name = None
        try:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                raise RequestError(f"the request body is not valid JSON: {e}") from None
            if not isinstance(body, dict):
                raise RequestError("the request body must be a JSON object")
            model_name = body.get("model")
            if not isinstance(model_name, str) or not model_name:
                raise RequestError("model is required", param="model")
            model = self.server.models.get(model_name)
            if model is None:
                raise RequestError(f"The model '{model_name}' does not exist (served: {', '.join(self.server.models)})",
                                   param="model", code="model_not_found", status=404)
            if body.get("stream"):
                raise RequestError("stream is not supported by this server", param="stream", code="unsupported_parameter")
            if body.get("logprobs") or body.get("top_logprobs"):
                raise RequestError("logprobs are not supported by this server", param="logprobs", code="unsupported_parameter")
            if body.get("tools") or body.get("functions"):
                raise RequestError("tools are not supported by this server", param="tools", code="unsupported_parameter")
            prompt = parse_messages(body.get("messages"))
            max_tokens = _int(body, "max_completion_tokens", 1, 1_000_000)
            if max_tokens is None:
                max_tokens = _int(body, "max_tokens", 1, 1_000_000)
            if max_tokens is None:
                max_tokens = self.server.default_max_tokens
            temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
            top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
            if top_p <= 0:
                top_p = 1e-6
            n = _int(body, "n", 1, MAX_N) or 1
            seed = _int(body, "seed", -(2**63), 2**63 - 1)
            stop = body.get("stop")
            if stop is None:
                stop = []
            elif isinstance(stop, str):
                stop = [stop]
            if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) and s for s in stop):
                raise RequestError("stop must be a non-empty string or up to 4 of them", param="stop")
            result = model.generate(prompt, max_tokens=max_tokens, temperature=temperature, top_p=top_p, n=n,
                                    seed=None if seed is None else seed % (2**63), stop=stop)
        except RequestError as e:
            self._error(e.status, e.message, param=e.param, code=e.code)
            self._log(e.status, model_name, (time.monotonic() - t0) * 1000, f" {e.code or 'invalid_request_error'}")
            return
        except Exception as e:  # noqa: BLE001 - a server-side failure: 500, the server stays up
            import traceback

            traceback.print_exc()
            self._error(500, f"generation failed: {type(e).__name__}: {e}", type_="server_error", code="internal_error")
            self._log(500, model_name, (time.monotonic() - t0) * 1000)
            return
        digest = hashlib.sha256(raw).hexdigest()[:24]
        completion = {
            "id": f"chatcmpl-{digest}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model_name,
            "system_fingerprint": FINGERPRINT,
            "choices": [
                {"index": c["index"], "message": {"role": "assistant", "content": c["text"], "refusal": None},
                 "logprobs": None, "finish_reason": c["finish_reason"]}
                for c in result["choices"]
            ],
            "usage": {
                "prompt_tokens": result["prompt_tokens"],
                "completion_tokens": result["completion_tokens"],
                "total_tokens": result["prompt_tokens"] + result["completion_tokens"],
            },
        }
        self._send(200, completion, {"x-mella-generation-ms": str(round(result["seconds"] * 1000, 1))})
        self._log(200, model_name, (time.monotonic() - t0) * 1000,
                  f" prompt={result['prompt_tokens']} completion={result['completion_tokens']}")
