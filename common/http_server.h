// HTTP/1.1 server (Boost.Beast) in front of a handler function: keep-alive, a request body
// limit (413 beyond it), read and idle timeouts, and a drain that stops accepting and waits for
// in-flight requests. Errors it answers itself (413, malformed requests) have TF Serving's JSON
// body {"error": "..."}. Each I/O thread runs its own event loop; an accepted connection goes to
// the loop with the fewest open connections. Beast lives only in http_server.cc. Thread-safe.
// Used by inferd-server (the REST API) and inferd-gateway (its REST proxy and monitoring page).
#ifndef INFERD_COMMON_HTTP_SERVER_H_
#define INFERD_COMMON_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/json_escape.h"

namespace inferd {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, e.g. "/v1/models/m:predict"
  std::string content_type;
  std::string body;
  HttpHeaders headers;  // every header, when HttpServerOptions::keep_headers
  unsigned version = 11;  // 10 or 11
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  HttpHeaders headers;  // extra headers
};

// Answers `request` by calling `done` exactly once, inline or from any thread.
using HttpHandlerFn = std::function<void(HttpRequest request, std::function<void(HttpResponse)> done)>;


struct HttpServerOptions {
  std::string address = "0.0.0.0";
  int port = 8501;  // 0 picks a free port
  int num_threads = 2;  // I/O threads, one event loop each
  // Larger bodies get 413.
  size_t max_body_bytes = size_t{64} << 20;
  // Time allowed to receive one request (headers and body) once it has started.
  absl::Duration read_timeout = absl::Seconds(30);
  // A keep-alive connection idle this long is closed.
  absl::Duration idle_timeout = absl::Seconds(120);
  // Fill HttpRequest::headers (a proxy forwards them; the REST API needs none).
  bool keep_headers = false;
};

class HttpServer {
 public:
  // Binds and starts serving; fails if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpServerOptions options,
                                                           HttpHandlerFn handler);
  // Stops at once (connections are closed).
  ~HttpServer();

  int port() const;
  // Stops accepting, closes idle connections, answers the rest with "Connection: close", and
  // waits up to `timeout` for requests in flight. Returns true if all finished.
  bool Drain(absl::Duration timeout);
  int64_t active_requests() const;

  // For handlers, on one of an HttpServer's I/O threads: runs `fn` on that thread's event loop
  // after the I/O completions already waiting there (other connections' requests that arrived
  // together with this one), so that work they all need can be done once for them all. Returns
  // false, and does not run `fn`, on any other thread.
  static bool DeferOnIoThread(std::function<void()> fn);

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace inferd

#endif  // INFERD_COMMON_HTTP_SERVER_H_
