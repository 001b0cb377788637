#include "balancer/k8s_source.h"

#include <utility>  // before Boost (Asio with newer standards needs std::exchange)

#include <sys/socket.h>
#include <sys/time.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/logging.h"

namespace inferd::balancer {
namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

// A list answer larger than this is refused (tens of thousands of slices).
constexpr size_t kMaxListBytes = size_t{256} << 20;
// A watch event line longer than this ends the watch (and re-lists).
constexpr size_t kMaxEventBytes = size_t{16} << 20;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string UrlEncode(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

bool SameEndpoints(const EndpointList& a, const EndpointList& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].Key() != b[i].Key() || a[i].state != b[i].state) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<KubernetesOptions> MakeKubernetesOptions(absl::string_view service,
                                                        absl::string_view api_server,
                                                        absl::string_view token_file,
                                                        absl::string_view ca_file,
                                                        absl::string_view service_account_dir) {
  KubernetesOptions o;
  std::vector<std::string> parts = absl::StrSplit(service, '/');
  const std::string dir(service_account_dir);
  if (parts.size() == 2 && !parts[0].empty() && !parts[1].empty()) {
    o.namespace_name = parts[0];
    o.service = parts[1];
  } else if (parts.size() == 1 && !parts[0].empty()) {
    o.service = parts[0];
    auto ns = ReadFile(dir + "/namespace");
    if (!ns.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--k8s_service=", service, " has no namespace and ", dir,
          "/namespace cannot be read; give NAMESPACE/NAME"));
    }
    o.namespace_name = std::string(absl::StripAsciiWhitespace(*ns));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--k8s_service=", service, ": expected NAMESPACE/NAME"));
  }
  if (!api_server.empty()) {
    o.api_server = std::string(api_server);
  } else {
    const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
    const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
    if (host == nullptr || port == nullptr || *host == '\0') {
      return absl::InvalidArgumentError(
          "not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST/PORT are not set); give "
          "--k8s_api_server");
    }
    const std::string h(host);
    o.api_server = absl::StrCat("https://", h.find(':') != std::string::npos ? "[" + h + "]" : h,
                                ":", port);
  }
  if (!absl::StartsWith(o.api_server, "https://") && !absl::StartsWith(o.api_server, "http://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--k8s_api_server=", o.api_server, ": expected https://HOST:PORT or http://HOST:PORT"));
  }
  o.token_file = token_file.empty() ? dir + "/token" : std::string(token_file);
  o.ca_file = ca_file.empty() ? dir + "/ca.crt" : std::string(ca_file);
  return o;
}

// Synchronous HTTP(S) GETs on the discovery thread; Cancel() from another thread shuts the
// connection in use down, so a blocked read returns at once.
class KubernetesSource::Client {
 public:
  explicit Client(const KubernetesOptions& o) : options_(o), ssl_(ssl::context::tls_client) {}

  absl::Status Init() {
    absl::string_view url = options_.api_server;
    https_ = absl::ConsumePrefix(&url, "https://");
    if (!https_) absl::ConsumePrefix(&url, "http://");
    url = url.substr(0, url.find('/'));
    if (absl::ConsumePrefix(&url, "[")) {
      const size_t close = url.find(']');
      if (close == absl::string_view::npos) return Bad("unterminated IPv6 address");
      host_ = std::string(url.substr(0, close));
      url.remove_prefix(close + 1);
      port_ = absl::ConsumePrefix(&url, ":") ? std::string(url) : "";
    } else {
      const size_t colon = url.find(':');
      host_ = std::string(url.substr(0, colon));
      port_ = colon == absl::string_view::npos ? "" : std::string(url.substr(colon + 1));
    }
    if (port_.empty()) port_ = https_ ? "443" : "80";
    int port = 0;
    if (host_.empty() || !absl::SimpleAtoi(port_, &port) || port < 1 || port > 65535) {
      return Bad("expected https://HOST:PORT");
    }
    if (https_) {
      beast::error_code ec;
      ssl_.set_verify_mode(ssl::verify_peer, ec);
      if (!ec) ssl_.load_verify_file(options_.ca_file, ec);
      if (ec) {
        return absl::InvalidArgumentError(absl::StrCat(
            "cannot load the API server's CA from ", options_.ca_file, ": ", ec.message()));
      }
    }
    return absl::OkStatus();
  }

