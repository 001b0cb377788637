#include "common/http_server.h"

#include <utility>  // before Boost (Asio with newer standards needs std::exchange)

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include <boost/asio/defer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/logging.h"

namespace inferd {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {
// A connection's socket, bound to its loop's executor type (not the type-erased default, which
// every asynchronous step would go through).
using Socket = net::basic_stream_socket<tcp, net::io_context::executor_type>;
using Clock = std::chrono::steady_clock;

// The event loop that the current thread runs, on the server's I/O threads.
thread_local net::io_context* t_io_context = nullptr;

// One event loop per I/O thread: an io_context that only its thread runs needs no locking
// between threads, and a connection's handlers always run on its loop's thread, one at a time,
// so they need no strand either. Measured with bench/serving's REST load: one io_context run by
// all the threads, as in Beast's examples, shares every wake-up and queued handler (about 12 %
// more CPU per small REST request, 15 % fewer requests per second); a strand per connection,
// which that needs, cost another 2 µs of CPU per request (24.5 against 22.3 µs), since every
// asynchronous step copies and releases its reference-counted executor and answers from the
// loop's own batch run were queued onto the strand instead of being written at once.
size_t LoopCount(const HttpServerOptions& o) {
  return static_cast<size_t>(std::max(1, o.num_threads));
}

std::vector<std::unique_ptr<net::io_context>> MakeLoops(size_t count) {
  std::vector<std::unique_ptr<net::io_context>> loops;
  for (size_t i = 0; i < count; ++i) {
    loops.push_back(std::make_unique<net::io_context>(/*concurrency_hint=*/1));
  }
  return loops;
}

// How often sessions are checked against their deadlines: an eighth of the shorter timeout,
// between 5 ms and 1 s. A timeout takes effect up to that much late.
Clock::duration SweepInterval(const HttpServerOptions& o) {
  const absl::Duration d = std::clamp(std::min(o.read_timeout, o.idle_timeout) / 8,
                                      absl::Milliseconds(5), absl::Seconds(1));
  return absl::ToChronoNanoseconds(d);
}
}  // namespace

class HttpServer::Impl {
 public:
  class Session;

