#include "balancer/dns_source.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/logging.h"

namespace inferd::balancer {
namespace {

constexpr int kDefaultDnsPort = 53;
constexpr size_t kMaxDatagram = 65535;

absl::StatusOr<int> ParsePort(absl::string_view text, absl::string_view what) {
  int port = 0;
  if (!absl::SimpleAtoi(text, &port) || port < 1 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": port \"", text, "\" is not a number in [1, 65535]"));
  }
  return port;
}

struct ServerAddress {
  sockaddr_storage addr = {};
  socklen_t len = 0;
  std::string text;  // "IP:PORT", "[IPv6]:PORT"
};

// An IPv4 or IPv6 literal and a port.
absl::StatusOr<ServerAddress> MakeServer(absl::string_view host, int port, absl::string_view what) {
  ServerAddress out;
  const std::string host_str(host);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
  if (inet_pton(AF_INET, host_str.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    out.len = sizeof(sockaddr_in);
    out.text = absl::StrCat(host, ":", port);
  } else if (inet_pton(AF_INET6, host_str.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    out.len = sizeof(sockaddr_in6);
    out.text = absl::StrCat("[", host, "]:", port);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": \"", host, "\" is not an IPv4 or IPv6 address"));
  }
  return out;
}

// "IP", "IP:PORT", "IPv6", "[IPv6]", "[IPv6]:PORT".
absl::StatusOr<ServerAddress> ParseServer(absl::string_view spec) {
  const std::string what = absl::StrCat("DNS server \"", spec, "\"");
  absl::string_view host = spec;
  absl::string_view port_text;
  if (absl::ConsumePrefix(&host, "[")) {
    const size_t close = host.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": unterminated IPv6 address"));
    }
    port_text = host.substr(close + 1);
    host = host.substr(0, close);
    if (!port_text.empty() && !absl::ConsumePrefix(&port_text, ":")) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": expected [IPv6]:PORT"));
    }
    in6_addr unused;
    if (inet_pton(AF_INET6, std::string(host).c_str(), &unused) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": \"", host, "\" in brackets is not an IPv6 address"));
    }
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    const size_t colon = host.find(':');
    port_text = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  int port = kDefaultDnsPort;
  if (!port_text.empty()) {
    absl::StatusOr<int> parsed = ParsePort(port_text, what);
    if (!parsed.ok()) return parsed.status();
    port = *parsed;
  }
  return MakeServer(host, port, what);
}

// The first `nameserver` with an address we can use (not a link-local one with a zone).
absl::StatusOr<ServerAddress> ServerFromResolvConf(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("no DNS server given and cannot read ", path, ": ", std::strerror(errno)));
  }
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view text = line;
    text = text.substr(0, text.find_first_of("#;"));
    std::vector<absl::string_view> words =
        absl::StrSplit(text, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (words.size() < 2 || words[0] != "nameserver") continue;
    absl::StatusOr<ServerAddress> server = MakeServer(words[1], kDefaultDnsPort, path);
    if (server.ok()) return server;
  }
  return absl::FailedPreconditionError(
      absl::StrCat("no DNS server given and ", path, " has no usable nameserver line"));
}

// Sort key: IPv4 before IPv6, then the address bytes.
std::pair<int, std::array<uint8_t, 16>> AddressKey(const std::string& host) {
  std::array<uint8_t, 16> bytes = {};
  if (inet_pton(AF_INET, host.c_str(), bytes.data()) == 1) return {4, bytes};
  inet_pton(AF_INET6, host.c_str(), bytes.data());
  return {6, bytes};
}

const char* TypeName(DnsType type) { return type == DnsType::kA ? "A" : "AAAA"; }

uint16_t RandomId() {
  static thread_local std::random_device device;
  return static_cast<uint16_t>(device());
}

struct Pending {
  DnsQuestion question;
  absl::StatusOr<std::vector<std::string>> result = absl::UnknownError("not asked");
  bool done = false;                   // answered successfully
  bool answered_this_attempt = false;  // answered, possibly with an error
  std::vector<uint16_t> ids;           // of every attempt: a late answer still counts
};

struct FdCloser {
  int fd;
  ~FdCloser() { close(fd); }
};