  // GETs `target`; for a 200, `on_body` receives the body as it arrives until it returns false
  // or the body ends; another status's body goes to `error_body` (cut at 64 KiB). Returns the
  // HTTP status, or UNAVAILABLE for a transport failure.
  absl::StatusOr<int> Get(const std::string& target,
                          const std::function<bool(absl::string_view)>& on_body,
                          std::string* error_body) {
    beast::error_code ec;
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(host_, port_, ec);
    if (ec) return Transport("resolve", ec);
    tcp::socket socket(ioc_);
    net::connect(socket, results, ec);
    if (ec) return Transport("connect", ec);
    // A connection quiet for longer than a watch may last is dead.
    const int64_t quiet = absl::ToInt64Seconds(options_.watch_timeout) + 30;
    timeval tv{static_cast<time_t>(quiet), 0};
    setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) return absl::CancelledError("stopping");
      fd_ = socket.native_handle();
    }
    absl::StatusOr<int> result;
    if (https_) {
      ssl::stream<tcp::socket&> stream(socket, ssl_);
      SSL_set_tlsext_host_name(stream.native_handle(), host_.c_str());
      stream.set_verify_callback(ssl::host_name_verification(host_));
      stream.handshake(ssl::stream_base::client, ec);
      result = ec ? Transport("TLS handshake", ec) : Exchange(stream, target, on_body, error_body);
    } else {
      result = Exchange(socket, target, on_body, error_body);
    }
    absl::MutexLock lock(&mu_);
    fd_ = -1;
    socket.close(ec);
    return result;
  }

  void Cancel() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  }

  // Re-read the token before the next request.
  void ExpireToken() { token_read_ = absl::InfinitePast(); }

 private:
  absl::Status Bad(absl::string_view why) const {
    return absl::InvalidArgumentError(
        absl::StrCat("--k8s_api_server=", options_.api_server, ": ", why));
  }
  static absl::Status Transport(absl::string_view step, const beast::error_code& ec) {
    return absl::UnavailableError(absl::StrCat(step, ": ", ec.message()));
  }

  const std::string& Token() {
    const absl::Time now = absl::Now();
    if (!options_.token_file.empty() && now - token_read_ >= options_.token_reread) {
      auto t = ReadFile(options_.token_file);
      if (t.ok()) {
        token_ = std::string(absl::StripAsciiWhitespace(*t));
      } else if (token_read_ == absl::InfinitePast()) {
        INFERD_LOG(WARNING) << "k8s: " << t.status().message() << "; sending no token";
      }
      token_read_ = now;
    }
    return token_;
  }

  template <typename Stream>
  absl::StatusOr<int> Exchange(Stream& stream, const std::string& target,
                               const std::function<bool(absl::string_view)>& on_body,
                               std::string* error_body) {
    beast::error_code ec;
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, host_);
    req.set(http::field::accept, "application/json");
    req.set(http::field::user_agent, "inferd-gateway");
    if (!Token().empty()) req.set(http::field::authorization, "Bearer " + token_);
    http::write(stream, req, ec);
    if (ec) return Transport("send", ec);
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    http::read_header(stream, buffer, parser, ec);
    if (ec) return Transport("read", ec);
    const int status = parser.get().result_int();
    char chunk[16384];
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof(chunk);
      http::read_some(stream, buffer, parser, ec);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) return Transport("read", ec);
      const size_t n = sizeof(chunk) - parser.get().body().size;
      if (status == 200) {
        if (n > 0 && !on_body(absl::string_view(chunk, n))) break;
      } else if (error_body->size() < 65536) {
        error_body->append(chunk, n);
      }
    }
    return status;
  }

  const KubernetesOptions& options_;
  net::io_context ioc_;
  ssl::context ssl_;
  bool https_ = false;
  std::string host_, port_;
  std::string token_;
  absl::Time token_read_ = absl::InfinitePast();
  absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_) = -1;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

KubernetesSource::KubernetesSource(KubernetesOptions options)
    : options_(std::move(options)), client_(std::make_unique<Client>(options_)) {}

KubernetesSource::~KubernetesSource() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  client_->Cancel();
  if (thread_.joinable()) thread_.join();
}

void KubernetesSource::Start(std::function<void(EndpointList)> on_change) {
  on_change_ = std::move(on_change);
  thread_ = std::thread([this] { Run(); });
}

