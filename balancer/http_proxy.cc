#include "balancer/http_proxy.h"

#include <utility>  // before Boost (Asio with newer standards needs std::exchange)

#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/json_escape.h"

namespace inferd::balancer {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

// Headers that describe one connection, not the request: never forwarded (RFC 9110 7.6.1).
// Nor is Expect: the gateway's own server has answered "100-continue" and holds the whole body
// (a replica would otherwise send an interim 100 that the upstream read takes for the answer).
bool HopByHop(absl::string_view name) {
  for (const char* h : {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
                        "trailer", "upgrade", "proxy-authenticate", "proxy-authorization",
                        "content-length", "expect"}) {
    if (absl::EqualsIgnoreCase(name, h)) return true;
  }
  return false;
}

// The request's kind for metrics (never the raw path: clients must not choose cardinality).
std::string RestApi(const HttpRequest& r) {
  const std::string path = r.target.substr(0, r.target.find('?'));
  if (!absl::StartsWith(path, "/v1/models")) return "rest_other";
  if (absl::EndsWith(path, ":predict")) return "rest_predict";
  if (absl::EndsWith(path, ":classify") || absl::EndsWith(path, ":regress")) return "rest_classify";
  if (absl::EndsWith(path, "/metadata")) return "rest_metadata";
  return "rest_status";
}

// Safe to send twice: reads, and TF Serving's inference calls (they change no state).
bool Idempotent(const HttpRequest& r) {
  if (r.method == "GET" || r.method == "HEAD") return true;
  const std::string path = r.target.substr(0, r.target.find('?'));
  return r.method == "POST" && (absl::EndsWith(path, ":predict") ||
                                absl::EndsWith(path, ":classify") ||
                                absl::EndsWith(path, ":regress"));
}

HttpResponse ErrorResponse(int status, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.body = JsonErrorBody(message);
  return r;
}

}  // namespace

class HttpProxy::Impl {
 public:
  Impl(Balancer* balancer, GatewayMetrics* metrics, RetryBudget* budget, VersionTracker* versions,
       HttpProxyOptions options)
      : balancer_(balancer),
        metrics_(metrics),
        budget_(budget),
        versions_(versions),
        options_(options),
        work_(net::make_work_guard(ioc_)) {
    for (int i = 0; i < std::max(1, options_.num_threads); ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
  }

  ~Impl() {
    stopping_ = true;
    work_.reset();
    ioc_.stop();
    for (std::thread& t : threads_) t.join();
    absl::MutexLock lock(&mu_);
    idle_.clear();  // before ioc_
  }

  class Exchange;

  std::unique_ptr<beast::tcp_stream> TakeIdle(const std::string& key) {
    absl::MutexLock lock(&mu_);
    auto it = idle_.find(key);
    if (it == idle_.end() || it->second.empty()) return nullptr;
    std::unique_ptr<beast::tcp_stream> s = std::move(it->second.back());
    it->second.pop_back();
    return s;
  }

  void PutIdle(const std::string& key, std::unique_ptr<beast::tcp_stream> s) {
    absl::MutexLock lock(&mu_);
    auto& pool = idle_[key];
    if (pool.size() < options_.max_idle_per_replica) pool.push_back(std::move(s));
  }

  Balancer* const balancer_;
  GatewayMetrics* const metrics_;
  RetryBudget* const budget_;
  VersionTracker* const versions_;
  const HttpProxyOptions options_;
  // Set when the proxy is destroyed: exchanges abandoned then do not answer (the HTTP server in
  // front, drained and stopped first, is gone).
  std::atomic<bool> stopping_{false};
  net::io_context ioc_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  std::map<std::string, std::vector<std::unique_ptr<beast::tcp_stream>>> idle_
      ABSL_GUARDED_BY(mu_);
};

// One client request and its attempts. The asynchronous chain runs one step at a time; the
// shared_ptr held by each pending handler keeps the exchange alive. Destroyed unanswered
// otherwise than by the proxy stopping, it answers 503.
class HttpProxy::Impl::Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(Impl* impl, HttpRequest request, std::function<void(HttpResponse)> done)
      : impl_(impl),
        request_(std::move(request)),
        done_(std::move(done)),
        api_(RestApi(request_)),
        idempotent_(Idempotent(request_)),
        need_(impl->versions_ != nullptr ? RequirementFromRestTarget(request_.target)
                                         : std::nullopt),
        start_(absl::Now()),
        resolver_(impl->ioc_) {
    impl_->budget_->RequestStarted();
    if (need_) impl_->versions_->Note(*need_);
    const auto verb = http::string_to_verb(request_.method);
    upstream_.method(verb);
    if (verb == http::verb::unknown) upstream_.method_string(request_.method);
    upstream_.target(request_.target);
    upstream_.version(11);
    for (const auto& [name, value] : request_.headers) {
      if (!HopByHop(name)) upstream_.insert(name, value);
    }
    if (request_.headers.empty() && !request_.content_type.empty()) {
      upstream_.set(http::field::content_type, request_.content_type);
    }
    upstream_.keep_alive(true);
    upstream_.body() = std::move(request_.body);
    upstream_.prepare_payload();
  }