  Impl(HttpServerOptions options, HttpHandlerFn handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        loop_connections_(new std::atomic<int>[LoopCount(options_)]()),
        loops_(MakeLoops(LoopCount(options_))),
        acceptor_(*loops_[0]),
        sweeper_(acceptor_.get_executor()),
        sweep_interval_(SweepInterval(options_)) {}
  ~Impl() { Stop(); }

  absl::Status Listen() {
    beast::error_code ec;
    auto address = net::ip::make_address(options_.address, ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat("bad address ", options_.address));
    tcp::endpoint endpoint(address, static_cast<unsigned short>(options_.port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("cannot listen for HTTP on ", options_.address,
                                                 ":", options_.port, ": ", ec.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    Accept();
    Sweep();
    for (const auto& loop : loops_) {
      work_.push_back(net::make_work_guard(*loop));  // a loop without connections waits
      threads_.emplace_back([loop = loop.get()] {
        t_io_context = loop;
        loop->run();
      });
    }
    return absl::OkStatus();
  }

  void Stop() {
    for (const auto& loop : loops_) loop->stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  bool Drain(absl::Duration timeout);

  void Accept();
  // Moves an accepted connection onto the loop with the fewest open connections, and serves it.
  void StartSession(tcp::socket accepted);
  void Sweep();
  void Register(const std::shared_ptr<Session>& s) {
    absl::MutexLock lock(&mu_);
    sessions_.insert(s.get());
  }
  void Unregister(Session* s) {
    absl::MutexLock lock(&mu_);
    sessions_.erase(s);
  }
  // Owning references to the registered sessions that `pick` selects. Sessions may be finishing
  // concurrently: they are only touched through a reference they still own, and the references
  // are dropped after mu_ is released, since dropping the last one unregisters the session.
  template <typename Pick>
  std::vector<std::shared_ptr<Session>> LiveSessions(const Pick& pick);

  HttpServerOptions options_;
  const HttpHandlerFn handler_;
  // Declared before loops_ so they outlive them: destroying a loop destroys queued handlers,
  // which may hold the last reference to a session.
  absl::Mutex mu_;
  std::set<Session*> sessions_ ABSL_GUARDED_BY(mu_);
  // Open connections per loop (sessions count themselves in and out): a new connection goes
  // to the loop with the fewest (the first of them from next_loop_, which turns), so that
  // loops stay even as connections come and go.
  std::unique_ptr<std::atomic<int>[]> loop_connections_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> active_{0};
  int port_ = 0;
  std::vector<std::unique_ptr<net::io_context>> loops_;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work_;
  size_t next_loop_ = 0;    // on loops_[0], where connections are accepted
  tcp::acceptor acceptor_;  // on loops_[0], as the sweeper
  // Timeouts: every session records when it must next have made progress, and this one timer
  // closes the sessions past it — rather than a timer armed and cancelled for every read and
  // write, which costs more than parsing a small request.
  net::steady_timer sweeper_;
  const Clock::duration sweep_interval_;
  std::vector<std::thread> threads_;
};

// One connection, on one of the loops. Reads a request, hands it to the handler, writes the
// answer (posted back onto the connection's loop from whichever thread finished it), then
// reads the next one.
class HttpServer::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Impl* server, Socket socket, size_t loop)
      : server_(server), loop_(loop), socket_(std::move(socket)) {
    ++server_->loop_connections_[loop_];
  }
  ~Session() {
    --server_->loop_connections_[loop_];
    server_->Unregister(this);
  }

  void Start() {
    server_->Register(shared_from_this());
    net::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

  // Called by the sweeper: close if the deadline (checked again on the loop, where it is set)
  // has passed.
  void CloseIfExpired() {
    net::post(socket_.get_executor(), [self = shared_from_this()] {
      if (self->Expired(Clock::now())) self->Close();
    });
  }
  bool Expired(Clock::time_point now) const {
    return now.time_since_epoch().count() > deadline_.load(std::memory_order_relaxed);
  }

  // Called on drain: close if idle (waiting for the next request).
  void CloseIfIdle() {
    net::post(socket_.get_executor(), [self = shared_from_this()] {
      if (!self->busy_) {
        beast::error_code ec;
        self->socket_.shutdown(tcp::socket::shutdown_both, ec);
        self->socket_.close(ec);
      }
    });
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(server_->options_.max_body_bytes);
    parser_->header_limit(kHeaderLimit);
    SetDeadline(first_request_ ? server_->options_.read_timeout : server_->options_.idle_timeout);
    first_request_ = false;
    http::async_read_header(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  // An HTTP/1.1 client that sent "Expect: 100-continue" (curl does for large bodies, as do
  // .NET and Java clients) waits for "100 Continue" before it sends the body — about a second
  // when no answer comes. It gets that, or the 413 at once when the body it announced is over
  // the limit, so that it need not send it.
  void OnHeader(beast::error_code ec) {
    if (ec) return OnRead(ec);
    const auto& req = parser_->get();
    if (req.version() >= 11 && beast::iequals(req[http::field::expect], "100-continue")) {
      if (const auto length = parser_->content_length();
          length && *length > server_->options_.max_body_bytes) {
        return OnRead(http::error::body_limit);
      }
      auto go_on = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      return http::async_write(socket_, *go_on,
                               [self = shared_from_this(), go_on](beast::error_code ec, size_t) {
                                 if (ec) return self->Close();
                                 self->ReadBody();
                               });
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return OnRead({});
    // Body bytes already buffered (all of a small request's) are parsed here, without another
    // asynchronous step.
    parser_->eager(true);
    beast::error_code ec;
    buffer_.consume(parser_->put(buffer_.data(), ec));
    if (ec == http::error::need_more) ec = {};
    if (ec || parser_->is_done()) return OnRead(ec);
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->OnRead(ec);
                     });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::operation_aborted ||
        ec == beast::error::timeout || ec == net::error::connection_reset || ec == net::error::eof) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      return WriteError(413, absl::StrCat("request body exceeds the limit of ",
                                          server_->options_.max_body_bytes,
                                          " bytes (--max_request_bytes)"));
    }
    if (ec == http::error::header_limit) {
      return WriteError(431, absl::StrCat("request header fields exceed the limit of ",
                                          kHeaderLimit, " bytes"));
    }
    if (ec) return WriteError(400, absl::StrCat("malformed HTTP request: ", ec.message()));
    busy_ = true;
    ++server_->active_;
    http::request<http::string_body> req = parser_->release();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    HttpRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    if (auto it = req.find(http::field::content_type); it != req.end()) {
      request.content_type = std::string(it->value());
    }
    request.body = std::move(req.body());
    request.version = req.version();
    if (server_->options_.keep_headers) {
      request.headers.reserve(std::distance(req.begin(), req.end()));
      for (const auto& field : req) {
        request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
      }
    }
    deadline_.store(kNoDeadline, std::memory_order_relaxed);  // the handler has it now
    // Answers computed on this loop (inside Handle, or by a batch run the loop deferred) are
    // written at once; an answer from another thread (a batch thread) is queued onto the
    // loop.
    server_->handler_(std::move(request), [self = shared_from_this()](HttpResponse r) {
      net::dispatch(self->socket_.get_executor(),
                    [self, r = std::move(r)]() mutable { self->Write(std::move(r)); });
    });
  }

  void WriteError(int status, const std::string& message) {
    HttpResponse r;
    r.status = status;
    r.body = JsonErrorBody(message);
    keep_alive_ = false;
    busy_ = true;
    ++server_->active_;
    Write(std::move(r));
  }

  // The status line and headers are formatted here and sent with the body in one gathered
  // write: Beast's serializer cost more than all of the rest of the user-space work of writing
  // a small answer (about 14 000 instructions each under the REST benchmark's load).
  void Write(HttpResponse r) {
    const bool keep_alive = keep_alive_ && !server_->draining_;
    const beast::string_view reason = http::obsolete_reason(static_cast<http::status>(r.status));
    head_.clear();
    absl::StrAppend(&head_, version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ", r.status, " ",
                    absl::string_view(reason.data(), reason.size()), "\r\nServer: inferd\r\n");
    if (!r.content_type.empty()) absl::StrAppend(&head_, "Content-Type: ", r.content_type, "\r\n");
    for (const auto& [name, value] : r.headers) absl::StrAppend(&head_, name, ": ", value, "\r\n");
    // No body, and no Content-Length, for 1xx, 204 and 304 answers (RFC 9110, 8.6).
    const bool bodiless = r.status < 200 || r.status == 204 || r.status == 304;
    if (bodiless) {
      r.body.clear();
    } else {
      absl::StrAppend(&head_, "Content-Length: ", r.body.size(), "\r\n");
    }
    if (version_ == 10 && keep_alive) head_ += "Connection: keep-alive\r\n";
    if (version_ != 10 && !keep_alive) head_ += "Connection: close\r\n";
    head_ += "\r\n";
    body_ = std::move(r.body);
    SetDeadline(server_->options_.read_timeout);
    const std::array<net::const_buffer, 2> buffers = {net::buffer(head_), net::buffer(body_)};
    net::async_write(socket_, buffers,
                     [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                       self->busy_ = false;
                       --self->server_->active_;
                       // A drain that began while this answer was being written
                       // found the connection busy and left it to close here.
                       if (ec || !keep_alive || self->server_->draining_) return self->Close();
                       self->Read();
                     });
  }

  void Close() {
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    socket_.close(ec);
  }

  void SetDeadline(absl::Duration timeout) {
    deadline_.store((Clock::now() + absl::ToChronoNanoseconds(timeout)).time_since_epoch().count(),
                    std::memory_order_relaxed);
  }

  static constexpr Clock::rep kNoDeadline = std::numeric_limits<Clock::rep>::max();
  static constexpr uint32_t kHeaderLimit = 64 * 1024;

  Impl* server_;
  const size_t loop_;  // index of the loop that runs it
  // Written on the loop; read by the sweeper.
  std::atomic<Clock::rep> deadline_{kNoDeadline};
  Socket socket_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string head_, body_;  // the answer being written
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool busy_ = false;
  bool first_request_ = true;
};

void HttpServer::Impl::Accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket accepted) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec && !draining_) StartSession(std::move(accepted));
    Accept();
  });
}

