"""A local stand-in for Google Cloud Vision's images:annotate on 127.0.0.1, with injectable faults.

It checks the API key header and each request's shape, answers labels, objects and text per image,
and follows a script: the next requests may get 429 (with Retry-After), 500, or a per-image error.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeVision:
    def __init__(self, key: str, retry_after: float = 0.05):
        self.key = key
        self.retry_after = retry_after
        self.script: list[str] = []  # behaviours of the next requests: 429, 500, image_error
        self.log: list[dict] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> "FakeVision":
        handler = type("Handler", (_Handler,), {"fake": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def images_sent(self) -> int:
        return sum(entry["images"] for entry in self.log if entry["status"] == 200)

    def annotate(self, key: str | None, body: dict) -> tuple[int, dict, dict]:
        with self.lock:
            behaviour = self.script.pop(0) if self.script else "ok"
        requests = body.get("requests") or []
        self.log.append({"key": key, "images": len(requests), "behaviour": behaviour,
                         "status": 200 if behaviour in ("ok", "image_error") else int(behaviour),
                         "jpegs": [base64.b64decode(r["image"]["content"]) for r in requests]})
        if key != self.key:
            return 403, {}, {"error": {"code": 403, "message": "API key not valid", "status": "PERMISSION_DENIED"}}
        if behaviour == "429":
            return 429, {"retry-after": str(self.retry_after)}, {"error": {"code": 429, "message": "quota"}}
        if behaviour == "500":
            return 500, {}, {"error": {"code": 500, "message": "backend error"}}
        responses = []
        for number, request in enumerate(requests):
            features = {f["type"] for f in request["features"]}
            if behaviour == "image_error" and number == 0:
                responses.append({"error": {"code": 3, "message": "Bad image data."}})
                continue
            digest = hashlib.sha256(request["image"]["content"].encode()).hexdigest()[:6]
            answer = {}
            if "LABEL_DETECTION" in features:
                answer["labelAnnotations"] = [{"description": "Poster", "score": 0.91}, {"description": f"label-{digest}", "score": 0.6}]
            if "OBJECT_LOCALIZATION" in features:
                answer["localizedObjectAnnotations"] = [{"name": "Person", "score": 0.8,
                                                         "boundingPoly": {"normalizedVertices": [{"x": 0.1, "y": 0.1}]}}]
            if "TEXT_DETECTION" in features:
                answer["textAnnotations"] = [{"description": "VOTE ON SUNDAY", "locale": "en"}]
                answer["fullTextAnnotation"] = {"text": "VOTE ON SUNDAY"}
            responses.append(answer)
        return 200, {}, {"responses": responses}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeVision
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/v1/images:annotate":
            status, headers, body = 404, {}, {"error": {"message": f"no route {self.path}"}}
        else:
            status, headers, body = self.fake.annotate(self.headers.get("X-Goog-Api-Key"), json.loads(raw))
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