  ~Exchange() {
    if (in_budget_) impl_->budget_->Release();
    if (!answered_ && !impl_->stopping_) {
      Answer(ErrorResponse(503, "inferd-gateway is shutting down"), "SHUTDOWN");
    }
    impl_->budget_->RequestEnded();
  }

  void Start() { Attempt(); }

 private:
  void Attempt() {
    std::shared_ptr<Replica> replica =
        impl_->balancer_->Pick(tried_, absl::Now(), need_ ? &*need_ : nullptr);
    if (replica == nullptr) {
      if (!tried_.empty()) return Answer(std::move(last_), "RETRIES_DONE");
      impl_->metrics_->RecordAttempt("none", api_, "NO_REPLICA", absl::ZeroDuration());
      return Answer(ErrorResponse(503, "inferd-gateway: no replica is available"), "503");
    }
    tried_.push_back(replica.get());
    kept_.push_back(replica);
    replica_ = std::move(replica);
    ++attempts_;
    attempt_start_ = absl::Now();
    deadline_ = attempt_start_ + impl_->options_.timeout;
    stream_ = impl_->TakeIdle(replica_->key());
    reused_ = stream_ != nullptr;
    if (reused_) return Send();
    Connect();
  }

  void Connect() {
    stream_ = std::make_unique<beast::tcp_stream>(net::make_strand(impl_->ioc_));
    reused_ = false;
    const Endpoint& e = replica_->endpoint();
    resolver_.async_resolve(
        e.host, std::to_string(e.http_port),
        [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type results) {
          if (ec) return self->Unreached(ec);
          self->stream_->expires_after(self->Remaining());
          self->stream_->async_connect(
              results, [self](beast::error_code ec, const tcp::endpoint&) {
                if (ec) return self->Unreached(ec);
                beast::error_code ignored;
                self->stream_->socket().set_option(tcp::no_delay(true), ignored);
                self->Send();
              });
        });
  }