void HttpServer::Impl::StartSession(tcp::socket accepted) {
  // The loop is chosen now, with the connections open now (the first with the fewest, looking
  // from next_loop_, which turns).
  const size_t n = loops_.size();
  size_t loop = next_loop_++ % n;
  for (size_t i = 1; i < n; ++i) {
    const size_t j = (loop + i) % n;
    if (loop_connections_[j].load(std::memory_order_relaxed) <
        loop_connections_[loop].load(std::memory_order_relaxed)) {
      loop = j;
    }
  }
  beast::error_code ec;
  const tcp::endpoint local = accepted.local_endpoint(ec);
  if (ec) return;  // the connection is already gone; `accepted` closes it
  const tcp::socket::native_handle_type fd = accepted.release(ec);
  if (ec) return;
  Socket socket(loops_[loop]->get_executor());
  socket.assign(local.protocol(), fd, ec);  // the non-throwing form: this runs on a loop thread
  if (ec) {
    ::close(fd);
    return;
  }
  socket.set_option(tcp::no_delay(true), ec);
  std::make_shared<Session>(this, std::move(socket), loop)->Start();
}

template <typename Pick>
std::vector<std::shared_ptr<HttpServer::Impl::Session>> HttpServer::Impl::LiveSessions(
    const Pick& pick) {
  std::vector<std::shared_ptr<Session>> out;
  absl::MutexLock lock(&mu_);
  for (Session* s : sessions_) {
    if (!pick(*s)) continue;
    if (auto self = s->weak_from_this().lock()) out.push_back(std::move(self));
  }
  return out;
}

