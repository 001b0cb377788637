// DnsSource against a real dnsmasq on 127.0.0.1 (skipped where dnsmasq is not installed), and
// against small UDP servers of its own for retries and shutdown.
#include "balancer/dns_source.h"

#include <arpa/inet.h>
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
  ~Dnsmasq() { Stop(); }

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

  ~Dnsmasq() = delete;  // placeholder removed below
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
    while (!answered && absl::Now() < deadline && waitpid(pid_, nullptr, WNOHANG) == 0) {
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

}  // namespace
}  // namespace inferd::balancer
