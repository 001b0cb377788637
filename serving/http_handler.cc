#include "serving/http_handler.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "serving/json_tensor.h"

namespace inferd::serving {
namespace {

HttpResponse ErrorResponse(const absl::Status& status) {
  HttpResponse r;
  r.status = HttpStatusFor(status.code());
  r.body = JsonErrorBody(std::string(status.message()));
  return r;
}

HttpResponse JsonResponse(std::string body) {
  HttpResponse r;
  r.body = std::move(body);
  return r;
}

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) return absl::InternalError(std::string(status.message()));
  return out;
}

// %XX and '+' unescaping of a path segment; fails on malformed escapes.
bool UrlUnescape(absl::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size() || !absl::ascii_isxdigit(in[i + 1]) ||
          !absl::ascii_isxdigit(in[i + 2])) {
        return false;
      }
      int v = 0;
      for (int k = 1; k <= 2; ++k) {
        char c = absl::ascii_tolower(in[i + k]);
        v = v * 16 + (absl::ascii_isdigit(c) ? c - '0' : c - 'a' + 10);
      }
      out->push_back(static_cast<char>(v));
      i += 2;
    } else {
      out->push_back(in[i]);
    }
  }
  return true;
}

// The parts of /v1/models/NAME[/versions/N | /labels/L][:verb | /metadata].
struct ModelUrl {
  std::string name;
  std::optional<int64_t> version;
  std::optional<std::string> label;
  std::string verb;  // "predict", "classify", "regress", "metadata" or "" (status)
};

absl::StatusOr<ModelUrl> ParseModelUrl(absl::string_view path) {
  auto malformed = [&] {
    return absl::InvalidArgumentError(absl::StrCat("Malformed request: ", path));
  };
  absl::string_view rest = path.substr(std::string_view("/v1/models").size());
  if (rest.empty() || rest == "/") return absl::InvalidArgumentError("Missing model name in request.");
  if (rest[0] != '/') return malformed();
  rest.remove_prefix(1);
  ModelUrl url;
  size_t end = rest.find_first_of("/:");
  if (!UrlUnescape(rest.substr(0, end), &url.name) || url.name.empty()) {
    return absl::InvalidArgumentError("Missing model name in request.");
  }
  rest = end == absl::string_view::npos ? absl::string_view() : rest.substr(end);
  auto take_segment = [&](absl::string_view prefix, std::string* value) {
    if (!absl::StartsWithIgnoreCase(rest, prefix)) return false;
    rest.remove_prefix(prefix.size());
    size_t e = rest.find_first_of("/:");
    *value = std::string(rest.substr(0, e));
    rest = e == absl::string_view::npos ? absl::string_view() : rest.substr(e);
    return true;
  };
  std::string segment;
  if (take_segment("/versions/", &segment)) {
    int64_t v;
    if (segment.empty() || segment.find_first_not_of("0123456789") != std::string::npos ||
        !absl::SimpleAtoi(segment, &v)) {
      return malformed();
    }
    url.version = v;
  } else if (take_segment("/labels/", &segment)) {
    std::string label;
    if (segment.empty() || !UrlUnescape(segment, &label)) return malformed();
    url.label = label;
  }
  if (absl::StartsWith(rest, "/labels/") || absl::StartsWith(rest, "/versions/")) {
    return absl::InvalidArgumentError("Give either a version or a label, not both.");
  }
  if (rest.empty()) return url;
  if (absl::EqualsIgnoreCase(rest, "/metadata")) {
    url.verb = "metadata";
  } else if (rest[0] == ':') {
    url.verb = absl::AsciiStrToLower(rest.substr(1));
    if (url.verb != "predict" && url.verb != "classify" && url.verb != "regress") {
      return malformed();
    }
  } else {
    return malformed();
  }
  return url;
}

