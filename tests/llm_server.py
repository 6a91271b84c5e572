"""A local OpenAI-compatible server for tests and benchmarks, on 127.0.0.1, with injectable faults.

It checks every request's shape (an image part, the JSON schema when one is expected), answers from
the codebook's schema, and follows a per-image script of behaviours: ok, fenced, malformed,
out_of_codebook, missing_key, refusal, 429 (with Retry-After), 500, 400, 401, slow.
Images are told apart by the sha256 of the base64 JPEG they arrive as (`payload_id`).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def payload_id(jpeg: bytes) -> str:
    return hashlib.sha256(base64.b64encode(jpeg)).hexdigest()


def answer_from_schema(schema: dict) -> dict:
    """A valid answer: the first value of every enum, false, the minimum, short text."""

    def value(node):
        if node.get("type") == "object":
            return {k: value(v) for k, v in node["properties"].items()}
        if "enum" in node:
            return node["enum"][0]
        return {"boolean": False, "integer": 1, "number": 1.0, "string": "VOTE"}[node["type"]]

    return value(schema)


class FakeLLM:
    def __init__(self, schema: dict, latency: float = 0.0, expect_schema: bool = True, retry_after: float = 0.05):
        self.schema = schema
        self.latency = latency
        self.expect_schema = expect_schema
        self.retry_after = retry_after
        self.script: dict[str, list[str]] = defaultdict(list)
        self.log: list[dict] = []
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    # -- control -------------------------------------------------------------------------------
    def plan(self, image_payload: str, *behaviours: str) -> None:
        """Behaviours for the next requests of one image, in order; afterwards it answers ok."""
        self.script[image_payload].extend(behaviours)

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
        problem, image = self._check_shape(body)
        behaviour = "bad_shape" if problem else "ok"
        if not problem:
            with self.lock:
                if self.script[image]:
                    behaviour = self.script[image].pop(0)
        with self.lock:
            self.log.append({"image": image, "behaviour": behaviour, "time": time.time(), "problem": problem,
                             "jpeg": self._last_image(body)})
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
        answer = answer_from_schema(self.schema)
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
        prompt_text = " ".join(p.get("text", "") for p in body["messages"][-1]["content"] if p["type"] == "text")
        usage = {"prompt_tokens": 85 + len(prompt_text) // 4, "completion_tokens": len(content or refusal) // 4}
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
    def _last_image(body: dict) -> bytes | None:
        try:
            url = [p for p in body["messages"][-1]["content"] if p.get("type") == "image_url"][-1]["image_url"]["url"]
            return base64.b64decode(url.split(",", 1)[1])
        except (KeyError, IndexError, TypeError, ValueError):
            return None

    def _check_shape(self, body: dict) -> tuple[str | None, str | None]:
        try:
            parts = body["messages"][-1]["content"]
            images = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]
        except (KeyError, IndexError, TypeError):
            return "messages must end with a user message holding content parts", None
        if not images or not images[-1].startswith("data:image/jpeg;base64,"):
            return "no image part (data:image/jpeg;base64,...) in the request", None
        image = hashlib.sha256(images[-1].split(",", 1)[1].encode()).hexdigest()
        if self.expect_schema:
            schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema")
            if schema != self.schema:
                return "response_format json_schema missing or not the codebook's schema", image
        if not body.get("model"):
            return "no model", image
        return None, image

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
