// HTTP/1.1 server (Boost.Beast) in front of HttpHandler: keep-alive, a request body limit (413
// beyond it), read and idle timeouts, and a drain that stops accepting and waits for in-flight
// requests. Beast lives only in http_server.cc. Thread-safe.
#ifndef INFERD_SERVING_HTTP_SERVER_H_
#define INFERD_SERVING_HTTP_SERVER_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "serving/http_handler.h"

namespace inferd::serving {

struct HttpServerOptions {
  std::string address = "0.0.0.0";
  int port = 8501;  // 0 picks a free port
  int num_threads = 2;
  // Larger bodies get 413.
  size_t max_body_bytes = size_t{64} << 20;
  // Time allowed to receive one request (headers and body) once it has started.
  absl::Duration read_timeout = absl::Seconds(30);
  // A keep-alive connection idle this long is closed.
  absl::Duration idle_timeout = absl::Seconds(120);
};

class HttpServer {
 public:
  // Binds and starts serving; fails if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpServerOptions options,
                                                           const HttpHandler* handler);
  // Stops at once (connections are closed).
  ~HttpServer();

  int port() const;
  // Stops accepting, closes idle connections, answers the rest with "Connection: close", and
  // waits up to `timeout` for requests in flight. Returns true if all finished.
  bool Drain(absl::Duration timeout);
  int64_t active_requests() const;

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace inferd::serving

#endif  // INFERD_SERVING_HTTP_SERVER_H_
