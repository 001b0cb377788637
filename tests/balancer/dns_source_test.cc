// DnsSource against a real dnsmasq on 127.0.0.1 (skipped where dnsmasq is not installed), and
// against small UDP servers of its own for retries and shutdown.
#include "balancer/dns_source.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

extern char** environ;

namespace inferd::balancer {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(10);  // bound on every wait for a condition

std::string DnsmasqBinary() {
  for (const char* path : {"/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

// A UDP socket on 127.0.0.1 and the port it got.
int BindUdp(int* port) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return -1;
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

// A port nothing listens on (right now).
int FreeUdpPort() {
  int port = 0;
  const int fd = BindUdp(&port);
  close(fd);
  return port;
}

// What a DnsSource delivered, and how its resolutions went.
class Recorder {
 public:
  std::function<void(EndpointList)> OnChange() {
    return [this](EndpointList list) {
      std::lock_guard<std::mutex> lock(mu_);
      std::vector<std::string> keys;
      for (const Endpoint& e : list) keys.push_back(e.Key());
      lists_.push_back(absl::StrJoin(keys, ","));
      cv_.notify_all();
    };
  }
  std::function<void(const absl::Status&)> OnResolve() {
    return [this](const absl::Status& status) {
      std::lock_guard<std::mutex> lock(mu_);
      statuses_.push_back(status);
      cv_.notify_all();
    };
  }
  // Waits until the latest delivered list is `keys` (comma separated Endpoint::Key()s).
  bool WaitForList(const std::string& keys) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(kWait),
                        [&] { return !lists_.empty() && lists_.back() == keys; });
  }
  // Waits until `n` more resolutions than `after` ended; returns their statuses.
  std::vector<absl::Status> WaitForResolutions(size_t after, size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoNanoseconds(kWait),
                 [&] { return statuses_.size() >= after + n; });
    return std::vector<absl::Status>(statuses_.begin() + std::min(after, statuses_.size()),
                                     statuses_.end());
  }
  std::vector<std::string> lists() {
    std::lock_guard<std::mutex> lock(mu_);
    return lists_;
  }
  size_t resolutions() {
    std::lock_guard<std::mutex> lock(mu_);
    return statuses_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lists_;
  std::vector<absl::Status> statuses_;
};

// dnsmasq answering from a hosts file, on 127.0.0.1 only. Names under .test that the file does
// not hold get NXDOMAIN (--local); others get REFUSED (no upstream servers).
class Dnsmasq {
 public:
  ~Dnsmasq() {
    Stop();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  bool Start(const std::string& binary, const std::string& hosts_text) {
    char dir_template[] = "/tmp/dns_source_test.XXXXXX";
    if (mkdtemp(dir_template) == nullptr) return false;
    dir_ = dir_template;
    hosts_ = dir_ + "/hosts";
    WriteHosts(hosts_text);
    for (int tries = 0; tries < 5; ++tries) {  // the free port may be taken in between
      port_ = FreeUdpPort();
      std::vector<std::string> args = {binary,
                                       "--no-daemon",
                                       absl::StrCat("--port=", port_),
                                       "--listen-address=127.0.0.1",
                                       "--bind-interfaces",
                                       "--no-resolv",
                                       "--no-hosts",
                                       absl::StrCat("--addn-hosts=", hosts_),
                                       "--conf-file=/dev/null",
                                       "--local=/test/",
                                       "--user=root",
                                       "--pid-file=",
                                       "--log-facility=-"};
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      if (posix_spawn(&pid_, binary.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
        return false;
      }
      if (WaitUntilAnswering()) return true;
      Stop();
    }
    return false;
  }

  // Replaces the hosts file (atomically) and makes dnsmasq read it again.
  void Update(const std::string& hosts_text) {
    WriteHosts(hosts_text);
    kill(pid_, SIGHUP);
  }

  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  int port() const { return port_; }
  std::string server() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  void WriteHosts(const std::string& text) {
    const std::string tmp = hosts_ + ".tmp";
    std::ofstream(tmp) << text;
    std::rename(tmp.c_str(), hosts_.c_str());
  }

  // Sends a query every 50 ms until dnsmasq answers, it exits, or kWait passes.
  bool WaitUntilAnswering() {
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port_);
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    const std::vector<uint8_t> query = *BuildDnsQuery({7, "probe.test", DnsType::kA});
    const absl::Time deadline = absl::Now() + kWait;
    bool answered = false;
    while (!answered && absl::Now() < deadline) {
      if (waitpid(pid_, nullptr, WNOHANG) != 0) {  // it exited (port taken?)
        pid_ = -1;
        break;
      }
      send(fd, query.data(), query.size(), 0);
      pollfd pfd = {fd, POLLIN, 0};
      if (poll(&pfd, 1, 50) == 1) {
        uint8_t buf[512];
        answered = recv(fd, buf, sizeof(buf), 0) > 0;
      }
    }
    close(fd);
    return answered;
  }

  std::string dir_;
  std::string hosts_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// A UDP DNS server on 127.0.0.1 of the test's own: drops the first `drop` queries, then answers
// each with `a` or `aaaa` (or not at all when `answer` is false).
class FakeDnsServer {
 public:
  FakeDnsServer(std::vector<std::string> a, std::vector<std::string> aaaa, int drop,
                bool answer = true)
      : a_(std::move(a)), aaaa_(std::move(aaaa)), drop_(drop), answer_(answer) {
    fd_ = BindUdp(&port_);
    if (pipe2(stop_pipe_, O_CLOEXEC) != 0) std::abort();
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeDnsServer() {
    const char c = 0;
    if (write(stop_pipe_[1], &c, 1) != 1) std::abort();
    thread_.join();
    close(fd_);
    close(stop_pipe_[0]);
    close(stop_pipe_[1]);
  }
  std::string server() const { return absl::StrCat("127.0.0.1:", port_); }
  // Waits until `n` queries arrived.
  bool WaitForQueries(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(kWait), [&] { return queries_ >= n; });
  }
  int queries() {
    std::lock_guard<std::mutex> lock(mu_);
    return queries_;
  }

 private:
  void Serve() {
    while (true) {
      pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
      if (poll(fds, 2, -1) < 0 || fds[1].revents != 0) return;
      uint8_t q[512];
      sockaddr_storage peer = {};
      socklen_t peer_len = sizeof(peer);
      const ssize_t n =
          recvfrom(fd_, q, sizeof(q), 0, reinterpret_cast<sockaddr*>(&peer), &peer_len);
      if (n < 12) continue;
      int count;
      {
        std::lock_guard<std::mutex> lock(mu_);
        count = ++queries_;
        cv_.notify_all();
      }
      if (count <= drop_ || !answer_) continue;
      size_t end = 12;  // past the question name (the query is ours: uncompressed)
      while (end < static_cast<size_t>(n) && q[end] != 0) end += 1 + q[end];
      end += 5;
      if (end > static_cast<size_t>(n)) continue;
      const bool is_a = q[end - 3] == 1;
      const std::vector<std::string>& ips = is_a ? a_ : aaaa_;
      std::vector<uint8_t> r = {q[0], q[1], 0x81, 0x80, 0, 1, 0, static_cast<uint8_t>(ips.size()),
                                0,    0,    0,    0};
      r.insert(r.end(), q + 12, q + end);
      for (const std::string& ip : ips) {
        uint8_t b[16];
        inet_pton(is_a ? AF_INET : AF_INET6, ip.c_str(), b);
        const uint8_t len = is_a ? 4 : 16;
        r.insert(r.end(),
                 {0xC0, 12, 0, static_cast<uint8_t>(is_a ? 1 : 28), 0, 1, 0, 0, 0, 30, 0, len});
        r.insert(r.end(), b, b + len);
      }
      sendto(fd_, r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&peer), peer_len);
    }
  }

  const std::vector<std::string> a_;
  const std::vector<std::string> aaaa_;
  const int drop_;
  const bool answer_;
  int fd_ = -1;
  int port_ = 0;
  int stop_pipe_[2] = {-1, -1};
  std::mutex mu_;
  std::condition_variable cv_;
  int queries_ = 0;  // guarded by mu_
  std::thread thread_;
};

DnsSourceOptions TestOptions(const std::string& server, const std::string& name,
                             Recorder* recorder) {
  DnsSourceOptions o;
  o.name = name;
  o.grpc_port = 8500;
  o.http_port = 8501;
  o.server = server;
  o.refresh = absl::Milliseconds(50);
  o.timeout = absl::Milliseconds(200);
  o.attempts = 2;
  o.on_resolve = recorder->OnResolve();
  return o;
}

std::unique_ptr<DnsSource> StartSource(DnsSourceOptions options, Recorder* recorder) {
  absl::StatusOr<std::unique_ptr<DnsSource>> source = DnsSource::Create(std::move(options));
  if (!source.ok()) {
    ADD_FAILURE() << source.status();
    return nullptr;
  }
  (*source)->Start(recorder->OnChange());
  return *std::move(source);
}

// Endpoint keys for `hosts`, as Recorder joins them.
std::string Keys(const std::vector<std::string>& hosts) {
  std::vector<std::string> keys;
  for (const std::string& h : hosts) keys.push_back(absl::StrCat(h, ":8500:8501"));
  return absl::StrJoin(keys, ",");
}

class DnsmasqTest : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = DnsmasqBinary();
    if (binary_.empty()) GTEST_SKIP() << "dnsmasq is not installed";
  }
  void StartDnsmasq(const std::string& hosts) {
    ASSERT_TRUE(dnsmasq_.Start(binary_, hosts)) << "dnsmasq did not start";
  }

  std::string binary_;
  Dnsmasq dnsmasq_;
  Recorder recorder_;
};

TEST_F(DnsmasqTest, DeliversAllAddressesThenUpdatesAfterSighup) {
  ASSERT_NO_FATAL_FAILURE(
      StartDnsmasq("10.1.0.3 svc.test\n10.1.0.10 svc.test\n10.1.0.2 svc.test\nfd00::5 svc.test\n"
                   "10.1.0.2 svc.test\n10.1.0.99 other.test\n"));
  auto source = StartSource(TestOptions(dnsmasq_.server(), "svc.test", &recorder_), &recorder_);
  const std::string first = Keys({"10.1.0.2", "10.1.0.3", "10.1.0.10", "fd00::5"});
  ASSERT_TRUE(recorder_.WaitForList(first)) << absl::StrJoin(recorder_.lists(), " | ");
  EXPECT_EQ(recorder_.lists().front(), first);  // dnsmasq answered before the source started

  // Unchanged answers are not delivered again.
  const size_t before = recorder_.resolutions();
  for (const absl::Status& s : recorder_.WaitForResolutions(before, 3)) EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(recorder_.lists().size(), 1u);

  dnsmasq_.Update("10.1.0.4 svc.test\n10.1.0.2 svc.test\nfd00::6 svc.test\nfd00::5 other.test\n");
  const std::string second = Keys({"10.1.0.2", "10.1.0.4", "fd00::6"});
  ASSERT_TRUE(recorder_.WaitForList(second)) << absl::StrJoin(recorder_.lists(), " | ");
  // At most one mixed list in between (a reload between the A and the AAAA answer).
  EXPECT_LE(recorder_.lists().size(), 3u);
}

TEST_F(DnsmasqTest, UnreachableServerKeepsTheLastList) {
  ASSERT_NO_FATAL_FAILURE(StartDnsmasq("10.1.0.1 svc.test\n10.1.0.2 svc.test\n"));
  auto source = StartSource(TestOptions(dnsmasq_.server(), "svc.test", &recorder_), &recorder_);
  const std::string list = Keys({"10.1.0.1", "10.1.0.2"});  // no AAAA: NODATA, not an error
  ASSERT_TRUE(recorder_.WaitForList(list)) << absl::StrJoin(recorder_.lists(), " | ");

  dnsmasq_.Stop();
  const size_t before = recorder_.resolutions();
  std::vector<absl::Status> after = recorder_.WaitForResolutions(before, 4);
  ASSERT_GE(after.size(), 4u);
  // The one in flight when dnsmasq stopped may have succeeded; the later ones cannot. Whether
  // the kernel reports "connection refused" or the query times out depends on ICMP rate limits.
  for (size_t i = 1; i < after.size(); ++i) {
    EXPECT_THAT(after[i].code(), ::testing::AnyOf(absl::StatusCode::kUnavailable,
                                                  absl::StatusCode::kDeadlineExceeded))
        << after[i];
  }
  EXPECT_EQ(recorder_.lists(), std::vector<std::string>{list});
}

TEST_F(DnsmasqTest, NxDomainIsDeliveredAsEmpty) {
  ASSERT_NO_FATAL_FAILURE(StartDnsmasq("10.1.0.1 svc.test\n"));
  auto source = StartSource(TestOptions(dnsmasq_.server(), "missing.test", &recorder_), &recorder_);
  ASSERT_TRUE(recorder_.WaitForList(""));
  std::vector<absl::Status> statuses = recorder_.WaitForResolutions(0, 1);
  ASSERT_FALSE(statuses.empty());
  EXPECT_TRUE(statuses[0].ok()) << statuses[0];
}

TEST_F(DnsmasqTest, RemovedNameIsDeliveredAsEmpty) {
  ASSERT_NO_FATAL_FAILURE(StartDnsmasq("10.1.0.1 svc.test\nfd00::1 svc.test\n"));
  auto source = StartSource(TestOptions(dnsmasq_.server(), "svc.test", &recorder_), &recorder_);
  ASSERT_TRUE(recorder_.WaitForList(Keys({"10.1.0.1", "fd00::1"})));
  dnsmasq_.Update("10.1.0.1 other.test\n");
  ASSERT_TRUE(recorder_.WaitForList("")) << absl::StrJoin(recorder_.lists(), " | ");
}

TEST_F(DnsmasqTest, RefusedFirstResolutionDeliversEmptyAndSaysWhy) {
  ASSERT_NO_FATAL_FAILURE(StartDnsmasq("10.1.0.1 svc.test\n"));
  // Outside --local=/test/ and without upstream servers, dnsmasq answers REFUSED.
  auto source = StartSource(TestOptions(dnsmasq_.server(), "svc.example", &recorder_), &recorder_);
  ASSERT_TRUE(recorder_.WaitForList(""));
  std::vector<absl::Status> statuses = recorder_.WaitForResolutions(0, 2);
  ASSERT_GE(statuses.size(), 2u);
  EXPECT_EQ(statuses[0].code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(statuses[0].message(), HasSubstr("REFUSED"));
  EXPECT_EQ(recorder_.lists().size(), 1u);
}

TEST(DnsSourceTest, NoServerDeliversEmptyOnceAndKeepsTrying) {
  Recorder recorder;
  auto source = StartSource(
      TestOptions(absl::StrCat("127.0.0.1:", FreeUdpPort()), "svc.test", &recorder), &recorder);
  ASSERT_TRUE(recorder.WaitForList(""));
  std::vector<absl::Status> statuses = recorder.WaitForResolutions(0, 3);
  ASSERT_GE(statuses.size(), 3u);
  for (const absl::Status& s : statuses) EXPECT_FALSE(s.ok());
  EXPECT_EQ(recorder.lists().size(), 1u);
}

TEST(DnsSourceTest, RetriesUnansweredQueriesAndSortsAndDeduplicates) {
  FakeDnsServer server({"10.0.0.10", "10.0.0.9", "10.0.0.10"}, {"fd00::2", "::1", "fd00::2"},
                       /*drop=*/1);
  Recorder recorder;
  auto source = StartSource(TestOptions(server.server(), "svc.test", &recorder), &recorder);
  ASSERT_TRUE(recorder.WaitForList(Keys({"10.0.0.9", "10.0.0.10", "::1", "fd00::2"})))
      << absl::StrJoin(recorder.lists(), " | ");
  std::vector<absl::Status> statuses = recorder.WaitForResolutions(0, 1);
  ASSERT_FALSE(statuses.empty());
  EXPECT_TRUE(statuses[0].ok()) << statuses[0];  // the retry got the dropped answer
  EXPECT_GE(server.queries(), 3);
  EXPECT_EQ(recorder.lists().size(), 1u);
}

TEST(DnsSourceTest, DestructorInterruptsAWaitForAnswers) {
  FakeDnsServer server({}, {}, 0, /*answer=*/false);
  Recorder recorder;
  DnsSourceOptions options = TestOptions(server.server(), "svc.test", &recorder);
  options.timeout = absl::Seconds(30);
  auto source = StartSource(std::move(options), &recorder);
  ASSERT_TRUE(server.WaitForQueries(2));  // A and AAAA sent; now waiting up to 30 s
  const absl::Time start = absl::Now();
  source.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_TRUE(recorder.lists().empty());
  EXPECT_EQ(recorder.resolutions(), 0u);
}

TEST(DnsSourceTest, CreateRejectsBadOptions) {
  Recorder recorder;
  auto code = [&](auto change) {
    DnsSourceOptions o = TestOptions("127.0.0.1:53", "svc.test", &recorder);
    change(o);
    return DnsSource::Create(std::move(o)).status().code();
  };
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code([](DnsSourceOptions&) {}), absl::StatusCode::kOk);
  EXPECT_EQ(code([](DnsSourceOptions& o) { o.name = ""; }), kInvalid);
  EXPECT_EQ(code([](DnsSourceOptions& o) { o.name = "a b.test"; }), kInvalid);
  EXPECT_EQ(code([](DnsSourceOptions& o) { o.grpc_port = 0; }), kInvalid);
  EXPECT_EQ(code([](DnsSourceOptions& o) { o.http_port = 65536; }), kInvalid);
  EXPECT_EQ(code([](DnsSourceOptions& o) { o.refresh = absl::ZeroDuration(); }), kInvalid);
  EXPECT_EQ(code([](DnsSourceOptions& o) { o.timeout = -absl::Seconds(1); }), kInvalid);
  EXPECT_EQ(code([](DnsSourceOptions& o) { o.attempts = 0; }), kInvalid);
  for (const char* server : {"dns.local", "1.2.3.4:0", "1.2.3.4:x", "1.2.3:53", "[::1", "[::1]x",
                             "[10.0.0.1]:53", ":53"}) {
    EXPECT_EQ(code([&](DnsSourceOptions& o) { o.server = server; }), kInvalid) << server;
  }
}

TEST(DnsSourceTest, FindsTheServer) {
  Recorder recorder;
  auto server_of = [&](const std::string& server, const std::string& resolv_conf = "") {
    DnsSourceOptions o = TestOptions(server, "svc.test", &recorder);
    o.resolv_conf = resolv_conf;
    absl::StatusOr<std::unique_ptr<DnsSource>> s = DnsSource::Create(std::move(o));
    return s.ok() ? (*s)->server() : s.status().ToString();
  };
  EXPECT_EQ(server_of("127.0.0.1:5353"), "127.0.0.1:5353");
  EXPECT_EQ(server_of("10.96.0.10"), "10.96.0.10:53");
  EXPECT_EQ(server_of("::1"), "[::1]:53");
  EXPECT_EQ(server_of("[fd00::a]"), "[fd00::a]:53");
  EXPECT_EQ(server_of("[fd00::a]:5353"), "[fd00::a]:5353");

  char dir_template[] = "/tmp/dns_source_test.XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  std::ofstream(dir + "/k8s") << "# generated\nsearch default.svc.cluster.local svc.cluster.local\n"
                                 "nameserver fe80::1%eth0\nnameserver\tfd00::10 ; first usable\n"
                                 "nameserver 10.96.0.10\noptions ndots:5\n";
  std::ofstream(dir + "/none") << "search example.com\n";
  EXPECT_EQ(server_of("", dir + "/k8s"), "[fd00::10]:53");
  EXPECT_THAT(server_of("", dir + "/none"), HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(server_of("", dir + "/missing"), HasSubstr("NOT_FOUND"));
  std::filesystem::remove_all(dir);
}

TEST(ParseDnsNameTest, ParsesNameAndPorts) {
  absl::StatusOr<DnsTarget> t = ParseDnsName("inferd.default.svc.cluster.local:8500:8501");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->name, "inferd.default.svc.cluster.local");
  EXPECT_EQ(t->grpc_port, 8500);
  EXPECT_EQ(t->http_port, 8501);
}

TEST(ParseDnsNameTest, RejectsBadSpecs) {
  for (const char* spec : {"", "svc.test", "svc.test:8500", "svc.test:8500:8501:1", ":8500:8501",
                           "svc.test:x:8501", "svc.test:8500:0", "svc.test:8500:65536",
                           "[::1]:8500:8501", "a b:8500:8501", "svc..test:8500:8501"}) {
    absl::StatusOr<DnsTarget> t = ParseDnsName(spec);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << spec;
    EXPECT_THAT(t.status().message(), HasSubstr(spec)) << spec;
  }
  EXPECT_THAT(ParseDnsName("svc.test:8500").status().message(),
              HasSubstr("HOST:GRPC_PORT:HTTP_PORT"));
}

}  // namespace
}  // namespace inferd::balancer