  void Send() {
    stream_->expires_after(Remaining());
    http::async_write(*stream_, upstream_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->reused_ ? self->Stale() : self->Unreached(ec);
                        self->Receive();
                      });
  }

  void Receive() {
    parser_.emplace();
    parser_->body_limit(impl_->options_.max_response_bytes);
    buffer_.clear();
    http::async_read(*stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->OnReceived(ec);
                     });
  }

  void OnReceived(beast::error_code ec) {
    if (ec) {
      // A pooled connection the replica had closed: nothing was read, nothing processed.
      if (reused_ && !parser_->got_some() &&
          (ec == http::error::end_of_stream || ec == net::error::connection_reset ||
           ec == net::error::eof)) {
        return Stale();
      }
      const absl::Duration took = absl::Now() - attempt_start_;
      impl_->balancer_->Report(*replica_, true, took, absl::Now());
      if (ec == beast::error::timeout) {
        impl_->metrics_->RecordAttempt(replica_->key(), api_, "TIMEOUT", took);
        return Answer(ErrorResponse(504, absl::StrCat("inferd-gateway: replica ",
                                                      replica_->endpoint().GrpcTarget(),
                                                      " did not answer in time")),
                      "504");
      }
      impl_->metrics_->RecordAttempt(replica_->key(), api_, "CONNECTION_LOST", took);
      const std::string message = absl::StrCat("inferd-gateway: lost the connection to replica ",
                                               replica_->endpoint().GrpcTarget(), ": ",
                                               ec.message());
      if (idempotent_ && MayRetry()) return Retry(ErrorResponse(502, message));
      return Answer(ErrorResponse(502, message), "502");
    }
    http::response<http::string_body> res = parser_->release();
    const int status = res.result_int();
    const absl::Duration took = absl::Now() - attempt_start_;
    impl_->balancer_->Report(*replica_, status == 503, took, absl::Now());
    impl_->metrics_->RecordAttempt(replica_->key(), api_, std::to_string(status), took);
    if (res.keep_alive()) {
      impl_->PutIdle(replica_->key(), std::move(stream_));
    } else {
      beast::error_code ignored;
      stream_->socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream_.reset();
    }
    HttpResponse out;
    out.status = status;
    out.content_type.clear();
    for (const auto& field : res) {
      const beast::string_view name = field.name_string();
      if (HopByHop(absl::string_view(name.data(), name.size()))) continue;
      if (field.name() == http::field::content_type) {
        out.content_type = std::string(field.value());
      } else {
        out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
      }
    }
    out.body = std::move(res.body());
    if (status == 503 && idempotent_ && MayRetry()) return Retry(std::move(out));
    // This replica lacks the model, version or label asked for; another may have it.
    if (status == 404 && need_ && impl_->balancer_->RetryNotFound(tried_, absl::Now(), *need_) &&
        MayRetry(/*reached=*/false)) {
      return Retry(std::move(out));
    }
    Answer(std::move(out), std::to_string(status));
  }

  // The request never reached the replica: any method may go elsewhere.
  void Unreached(beast::error_code ec) {
    const absl::Duration took = absl::Now() - attempt_start_;
    impl_->balancer_->Report(*replica_, true, took, absl::Now());
    impl_->metrics_->RecordAttempt(replica_->key(), api_, "UNREACHABLE", took);
    const std::string message = absl::StrCat("inferd-gateway: cannot reach replica ",
                                             replica_->endpoint().GrpcTarget(), " (HTTP port ",
                                             replica_->endpoint().http_port, "): ", ec.message());
    if (MayRetry(/*reached=*/false)) return Retry(ErrorResponse(503, message));
    Answer(ErrorResponse(503, message), "UNREACHABLE");
  }

  // Again on a fresh connection to the same replica; not a failure of the replica.
  void Stale() {
    beast::error_code ignored;
    stream_->socket().close(ignored);
    Connect();
  }

  // Whether another attempt may be made. Retrying a request that never reached a replica adds
  // load to none, so only retries of requests that did (`reached`) count against the budget.
  bool MayRetry(bool reached = true) {
    if (attempts_ >= impl_->options_.max_attempts || absl::Now() >= start_ + impl_->options_.timeout) {
      return false;
    }
    if (!reached || in_budget_) return true;  // a slot taken for an earlier retry carries over
    if (impl_->budget_->TryAcquire()) {
      in_budget_ = true;
      return true;
    }
    impl_->metrics_->RecordBudgetExhausted();
    return false;
  }

  // `answer` is what the client gets if no other replica can be tried.
  void Retry(HttpResponse answer) {
    last_ = std::move(answer);
    impl_->metrics_->RecordRetry();
    stream_.reset();
    Attempt();
  }

  std::chrono::steady_clock::duration Remaining() const {
    return absl::ToChronoNanoseconds(std::max(absl::Milliseconds(1), deadline_ - absl::Now()));
  }

  void Answer(HttpResponse response, const std::string& code) {
    answered_ = true;
    impl_->metrics_->RecordRequest(api_, code, absl::Now() - start_);
    done_(std::move(response));
  }

  Impl* const impl_;
  HttpRequest request_;
  const std::function<void(HttpResponse)> done_;
  const std::string api_;
  const bool idempotent_;
  const std::optional<ModelRequirement> need_;
  const absl::Time start_;
  tcp::resolver resolver_;
  http::request<http::string_body> upstream_;
  std::unique_ptr<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::vector<const Replica*> tried_;
  std::vector<std::shared_ptr<Replica>> kept_;  // keeps tried_ valid
  std::shared_ptr<Replica> replica_;
  bool reused_ = false;
  bool in_budget_ = false;
  bool answered_ = false;
  int attempts_ = 0;
  absl::Time attempt_start_;
  absl::Time deadline_;
  HttpResponse last_;  // the answer of the last failed attempt
};

HttpProxy::HttpProxy(Balancer* balancer, GatewayMetrics* metrics, RetryBudget* budget,
                     VersionTracker* versions, HttpProxyOptions options)
    : impl_(std::make_unique<Impl>(balancer, metrics, budget, versions, options)) {}

HttpProxy::~HttpProxy() = default;

void HttpProxy::Handle(HttpRequest request, std::function<void(HttpResponse)> done) {
  auto exchange =
      std::make_shared<Impl::Exchange>(impl_.get(), std::move(request), std::move(done));
  // Start on the proxy's threads: resolving and connecting must not run on the server's.
  net::post(impl_->ioc_, [exchange] { exchange->Start(); });
}

}  // namespace inferd::balancer
