// bare_http_server: the cost of HTTP/1.1 alone, as a peer for inferd-server's REST API in
// bench/serving.
//
// Boost.Beast, asynchronous, keep-alive; --threads threads each running its own io_context, with
// the connections given to them in turn, TCP_NODELAY (the same structure as inferd's
// common/http_server.cc, without timeouts or a handler: a connection's handlers run on its
// loop's one thread, so it needs no strand). --shared_loop: one io_context run by all the
// threads instead, with a strand per connection, as in Beast's own asynchronous server
// examples.
// Every POST is answered 200 with the JSON body inferd returns for one digits prediction;
// anything else gets 405.
//
//   bare_http_server [--port=N] [--threads=N] [--shared_loop] [--address=127.0.0.1]
//
// Prints "bare_http_server listening on ADDRESS:PORT" on stdout once it serves (--port=0 picks a
// free port), and exits on SIGTERM/SIGINT.
// clang-format off
#include <utility>  // before Boost (Asio with newer standards needs std::exchange)
// clang-format on

#include <signal.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "common/flags.h"
#include <thread>
#include <vector>

namespace {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

// inferd's REST answer for the digits model on a constant 0.5 image.
constexpr char kPredictBody[] =
    "{\"predictions\":[[0.040499803,0.027591199,4.455679e-05,0.0062091253,0.84120905,"
    "0.001644619,0.005412907,0.00011069288,0.03906147,0.038216613]]}";
constexpr size_t kMaxBodyBytes = size_t{64} << 20;

// One keep-alive connection: read a request, write the fixed answer, read the next one. Its
// handlers run one at a time: on its loop's thread, or on its strand in the shared loop.
class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : stream_(std::move(socket)) {}

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(kMaxBodyBytes);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec) return Close();
    const http::request<http::string_body>& req = parser_->get();
    const bool post = req.method() == http::verb::post;
    res_.emplace(post ? http::status::ok : http::status::method_not_allowed, req.version());
    res_->set(http::field::server, "bare");
    res_->set(http::field::content_type, "application/json");
    res_->body() = post ? kPredictBody : "{\"error\":\"POST only\"}";
    res_->keep_alive(req.keep_alive());
    res_->prepare_payload();
    http::async_write(stream_, *res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec || !self->res_->keep_alive()) return self->Close();
      self->Read();
    });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
};

// The event loops that connections are spread over (round-robin); loops[0] also accepts.
struct Loops {
  std::vector<std::unique_ptr<net::io_context>> loops;
  bool shared = false;  // one loop run by every thread: connections need strands
  size_t next = 0;
  // The executor for the next connection.
  net::any_io_executor Next() {
    net::io_context& loop = *loops[next++ % loops.size()];
    if (shared) return net::make_strand(loop);
    return loop.get_executor();
  }
};

void Accept(Loops& loops, tcp::acceptor& acceptor) {
  acceptor.async_accept(loops.Next(),
                        [&loops, &acceptor](beast::error_code ec, tcp::socket socket) {
                          if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
                          if (!ec) {
                            socket.set_option(tcp::no_delay(true), ec);
                            std::make_shared<Session>(std::move(socket))->Start();
                          }
                          Accept(loops, acceptor);
                        });
}

}  // namespace

int main(int argc, char** argv) {
  std::string address = "127.0.0.1";
  int32_t port = 0;
  int32_t threads = 2;
  bool shared_loop = false;
  inferd::FlagSet flags("bare_http_server",
                        "Answers every HTTP POST with a fixed digits prediction in JSON (the cost "
                        "of HTTP alone, for bench/serving/run).");
  flags.Int32("port", &port, "HTTP port; 0 picks a free port (printed on stdout)");
  flags.Int32("threads", &threads,
              "I/O threads, each running its own io_context (one shared with --shared_loop)");
  flags.String("address", &address, "address to listen on");
  flags.Bool("shared_loop", &shared_loop,
             "one io_context run by all --threads (Beast's own async server examples) instead "
             "of one per thread with the connections spread over them (as inferd-server)");
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) {
    std::fprintf(stderr, "bare_http_server: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return 0;
  }
  if (port < 0 || port > 65535 || threads < 1 || threads > 1024) {
    std::fprintf(stderr, "bare_http_server: --port must be in [0, 65535], --threads in [1, 1024]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);

  Loops loops;
  loops.shared = shared_loop;
  for (int i = 0; i < (shared_loop ? 1 : threads); ++i) {
    loops.loops.push_back(std::make_unique<net::io_context>(shared_loop ? threads : 1));
  }
  net::io_context& ioc = *loops.loops[0];
  tcp::acceptor acceptor(net::make_strand(ioc));
  beast::error_code ec;
  const auto ip = net::ip::make_address(address, ec);
  if (ec) {
    std::fprintf(stderr, "bare_http_server: bad --address %s\n", address.c_str());
    return 2;
  }
  const tcp::endpoint endpoint(ip, static_cast<unsigned short>(port));
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    std::fprintf(stderr, "bare_http_server: cannot listen on %s:%d: %s\n", address.c_str(), port,
                 ec.message().c_str());
    return 1;
  }
  Accept(loops, acceptor);
  net::signal_set stop(ioc, SIGINT, SIGTERM);
  stop.async_wait([&loops](beast::error_code, int) {
    for (auto& loop : loops.loops) loop->stop();
  });
  std::printf("bare_http_server listening on %s:%d\n", address.c_str(),
              acceptor.local_endpoint().port());
  std::fflush(stdout);
  // Loops other than the first have nothing to do until a connection comes.
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  for (size_t i = 1; i < loops.loops.size(); ++i) {
    guards.push_back(net::make_work_guard(*loops.loops[i]));
  }
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) {
    net::io_context& loop = *loops.loops[shared_loop ? 0 : i];
    pool.emplace_back([&loop] { loop.run(); });
  }
  ioc.run();
  for (auto& t : pool) t.join();
  return 0;
}
