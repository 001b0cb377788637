#include "common/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

// A TCP socket connected to 127.0.0.1:`port` (with a 10 s receive timeout), or -1.
int ConnectLoopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends `request` on a new connection to 127.0.0.1:`port` and returns everything the server
// sends until it closes the connection (requests ask for that with "Connection: close").
std::string Exchange(int port, const std::string& request) {
  const int fd = ConnectLoopback(port);
  EXPECT_GE(fd, 0);
  std::string reply;
  if (fd >= 0) {
    for (size_t sent = 0; sent < request.size();) {
      const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;  // the server may stop reading once it has answered
      sent += static_cast<size_t>(n);
    }
    char buf[4096];
    for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) reply.append(buf, n);
    close(fd);
  }
  return reply;
}

// A keep-alive connection that sends one request at a time and reads its answer (a
// Content-Length body).
class Connection {
 public:
  explicit Connection(int port) : fd_(ConnectLoopback(port)), connected_(fd_ >= 0) {}
  ~Connection() {
    if (connected_) close(fd_);
  }
  // The answer's body, or "" if the connection failed or closed.
  std::string Call(const std::string& request) {
    if (!connected_ || send(fd_, request.data(), request.size(), MSG_NOSIGNAL) !=
                           static_cast<ssize_t>(request.size())) {
      return "";
    }
    std::string data;
    char buf[4096];
    for (;;) {
      const size_t end = data.find("\r\n\r\n");
      if (end != std::string::npos) {
        const size_t at = data.find("Content-Length: ");
        if (at == std::string::npos || at > end) return "";
        const size_t length = std::stoul(data.substr(at + 16));
        if (data.size() >= end + 4 + length) return data.substr(end + 4, length);
      }
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return "";
      data.append(buf, n);
    }
  }
  // Ends the client's side and waits for the server to close its own.
  bool Hangup() {
    shutdown(fd_, SHUT_WR);
    return ClosedByServer();
  }
  // True once the server has closed the connection (recv returns 0).
  bool ClosedByServer() {
    char c;
    return recv(fd_, &c, 1, 0) == 0;
  }

 private:
  const int fd_;
  const bool connected_;
};

std::string KeepAlivePost(const std::string& target, const std::string& body) {
  return absl::StrCat("POST ", target, " HTTP/1.1\r\nHost: x\r\n",
                      "Content-Type: application/json\r\nContent-Length: ", body.size(), "\r\n\r\n",
                      body);
}

std::string Post(const std::string& target, const std::string& body) {
  return absl::StrCat("POST ", target, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n",
                      "Content-Type: application/json\r\nContent-Length: ", body.size(), "\r\n\r\n",
                      body);
}

