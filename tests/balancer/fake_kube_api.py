"""A fake Kubernetes API server for EndpointSlices, following the documented list+watch protocol.

It serves GET /apis/discovery.k8s.io/v1/namespaces/NS/endpointslices?labelSelector=... as a
list (EndpointSliceList with metadata.resourceVersion) or, with watch=1, as a chunked stream of
newline-delimited watch events from the given resourceVersion. The test drives it: apply()
adds or replaces a slice (ADDED/MODIFIED), delete() removes one (DELETED), bookmark() sends a
BOOKMARK, expire_in_stream() sends an ERROR event with code 410, close_streams() ends every
open watch, compact() makes older resourceVersions answer HTTP 410, and `token` is the bearer
token it accepts (401 otherwise). Every request is recorded. Binds 127.0.0.1 only.
"""
import http.server
import json
import threading
import urllib.parse

PATH_PREFIX = "/apis/discovery.k8s.io/v1/namespaces/"


def slice_object(name, service, port_grpc, port_http, endpoints, rv="1"):
    """An EndpointSlice. `endpoints`: list of (address, ready, serving, terminating)."""
    return {
        "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
        "metadata": {"name": name, "namespace": "default", "resourceVersion": rv,
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "grpc", "port": port_grpc, "protocol": "TCP"},
                  {"name": "http", "port": port_http, "protocol": "TCP"}],
        "endpoints": [{"addresses": [a], "conditions": {"ready": r, "serving": s, "terminating": t},
                       "targetRef": {"kind": "Pod", "name": name + "-pod"}}
                      for a, r, s, t in endpoints],
    }


class FakeKubeApi:
    def __init__(self, service="models", namespace="default", token="token-1", tls=None):
        """`tls`: (certificate file, key file) to serve HTTPS."""
        self.service = service
        self.namespace = namespace
        self.token = token
        self.lock = threading.Condition()
        self.rv = 100
        self.slices = {}
        self.events = []        # (rv, line bytes)
        self.oldest_rv = 0      # watches from before this get 410
        self.stream_epoch = 0   # bumped by close_streams()
        self.requests = []      # (kind, query dict, authorization)
        self.expire_pending = 0
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.handle(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls:
            import ssl
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self.port)

    def stop(self):
        self.close_streams()
        self.server.shutdown()
        self.server.server_close()

    # ---- test controls ----
    def _event(self, kind, obj):
        with self.lock:
            self.rv += 1
            obj = json.loads(json.dumps(obj))
            obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
            self.events.append((self.rv, (json.dumps({"type": kind, "object": obj}) + "\n").encode()))
            self.lock.notify_all()
            return obj

    def apply(self, obj):
        kind = "MODIFIED" if obj["metadata"]["name"] in self.slices else "ADDED"
        stored = self._event(kind, obj)
        with self.lock:
            self.slices[obj["metadata"]["name"]] = stored

    def delete(self, name):
        with self.lock:
            obj = self.slices.pop(name)
        self._event("DELETED", obj)

    def bookmark(self):
        self._event("BOOKMARK", {"kind": "EndpointSlice", "metadata": {}})

    def raw_line(self, data):
        with self.lock:
            self.rv += 1
            self.events.append((self.rv, data))
            self.lock.notify_all()

    def expire_in_stream(self):
        with self.lock:
            self.expire_pending += 1
            self.lock.notify_all()

    def compact(self):
        """Every resourceVersion until now is gone (etcd compaction): older watches get 410."""
        with self.lock:
            self.rv += 1
            self.oldest_rv = self.rv
            self.lock.notify_all()

    def close_streams(self):
        with self.lock:
            self.stream_epoch += 1
            self.lock.notify_all()

    def count(self, kind):
        with self.lock:
            return sum(1 for k, _, _ in self.requests if k == kind)

    def last_watch_rv(self):
        with self.lock:
            watches = [q for k, q, _ in self.requests if k == "watch"]
            return watches[-1].get("resourceVersion", [""])[0] if watches else None

    # ---- protocol ----
    def handle(self, h):
        url = urllib.parse.urlsplit(h.path)
        query = urllib.parse.parse_qs(url.query)
        watch = query.get("watch", ["0"])[0] in ("1", "true")
        auth = h.headers.get("Authorization", "")
        with self.lock:
            self.requests.append(("watch" if watch else "list", query, auth))
            token = self.token
        expected_path = PATH_PREFIX + self.namespace + "/endpointslices"
        selector = query.get("labelSelector", [""])[0]
        if url.path != expected_path or selector != "kubernetes.io/service-name=" + self.service:
            return self.status(h, 404, "NotFound", "no such resource")
        if auth != "Bearer " + token:
            return self.status(h, 401, "Unauthorized", "Unauthorized")
        if not watch:
            with self.lock:
                body = json.dumps({"kind": "EndpointSliceList", "apiVersion": "discovery.k8s.io/v1",
                                   "metadata": {"resourceVersion": str(self.rv)},
                                   "items": list(self.slices.values())}).encode()
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        since = int(query.get("resourceVersion", ["0"])[0] or 0)
        with self.lock:
            if since < self.oldest_rv:
                gone = True
            else:
                gone = False
                epoch = self.stream_epoch
        if gone:
            return self.status(h, 410, "Expired", "too old resource version: %d" % since)
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        sent = since
        try:
            while True:
                with self.lock:
                    self.lock.wait_for(lambda: self.stream_epoch != epoch or self.expire_pending
                                       or any(rv > sent for rv, _ in self.events), timeout=30)
                    if self.stream_epoch != epoch:
                        break
                    if self.expire_pending:
                        self.expire_pending -= 1
                        line = (json.dumps({"type": "ERROR", "object": {
                            "kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "message": "too old resource version", "reason": "Expired",
                            "code": 410}}) + "\n").encode()
                        self.chunk(h, line)
                        break
                    pending = [(rv, line) for rv, line in self.events if rv > sent]
                for rv, line in pending:
                    self.chunk(h, line)
                    sent = rv
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except OSError:  # the client went away (reset, broken pipe, TLS EOF)
            pass
        h.close_connection = True

    @staticmethod
    def chunk(h, data):
        h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        h.wfile.flush()

    @staticmethod
    def status(h, code, reason, message):
        body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "message": message, "reason": reason, "code": code}).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