// Sends a query, under a fresh id, for each question not answered yet.
absl::Status SendUnanswered(int fd, const std::string& server, std::array<Pending, 2>& pending) {
  for (Pending& p : pending) {
    if (p.done) continue;
    p.answered_this_attempt = false;
    do {
      p.question.id = RandomId();
    } while (std::count(pending[0].ids.begin(), pending[0].ids.end(), p.question.id) ||
             std::count(pending[1].ids.begin(), pending[1].ids.end(), p.question.id));
    p.ids.push_back(p.question.id);
    absl::StatusOr<std::vector<uint8_t>> query = BuildDnsQuery(p.question);
    if (!query.ok()) return query.status();
    if (send(fd, query->data(), query->size(), 0) < 0) {
      // Also ECONNREFUSED, left by the ICMP answer to an earlier query: no server there.
      p.result =
          absl::UnavailableError(absl::StrCat("send to ", server, ": ", std::strerror(errno)));
      p.answered_this_attempt = true;
    }
  }
  return absl::OkStatus();
}

// Receives answers until every question sent in this attempt has one (good or bad) or
// `timeout` passes; unanswered ones then get DeadlineExceeded. Cancelled once `wake_fd` is
// readable.
absl::Status AwaitAnswers(int fd, int wake_fd, absl::Duration timeout, const std::string& server,
                          std::array<Pending, 2>& pending) {
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<uint8_t> buffer(kMaxDatagram);
  while (std::any_of(pending.begin(), pending.end(),
                     [](const Pending& p) { return !p.done && !p.answered_this_attempt; })) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      for (Pending& p : pending) {
        if (!p.done && !p.answered_this_attempt) {
          p.result = absl::DeadlineExceededError(
              absl::StrCat("no answer from ", server, " within ", absl::FormatDuration(timeout)));
        }
      }
      return absl::OkStatus();
    }
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    const int ms = static_cast<int>(absl::ToInt64Milliseconds(left + absl::Microseconds(999)));
    const int ready = poll(fds, 2, std::max(ms, 1));
    if (ready < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    }
    if (fds[1].revents != 0) return absl::CancelledError("DNS source stopped");
    if (ready <= 0 || fds[0].revents == 0) continue;
    const ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      // ECONNREFUSED and the like: no server there. Every question fails this attempt.
      const absl::Status error =
          absl::UnavailableError(absl::StrCat("receive from ", server, ": ", std::strerror(errno)));
      for (Pending& p : pending) {
        if (!p.done) {
          p.result = error;
          p.answered_this_attempt = true;
        }
      }
      continue;
    }
    if (n < 2) continue;
    const uint16_t id = static_cast<uint16_t>((buffer[0] << 8) | buffer[1]);
    for (Pending& p : pending) {  // an id we never sent matches nothing: a stray datagram
      if (p.done || std::count(p.ids.begin(), p.ids.end(), id) == 0) continue;
      DnsQuestion question = p.question;
      question.id = id;
      p.result = ParseDnsResponse(absl::MakeConstSpan(buffer.data(), n), question);
      p.answered_this_attempt = true;
      p.done = p.result.ok();
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DnsTarget> ParseDnsName(absl::string_view spec) {
  const std::string what = absl::StrCat("DNS name \"", spec, "\"");
  std::vector<absl::string_view> parts = absl::StrSplit(spec, ':');
  if (parts.size() != 3) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": expected HOST:GRPC_PORT:HTTP_PORT"));
  }
  DnsTarget out;
  if (absl::Status s = ValidateDnsName(parts[0]); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", s.message()));
  }
  absl::StatusOr<int> grpc_port = ParsePort(parts[1], what);
  if (!grpc_port.ok()) return grpc_port.status();
  absl::StatusOr<int> http_port = ParsePort(parts[2], what);
  if (!http_port.ok()) return http_port.status();
  out.name = std::string(parts[0]);
  out.grpc_port = *grpc_port;
  out.http_port = *http_port;
  return out;
}

absl::StatusOr<std::unique_ptr<DnsSource>> DnsSource::Create(DnsSourceOptions options) {
  if (absl::Status s = ValidateDnsName(options.name); !s.ok()) return s;
  for (int port : {options.grpc_port, options.http_port}) {
    if (port < 1 || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("DNS source for ", options.name, ": port ", port, " not in [1, 65535]"));
    }
  }
  if (options.refresh <= absl::ZeroDuration() || options.timeout <= absl::ZeroDuration() ||
      options.attempts < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("DNS source for ", options.name,
                     ": refresh and timeout must be positive and attempts at least 1"));
  }
  absl::StatusOr<ServerAddress> server = options.server.empty()
                                             ? ServerFromResolvConf(options.resolv_conf)
                                             : ParseServer(options.server);
  if (!server.ok()) return server.status();
  const int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  return std::unique_ptr<DnsSource>(
      new DnsSource(std::move(options), server->addr, server->len, server->text, wake_fd));
}