class HttpServerTest : public ::testing::Test {
 protected:
  // The answering threads hold their connection until they end: joined before the server goes.
  ~HttpServerTest() override {
    for (std::thread& t : answerers_) t.join();
  }
  void Start(HttpServerOptions options = {}) {
    options.address = "127.0.0.1";
    options.port = 0;
    auto server = HttpServer::Start(
        options, [this](HttpRequest request, std::function<void(HttpResponse)> done) {
          ++handled;
          if (request.target == "/whoami") {
            // The I/O thread that runs this connection's loop.
            std::ostringstream id;
            id << std::this_thread::get_id();
            HttpResponse r;
            r.body = id.str();
            return done(std::move(r));
          }
          if (request.target == "/thread") {
            // Answered from a thread of the handler's own, as a batch thread would.
            std::lock_guard<std::mutex> lock(mu_);
            answerers_.emplace_back([done, size = request.body.size()] {
              HttpResponse r;
              r.body = absl::StrCat("{\"thread\":", size, "}");
              done(std::move(r));
            });
            return;
          }
          if (request.target == "/defer") {
            // Answered from the I/O thread's loop, after this handler has returned.
            auto answered = std::make_shared<std::atomic<bool>>(false);
            deferred = HttpServer::DeferOnIoThread([done, answered] {
              HttpResponse r;
              r.body = "{\"deferred\":true}";
              *answered = true;
              done(std::move(r));
            });
            answered_inside_handler = answered->load();
            return;
          }
          HttpResponse r;
          r.body = absl::StrCat("{\"bytes\":", request.body.size(), "}");
          done(std::move(r));
        });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  int port() const { return server_->port(); }

  std::atomic<int> handled{0};
  std::atomic<bool> deferred{false};
  std::atomic<bool> answered_inside_handler{true};
  std::mutex mu_;
  std::vector<std::thread> answerers_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, HandlersCanDeferWorkToTheirIoThread) {
  Start();
  const std::string reply = Exchange(port(), Post("/defer", "{}"));
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 200 OK\r\n")) << reply;
  EXPECT_TRUE(absl::EndsWith(reply, "{\"deferred\":true}")) << reply;
  EXPECT_TRUE(deferred.load());
  EXPECT_FALSE(answered_inside_handler.load());
}

TEST_F(HttpServerTest, ConnectionsOnEveryLoopAreServedAndDrained) {
  HttpServerOptions options;
  options.num_threads = 3;
  Start(options);
  std::vector<std::unique_ptr<Connection>> connections;
  for (int i = 0; i < 9; ++i) connections.push_back(std::make_unique<Connection>(port()));
  // Keep-alive requests on all of them at once, answered inline, deferred and from other
  // threads.
  std::vector<std::thread> clients;
  std::atomic<int> good{0};
  for (int i = 0; i < 9; ++i) {
    clients.emplace_back([&, i] {
      for (int n = 0; n < 20; ++n) {
        const std::string body(static_cast<size_t>(i + n), 'x');
        const std::string target = n % 3 == 0 ? "/x" : n % 3 == 1 ? "/defer" : "/thread";
        const std::string want = n % 3 == 0   ? absl::StrCat("{\"bytes\":", i + n, "}")
                                 : n % 3 == 1 ? std::string("{\"deferred\":true}")
                                              : absl::StrCat("{\"thread\":", i + n, "}");
        if (connections[i]->Call(KeepAlivePost(target, body)) == want) ++good;
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(good.load(), 9 * 20);
  // Drain closes the idle connections, whichever loop they are on, and has nothing to wait for.
  EXPECT_TRUE(server_->Drain(absl::Seconds(5)));
  for (auto& c : connections) EXPECT_TRUE(c->ClosedByServer());
  EXPECT_EQ(server_->active_requests(), 0);
}

TEST_F(HttpServerTest, NewConnectionsGoToTheLoopWithFewest) {
  HttpServerOptions options;
  options.num_threads = 3;
  Start(options);
  // Six connections: two per loop.
  std::vector<std::unique_ptr<Connection>> connections;
  std::map<std::string, std::vector<int>> by_thread;
  for (int i = 0; i < 6; ++i) {
    connections.push_back(std::make_unique<Connection>(port()));
    by_thread[connections.back()->Call(KeepAlivePost("/whoami", ""))].push_back(i);
  }
  ASSERT_EQ(by_thread.size(), 3u);
  for (const auto& [thread, conns] : by_thread) EXPECT_EQ(conns.size(), 2u) << thread;
  // Both of one loop's connections end; the next two connections go to that loop, not in turn.
  const std::string emptied = by_thread.begin()->first;
  for (int i : by_thread.begin()->second) ASSERT_TRUE(connections[i]->Hangup());
  absl::SleepFor(absl::Milliseconds(200));  // the loop destroys the sessions after closing
  for (int i = 0; i < 2; ++i) {
    connections.push_back(std::make_unique<Connection>(port()));
    EXPECT_EQ(connections.back()->Call(KeepAlivePost("/whoami", "")), emptied);
  }
}

TEST_F(HttpServerTest, DeferIsDeclinedOutsideTheIoThreads) {
  Start();
  bool ran = false;
  EXPECT_FALSE(HttpServer::DeferOnIoThread([&ran] { ran = true; }));
  EXPECT_FALSE(ran);
}

TEST_F(HttpServerTest, BodyOverTheLimitGets413WithAJsonError) {
  HttpServerOptions options;
  options.max_body_bytes = 100;
  Start(options);
  EXPECT_TRUE(
      absl::StrContains(Exchange(port(), Post("/x", std::string(100, 'a'))), "{\"bytes\":100}"));
  const std::string reply = Exchange(port(), Post("/x", std::string(101, 'a')));
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 413 ")) << reply;
  EXPECT_TRUE(absl::StrContains(reply, "{\"error\":\"request body exceeds the limit of 100 bytes"))
      << reply;
  EXPECT_EQ(handled.load(), 1);
}

TEST_F(HttpServerTest, MalformedRequestsGet400AndTheServerGoesOn) {
  Start();
  for (const std::string& bad : {std::string("GARBAGE\r\n\r\n"),
                                 std::string("POST /x HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
                                 std::string("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                             "Transfer-Encoding: chunked\r\n\r\nhello"),
                                 std::string("GET / HTTP/1.1\r\nbad header line\r\n\r\n"),
                                 std::string("\x00\x01\x02\r\n\r\n", 7)}) {
    const std::string reply = Exchange(port(), bad);
    EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 400 ")) << absl::CEscape(bad) << ": " << reply;
    EXPECT_TRUE(absl::StrContains(reply, "malformed HTTP request")) << reply;
  }
  EXPECT_EQ(handled.load(), 0);
  EXPECT_TRUE(absl::StrContains(Exchange(port(), Post("/x", "abc")), "{\"bytes\":3}"));
}

TEST_F(HttpServerTest, OversizedHeadersGet431) {
  Start();
  const std::string reply = Exchange(
      port(),
      absl::StrCat("GET / HTTP/1.1\r\nHost: x\r\nX-Big: ", std::string(70000, 'a'), "\r\n\r\n"));
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 431 ")) << reply.substr(0, 200);
  EXPECT_EQ(handled.load(), 0);
}

}  // namespace
}  // namespace inferd