void KubernetesSource::Run() {
  if (absl::Status s = client_->Init(); !s.ok()) {
    INFERD_LOG(ERROR) << "k8s: " << s.message() << "; discovery is off";
    return;
  }
  const std::string path =
      absl::StrCat("/apis/discovery.k8s.io/v1/namespaces/", UrlEncode(options_.namespace_name),
                   "/endpointslices?labelSelector=",
                   UrlEncode(absl::StrCat("kubernetes.io/service-name=", options_.service)));
  std::mt19937_64 rng(std::random_device{}());
  absl::Duration backoff = options_.backoff_initial;
  auto stopped = [this] {
    absl::MutexLock lock(&mu_);
    return stop_;
  };
  // Waits the backoff (jittered: half to all of it), doubling it for next time; false if
  // stopping.
  auto back_off = [&] {
    const double f = 0.5 + 0.5 * std::uniform_real_distribution<double>(0, 1)(rng);
    const absl::Duration wait = backoff * f;
    backoff = std::min(backoff * 2, options_.backoff_max);
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stop_), wait);
    return !stop_;
  };
  std::map<std::string, SliceEndpoints> slices;
  EndpointList delivered;
  bool first = true;
  auto deliver = [&] {
    EndpointList merged = MergeSlices(slices);
    if (!first && SameEndpoints(merged, delivered)) return;
    first = false;
    int draining = 0;
    for (const Endpoint& e : merged) draining += e.state == EndpointState::kDraining;
    INFERD_LOG(INFO) << "k8s: " << merged.size() << " endpoints (" << draining << " draining) in "
                     << slices.size() << " EndpointSlices of " << options_.namespace_name << "/"
                     << options_.service;
    delivered = merged;
    on_change_(std::move(merged));
  };

  while (!stopped()) {
    std::string body, error_body;
    bool too_large = false;
    ++lists_;
    auto status = client_->Get(
        path,
        [&](absl::string_view chunk) {
          too_large = body.size() + chunk.size() > kMaxListBytes;
          if (!too_large) body.append(chunk.data(), chunk.size());
          return !too_large;
        },
        &error_body);
    if (stopped()) return;
    absl::StatusOr<SliceList> list = absl::UnknownError("");
    if (!status.ok()) {
      list = status.status();
    } else if (*status != 200) {
      if (*status == 401) client_->ExpireToken();
      list = absl::UnavailableError(absl::StrCat("HTTP ", *status, ": ", error_body.substr(0, 300)));
    } else if (too_large) {
      list = absl::ResourceExhaustedError(absl::StrCat("list larger than ", kMaxListBytes, " bytes"));
    } else {
      list = ParseEndpointSliceList(body, options_.ports);
    }
    if (!list.ok()) {
      INFERD_LOG(WARNING) << "k8s: listing EndpointSlices of " << options_.namespace_name << "/"
                          << options_.service << " failed: " << list.status().message()
                          << "; keeping the last endpoints";
      if (!back_off()) return;
      continue;
    }
    slices.clear();
    for (SliceEndpoints& s : list->slices) {
      if (!s.skipped.empty()) INFERD_LOG(WARNING) << "k8s: " << s.skipped;
      slices[s.name] = std::move(s);
    }
    deliver();
    std::string rv = list->resource_version;
    backoff = options_.backoff_initial;

    // Watch until the resourceVersion expires (410) or a watch fails to parse: then re-list.
    bool relist = false;
    while (!relist && !stopped()) {
      ++watch_restarts_;
      std::string pending;
      std::string problem;
      const std::string target = absl::StrCat(
          path, "&watch=1&allowWatchBookmarks=true&resourceVersion=", UrlEncode(rv),
          "&timeoutSeconds=", absl::ToInt64Seconds(options_.watch_timeout));
      auto watched = client_->Get(
          target,
          [&](absl::string_view chunk) {
            pending.append(chunk.data(), chunk.size());
            size_t start = 0, nl;
            while ((nl = pending.find('\n', start)) != std::string::npos) {
              absl::string_view line(pending.data() + start, nl - start);
              start = nl + 1;
              if (absl::StripAsciiWhitespace(line).empty()) continue;
              auto event = ParseWatchEvent(line, options_.ports);
              if (!event.ok()) {
                problem = std::string(event.status().message());
                relist = true;  // our view may have missed a change
                return false;
              }
              switch (event->type) {
                case WatchEvent::Type::kAdded:
                case WatchEvent::Type::kModified:
                  if (!event->slice.skipped.empty()) INFERD_LOG(WARNING) << "k8s: " << event->slice.skipped;
                  if (!event->slice.resource_version.empty()) rv = event->slice.resource_version;
                  slices[event->slice.name] = std::move(event->slice);
                  deliver();
                  break;
                case WatchEvent::Type::kDeleted:
                  if (!event->slice.resource_version.empty()) rv = event->slice.resource_version;
                  slices.erase(event->slice.name);
                  deliver();
                  break;
                case WatchEvent::Type::kBookmark:
                  rv = event->slice.resource_version;
                  break;
                case WatchEvent::Type::kError:
                  problem = absl::StrCat("ERROR event ", event->error_code, ": ",
                                         event->error_message);
                  relist = event->error_code == 410;
                  return false;
              }
            }
            pending.erase(0, start);
            if (pending.size() > kMaxEventBytes) {
              problem = "a watch event larger than 16 MiB";
              relist = true;
              return false;
            }
            return !stopped();
          },
          &problem);
      if (stopped()) return;
      if (watched.ok() && *watched == 410) relist = true;
      if (relist) {
        INFERD_LOG(INFO) << "k8s: re-listing (" << (problem.empty() ? "HTTP 410" : problem) << ")";
        break;
      }
      if (watched.ok() && *watched == 200 && problem.empty()) {
        backoff = options_.backoff_initial;  // the watch ran out its time: resume at once
        continue;
      }
      if (watched.ok() && *watched == 401) client_->ExpireToken();
      INFERD_LOG(WARNING) << "k8s: watch ended: "
                          << (!watched.ok() ? std::string(watched.status().message())
                                            : absl::StrCat("HTTP ", *watched, " ", problem.substr(0, 300)))
                          << "; reconnecting";
      if (!back_off()) return;
    }
  }
}

}  // namespace inferd::balancer