// TF Serving clients send JSON with curl's default form Content-Type or none at all; anything
// that is clearly another format is refused.
bool AcceptableContentType(absl::string_view content_type) {
  std::string ct = absl::AsciiStrToLower(content_type.substr(0, content_type.find(';')));
  absl::StripAsciiWhitespace(&ct);
  return ct.empty() || ct == "application/json" || absl::EndsWith(ct, "+json") ||
         ct == "text/json" || ct == "text/plain" || ct == "application/x-www-form-urlencoded";
}

}  // namespace

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    default:
      return 500;
  }
}

void HttpHandler::Handle(HttpRequest request, std::function<void(HttpResponse)> done) const {
  std::string path = request.target.substr(0, request.target.find('?'));
  // Copied into asynchronous completions, so it owns what it uses.
  auto finish = [cors = options_.enable_cors, done = std::move(done)](HttpResponse r) {
    if (cors) r.headers.emplace_back("Access-Control-Allow-Origin", "*");
    done(std::move(r));
  };
  if (options_.enable_cors && request.method == "OPTIONS") {
    HttpResponse r;
    r.status = 204;
    r.content_type.clear();
    r.headers = {{"Access-Control-Allow-Methods", "POST, GET"},
                 {"Access-Control-Allow-Headers", "Content-Type"}};
    return finish(std::move(r));
  }
  if (path == "/healthz") {
    HttpResponse r;
    r.content_type = "text/plain";
    r.body = "ok\n";
    return finish(std::move(r));
  }
  if (path == "/readyz") {
    HttpResponse r;
    r.content_type = "text/plain";
    if (health_->draining()) {
      r.status = 503;
      r.body = "draining: shutting down\n";
    } else if (!health_->serving()) {
      std::vector<std::string> waiting;
      for (const std::string& name : service_->manager().ModelNames()) {
        if (!service_->manager().Get(loader::ServableRequest{name, {}, {}}).ok()) {
          waiting.push_back(name);
        }
      }
      r.status = 503;
      r.body = absl::StrCat("not ready: no available version of ",
                            waiting.empty() ? "any model" : absl::StrJoin(waiting, ", "), "\n");
    } else {
      r.body = "ready\n";
    }
    return finish(std::move(r));
  }
  if (!options_.metrics_path.empty() && path == options_.metrics_path) {
    if (request.method != "GET") {
      HttpResponse r = ErrorResponse(absl::InvalidArgumentError("use GET for metrics"));
      r.status = 405;
      return finish(std::move(r));
    }
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = service_->metrics().Serialize();
    return finish(std::move(r));
  }
  if (!absl::StartsWithIgnoreCase(path, "/v1/models")) {
    HttpResponse r = ErrorResponse(absl::NotFoundError(
        absl::StrCat("Malformed request: ", request.method, " ", path)));
    return finish(std::move(r));
  }
  auto url = ParseModelUrl(path);
  if (!url.ok()) return finish(ErrorResponse(url.status()));
  const bool is_post = request.method == "POST";
  const bool wants_post = url->verb == "predict" || url->verb == "classify" || url->verb == "regress";
  if (is_post != wants_post || (request.method != "GET" && request.method != "POST")) {
    HttpResponse r = ErrorResponse(absl::InvalidArgumentError(absl::StrCat(
        "Malformed request: ", request.method, " ", path, " (use ", wants_post ? "POST" : "GET",
        ")")));
    r.status = 405;
    r.headers.emplace_back("Allow", wants_post ? "POST" : "GET");
    return finish(std::move(r));
  }
  if (url->verb == "classify" || url->verb == "regress") {
    const absl::Status status = absl::UnimplementedError(absl::StrCat(
        ":", url->verb, " is not supported by inferd: it serves ONNX models through predict "
        "signatures; use :predict"));
    service_->Finish(RequestInfo{url->name, url->verb, "REST"}, 0, status);
    return finish(ErrorResponse(status));
  }
  if (url->verb == "predict") {
    return Predict(url->name, url->version, url->label, request, std::move(finish));
  }
  tensorflow::serving::ModelSpec spec;
  spec.set_name(url->name);
  if (url->version) spec.mutable_version()->set_value(*url->version);
  if (url->label) spec.set_version_label(*url->label);
  if (url->verb == "metadata") {
    RequestInfo info{url->name, "GetModelMetadata", "REST"};
    tensorflow::serving::GetModelMetadataRequest req;
    *req.mutable_model_spec() = spec;
    req.add_metadata_field("signature_def");
    auto result = service_->GetModelMetadata(req);
    service_->Finish(info, 0, result.status());
    if (!result.ok()) return finish(ErrorResponse(result.status()));
    tensorflow::serving::SignatureDefMap map;
    result->metadata().at("signature_def").UnpackTo(&map);
    auto spec_json = ToJson(result->model_spec());
    auto map_json = ToJson(map);
    if (!spec_json.ok() || !map_json.ok()) {
      return finish(ErrorResponse(absl::InternalError("cannot write metadata as JSON")));
    }
    return finish(JsonResponse(absl::StrCat("{\"model_spec\":", *spec_json,
                                            ",\"metadata\":{\"signature_def\":", *map_json, "}}")));
  }
  RequestInfo info{url->name, "GetModelStatus", "REST"};
  tensorflow::serving::GetModelStatusRequest req;
  *req.mutable_model_spec() = spec;
  auto result = service_->GetModelStatus(req);
  service_->Finish(info, 0, result.status());
  if (!result.ok()) return finish(ErrorResponse(result.status()));
  auto json = ToJson(*result);
  if (!json.ok()) return finish(ErrorResponse(json.status()));
  return finish(JsonResponse(std::move(*json)));
}