DnsSource::DnsSource(DnsSourceOptions options, const sockaddr_storage& server, socklen_t server_len,
                     std::string server_text, int wake_fd)
    : options_(std::move(options)),
      server_(server),
      server_len_(server_len),
      server_text_(std::move(server_text)),
      wake_fd_(wake_fd) {}

DnsSource::~DnsSource() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  const uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof(one)) < 0) {
    INFERD_LOG(ERROR) << "dns: cannot wake the resolver thread: " << std::strerror(errno);
  }
  if (thread_.joinable()) thread_.join();
  close(wake_fd_);
}

void DnsSource::Start(std::function<void(EndpointList)> on_change) {
  if (thread_.joinable()) {
    INFERD_LOG(ERROR) << "dns: DnsSource::Start called twice; ignored";
    return;
  }
  INFERD_LOG(INFO) << "dns: resolving " << options_.name << " at " << server_text_ << " every "
                   << absl::FormatDuration(options_.refresh);
  thread_ = std::thread([this, on_change = std::move(on_change)] { Loop(on_change); });
}

void DnsSource::Loop(std::function<void(EndpointList)> on_change) {
  bool delivered = false;
  std::vector<std::string> last;  // hosts last delivered
  std::string last_error;         // of the previous resolution, empty after a success
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    const absl::Time start = absl::Now();
    absl::StatusOr<std::vector<std::string>> hosts = Resolve();
    if (absl::IsCancelled(hosts.status())) return;
    {
      std::lock_guard<std::mutex> stopping(mu_);
      if (stop_) return;
    }
    if (hosts.ok()) {
      if (!last_error.empty()) INFERD_LOG(INFO) << "dns: " << options_.name << " resolves again";
      last_error.clear();
    } else if (std::string error(hosts.status().ToString()); error != last_error) {
      INFERD_LOG(WARNING) << "dns: resolving " << options_.name << " at " << server_text_
                          << " failed, keeping " << last.size() << " endpoints: " << error;
      last_error = std::move(error);
    }
    const bool changed = hosts.ok() && *hosts != last;
    if (!delivered || changed) {
      if (hosts.ok()) last = *std::move(hosts);
      delivered = true;
      INFERD_LOG(INFO) << "dns: " << options_.name << " -> " << last.size() << " endpoints"
                       << (last.empty() ? "" : ": ") << absl::StrJoin(last, ", ");
      EndpointList list;
      for (const std::string& host : last) {
        Endpoint e;
        e.host = host;
        e.grpc_port = options_.grpc_port;
        e.http_port = options_.http_port;
        list.push_back(std::move(e));
      }
      on_change(std::move(list));
    }
    if (options_.on_resolve) options_.on_resolve(hosts.status());
    lock.lock();
    cv_.wait_for(lock, absl::ToChronoNanoseconds(start + options_.refresh - absl::Now()),
                 [this] { return stop_; });
  }
}

absl::StatusOr<std::vector<std::string>> DnsSource::Resolve() {
  const int fd = socket(server_.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  const FdCloser closer{fd};
  // Connected: the kernel drops datagrams from other peers and reports ICMP errors to us.
  if (connect(fd, reinterpret_cast<const sockaddr*>(&server_), server_len_) != 0) {
    return absl::UnavailableError(
        absl::StrCat("connect to ", server_text_, ": ", std::strerror(errno)));
  }
  std::array<Pending, 2> pending;
  pending[0].question = {0, options_.name, DnsType::kA};
  pending[1].question = {0, options_.name, DnsType::kAaaa};
  for (int attempt = 0; attempt < options_.attempts; ++attempt) {
    if (absl::Status s = SendUnanswered(fd, server_text_, pending); !s.ok()) return s;
    if (absl::Status s = AwaitAnswers(fd, wake_fd_, options_.timeout, server_text_, pending);
        !s.ok()) {
      return s;
    }
    if (pending[0].done && pending[1].done) break;
  }
  std::vector<std::string> hosts;
  for (Pending& p : pending) {
    if (!p.result.ok()) {
      return absl::Status(
          p.result.status().code(),
          absl::StrCat(TypeName(p.question.type), " query for ", options_.name, " failed after ",
                       options_.attempts, " attempts: ", p.result.status().message()));
    }
    hosts.insert(hosts.end(), p.result->begin(), p.result->end());
  }
  std::sort(hosts.begin(), hosts.end(), [](const std::string& a, const std::string& b) {
    return AddressKey(a) < AddressKey(b);
  });
  hosts.erase(std::unique(hosts.begin(), hosts.end()), hosts.end());
  return hosts;
}

}  // namespace inferd::balancer
