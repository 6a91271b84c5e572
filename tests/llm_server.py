"""A local OpenAI-compatible server for tests and benchmarks, on 127.0.0.1, with injectable faults.

It serves the schemas it is given (frame coding's codebook, the ensemble's schemes, captions): it
checks every request's shape (an image part for multimodal tasks, none for `text_only` ones, one of
the known JSON schemas when one is expected), answers from the request's own schema, and follows a
per-subject script of behaviours: ok, fenced, malformed, out_of_codebook, missing_key, refusal, 429
(with Retry-After), 500, 400, 401, slow, inject (markup in the free-text fields). Multimodal requests are told apart by the sha256 of the
base64 JPEG they carry (`payload_id`), text-only ones by a text they contain (`plan_text`).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import json
import random
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def payload_id(jpeg: bytes) -> str:
    return hashlib.sha256(base64.b64encode(jpeg)).hexdigest()


INJECTED_ANSWER = "<img src=x onerror=\"document.title='pwned-by-answer'\"><script>document.title='pwned-by-answer'</script>"


def answer_from_schema(schema: dict, pick: int = 0, text: str = "VOTE") -> dict:
    """A valid answer: an enum value (the first, or the `pick`-th round robin), false, 1, `text` for free text."""

    def value(node):
        if node.get("type") == "object":
            return {k: value(v) for k, v in node["properties"].items()}
        if "enum" in node:
            return node["enum"][pick % len(node["enum"])]
        return {"boolean": False, "integer": 1, "number": 1.0, "string": text}[node["type"]]

    return value(schema)


class FakeLLM:
    def __init__(
        self,
        *schemas: dict,
        latency: float = 0.0,
        expect_schema: bool = True,
        retry_after: float = 0.05,
        text_only: tuple[str, ...] = (),
        varied: bool = False,
        decide=None,
        noise: float = 0.0,
        noise_seed: int = 0,
    ):
        """`schemas`: the answer schemas requests may carry (the first answers schema-less requests);
        `text_only`: schema names whose requests must carry no image; `varied`: enum answers differ by subject;
        `decide(jpeg, answer)`: the answer to an image request, from its pixels and the schema's default answer;
        `noise`: the share of answers whose enum values are drawn at random (uniformly, seeded by `noise_seed`)
        instead of the subject's own, so a repeated request disagrees with itself at a known rate."""
        self.schemas = list(schemas)
        self.latency = latency
        self.expect_schema = expect_schema
        self.retry_after = retry_after
        self.text_only = set(text_only)
        self.varied = varied
        self.decide = decide
        self.noise = noise
        self.random = random.Random(noise_seed)
        self.script: dict[str, list[str]] = defaultdict(list)
        self.text_script: list[tuple[str, list[str]]] = []
        self.log: list[dict] = []
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    # -- control -------------------------------------------------------------------------------
    def plan(self, image_payload: str, *behaviours: str) -> None:
        """Behaviours for the next requests of one image, in order; afterwards it answers ok."""
        self.script[image_payload].extend(behaviours)

    def plan_text(self, text: str, *behaviours: str) -> None:
        """Behaviours for the next text-only requests whose message contains `text`."""
        self.text_script.append((text, list(behaviours)))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> "FakeLLM":
        handler = type("Handler", (_Handler,), {"fake": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def requests_for(self, image_payload: str) -> list[dict]:
        return [entry for entry in self.log if entry["image"] == image_payload]

    # -- behaviour -----------------------------------------------------------------------------
    def chat(self, body: dict, delay: bool = True) -> tuple[int, dict, dict]:
        """(status, headers, JSON body) for one chat completion request."""
        problem, image, schema = self._check_shape(body)
        behaviour = "bad_shape" if problem else "ok"
        text = self._text(body)
        if not problem:
            with self.lock:
                if self.script[image]:
                    behaviour = self.script[image].pop(0)
                else:
                    for needle, behaviours in self.text_script:
                        if behaviours and needle in text:
                            behaviour = behaviours.pop(0)
                            break
        with self.lock:
            self.log.append({"image": image, "behaviour": behaviour, "time": time.time(), "problem": problem,
                             "jpeg": self._last_image(body), "text": text,
                             "schema": (schema or {}).get("name")})
        if delay and self.latency:
            time.sleep(self.latency)
        if problem:
            return 400, {}, {"error": {"message": problem, "type": "invalid_request_error"}}
        if behaviour == "429":
            return 429, {"retry-after": str(self.retry_after)}, {"error": {"message": "rate limited", "type": "rate_limit"}}
        if behaviour == "500":
            return 500, {}, {"error": {"message": "server error", "type": "server_error"}}
        if behaviour == "401":
            return 401, {}, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
        if behaviour == "400":
            return 400, {}, {"error": {"message": "unsupported image", "type": "invalid_request_error"}}
        if behaviour == "slow":
            time.sleep(1.5)
        pick = int(hashlib.sha256((image or text).encode()).hexdigest(), 16) if self.varied else 0
        if self.noise:
            with self.lock:
                if self.random.random() < self.noise:
                    pick = self.random.getrandbits(64)  # uniform over any enum's values
        free_text = INJECTED_ANSWER if behaviour == "inject" else "VOTE"  # "inject": markup in every free-text field
        answer = answer_from_schema((schema or {}).get("schema") or self.schemas[0], pick, free_text)
        if self.decide is not None and image:
            answer = self.decide(self._last_image(body), answer)
        content, refusal = json.dumps(answer), None
        if behaviour == "fenced":
            content = f"Here is the coding:\n```json\n{json.dumps(answer, indent=2)}\n```"
        elif behaviour == "malformed":
            content = "The image shows a rally with many people."
        elif behaviour == "out_of_codebook":
            first_group = next(iter(answer))
            first_variable = next(iter(answer[first_group]))
            answer[first_group][first_variable] = "Spaceship"
            content = json.dumps(answer)
        elif behaviour == "missing_key":
            first_group = next(iter(answer))
            answer[first_group].popitem()
            content = json.dumps(answer)
        elif behaviour == "refusal":
            content, refusal = None, "I can't help with that request."
        usage = {"prompt_tokens": (85 if image else 0) + len(text) // 4, "completion_tokens": len(content or refusal) // 4}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        completion = {
            "id": f"chatcmpl-{len(self.log)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                }
            ],
            "usage": usage,
        }
        return 200, {}, completion

    @staticmethod
    def _text(body: dict) -> str:
        """All text of the request's messages (string contents and text parts)."""
        texts = []
        for message in body.get("messages") or []:
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts += [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(texts)

    @staticmethod
    def _last_image(body: dict) -> bytes | None:
        try:
            url = [p for p in body["messages"][-1]["content"] if p.get("type") == "image_url"][-1]["image_url"]["url"]
            return base64.b64decode(url.split(",", 1)[1])
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):  # text-only: no image
            return None

    def _check_shape(self, body: dict) -> tuple[str | None, str | None, dict | None]:
        """(problem, subject of an image request, json_schema block) of one request."""
        try:
            last = body["messages"][-1]
            parts = last["content"] if isinstance(last["content"], list) else [{"type": "text", "text": last["content"]}]
            images = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]
        except (KeyError, IndexError, TypeError):
            return "messages must end with a user message holding content", None, None
        schema = (body.get("response_format") or {}).get("json_schema")
        name = (schema or {}).get("name")
        image = hashlib.sha256(images[-1].split(",", 1)[1].encode()).hexdigest() if images else None
        if name in self.text_only:
            if images:
                return f"the {name} task is text-only, but the request carries an image", None, schema
        elif not images or not images[-1].startswith("data:image/jpeg;base64,"):
            return "no image part (data:image/jpeg;base64,...) in the request", None, schema
        if self.expect_schema and (schema is None or schema.get("schema") not in self.schemas):
            return "response_format json_schema missing or not one of the served schemas", image, schema
        if not body.get("model"):
            return "no model", image, schema
        return None, image, schema

    def create_batch(self, input_file_id: str, endpoint: str, window: str) -> dict:
        lines = self.files[input_file_id].decode().splitlines()
        output = []
        for line in lines:
            request = json.loads(line)
            status, _, body = self.chat(request["body"], delay=False)
            output.append(json.dumps({"id": f"req-{len(output)}", "custom_id": request["custom_id"],
                                      "response": {"status_code": status, "body": body}, "error": None}))
        output_id = f"file-{len(self.files) + 1}"
        self.files[output_id] = ("\n".join(output) + "\n").encode()
        batch_id = f"batch_{len(self.batches) + 1}"
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": endpoint, "input_file_id": input_file_id,
            "completion_window": window, "status": "validating", "created_at": int(time.time()),
            "output_file_id": None, "error_file_id": None, "_output": output_id, "_polls": 0,
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
        }
        return self.public(self.batches[batch_id])

    def poll_batch(self, batch_id: str) -> dict:
        batch = self.batches[batch_id]
        batch["_polls"] += 1
        if batch["_polls"] == 1:
            batch["status"] = "in_progress"
        else:
            batch["status"] = "completed"
            batch["output_file_id"] = batch["_output"]
        return self.public(batch)

    @staticmethod
    def public(batch: dict) -> dict:
        return {k: v for k, v in batch.items() if not k.startswith("_")}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLLM
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status: int, body, headers: dict | None = None, raw: bytes | None = None) -> None:
        payload = raw if raw is not None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if raw is None else "application/octet-stream")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_POST(self):
        raw = self._body()
        if self.path == "/v1/chat/completions":
            status, headers, body = self.fake.chat(json.loads(raw))
            return self._send(status, body, headers)
        if self.path == "/v1/files":
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + raw
            )
            content = next(p.get_payload(decode=True) for p in message.iter_parts() if p.get_filename())
            file_id = f"file-{len(self.fake.files) + 1}"
            self.fake.files[file_id] = content
            return self._send(200, {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                                    "filename": "batch.jsonl", "purpose": "batch", "status": "processed"})
        if self.path == "/v1/batches":
            request = json.loads(raw)
            return self._send(200, self.fake.create_batch(request["input_file_id"], request["endpoint"], request["completion_window"]))
        self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_GET(self):
        if self.path.startswith("/v1/batches/"):
            return self._send(200, self.fake.poll_batch(self.path.rsplit("/", 1)[1]))
        if self.path.startswith("/v1/files/") and self.path.endswith("/content"):
            return self._send(200, None, raw=self.fake.files[self.path.split("/")[3]])
        self._send(404, {"error": {"message": f"no route {self.path}"}})


def main() -> None:
    """Serve on a fixed port for manual runs: python tests/llm_server.py CODEBOOK [PORT] [LATENCY_S]."""
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent / "scripts"))
    from imagecoding.tasks.codebook import load_codebook

    fake = FakeLLM(load_codebook(sys.argv[1]).json_schema(), latency=float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 8765
    fake.server = ThreadingHTTPServer(("127.0.0.1", port), type("Handler", (_Handler,), {"fake": fake}))
    print(f"serving {fake.base_url}", flush=True)
    fake.server.serve_forever()


if __name__ == "__main__":
    main()