void HttpHandler::Predict(const std::string& model, std::optional<int64_t> version,
                          std::optional<std::string> label, const HttpRequest& request,
                          std::function<void(HttpResponse)> done) const {
  RequestInfo info{model, "predict", "REST"};
  auto fail = [&](const absl::Status& status, int64_t v) {
    service_->Finish(info, v, status);
    done(ErrorResponse(status));
  };
  if (!AcceptableContentType(request.content_type)) {
    service_->Finish(info, 0, absl::InvalidArgumentError("content type"));
    HttpResponse r = ErrorResponse(absl::InvalidArgumentError(absl::StrCat(
        "Content-Type \"", request.content_type,
        "\" is not supported; send the request as JSON (application/json)")));
    r.status = 415;
    return done(std::move(r));
  }
  auto handle = service_->Resolve(loader::ServableRequest{model, version, label});
  if (!handle.ok()) return fail(handle.status(), 0);
  const Signature& sig = handle->get<ServableModel>().signature();
  auto parsed = ParseJsonPredictRequest(request.body, sig);
  if (!parsed.ok()) return fail(parsed.status(), handle->version);
  PredictCall call;
  call.handle = *handle;
  call.signature_name = parsed->signature_name;
  call.inputs = std::move(parsed->inputs);
  call.deadline = absl::Now() + options_.predict_timeout;
  // The model runs on this connection's I/O thread, as a deferred step of its loop, batched
  // with the requests that thread read together with this one; the answer is written there.
  call.defer = &HttpServer::DeferOnIoThread;
  const int64_t examples = ExampleCount(call.inputs);
  const bool row_format = parsed->row_format;
  service_->Predict(std::move(call), [this, info, done, row_format, examples,
                                      v = handle->version](absl::StatusOr<PredictResult> result) {
    if (!result.ok()) {
      service_->Finish(info, v, result.status());
      return done(ErrorResponse(result.status()));
    }
    auto body = WriteJsonPredictResponse(row_format, result->outputs);
    service_->Finish(info, v, body.status(), examples);
    if (!body.ok()) return done(ErrorResponse(body.status()));
    done(JsonResponse(std::move(*body)));
  });
}

}  // namespace inferd::serving