void HttpServer::Impl::Sweep() {
  sweeper_.expires_after(sweep_interval_);
  sweeper_.async_wait([this](beast::error_code ec) {
    if (ec) return;
    const Clock::time_point now = Clock::now();
    for (const auto& session : LiveSessions([now](const Session& s) { return s.Expired(now); })) {
      session->CloseIfExpired();
    }
    Sweep();
  });
}

bool HttpServer::Impl::Drain(absl::Duration timeout) {
  draining_ = true;
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
  for (const auto& session : LiveSessions([](const Session&) { return true; })) {
    session->CloseIfIdle();
  }
  const absl::Time deadline = absl::Now() + timeout;
  while (active_.load() > 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  return active_.load() == 0;
}


absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options,
                                                              HttpHandlerFn handler) {
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler));
  if (absl::Status s = impl->Listen(); !s.ok()) return s;
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { impl_->Stop(); }
int HttpServer::port() const { return impl_->port_; }
bool HttpServer::Drain(absl::Duration timeout) { return impl_->Drain(timeout); }
int64_t HttpServer::active_requests() const { return impl_->active_.load(); }

bool HttpServer::DeferOnIoThread(std::function<void()> fn) {
  if (t_io_context == nullptr) return false;
  // A continuation: queued on this thread, behind the completions already waiting, without
  // waking another thread for it.
  net::defer(*t_io_context, std::move(fn));
  return true;
}

}  // namespace inferd
