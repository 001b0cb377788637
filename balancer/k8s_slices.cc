#include "balancer/k8s_slices.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace inferd::balancer {
namespace {
using nlohmann::json;

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed EndpointSlice data: ", what));
}

// The boolean at `key` of `obj`, `absent` when missing or null; an error when another type.
absl::StatusOr<bool> OptionalBool(const json& obj, const char* key, bool absent) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return absent;
  if (!it->is_boolean()) return Malformed(absl::StrCat("conditions.", key, " is not a boolean"));
  return it->get<bool>();
}

absl::StatusOr<std::string> OptionalString(const json& obj, const char* key, const char* where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Malformed(absl::StrCat(where, ".", key, " is not a string"));
  return it->get<std::string>();
}

absl::StatusOr<SliceEndpoints> FromJson(const json& slice, const SlicePorts& names) {
  if (!slice.is_object()) return Malformed("the slice is not an object");
  SliceEndpoints out;
  auto meta = slice.find("metadata");
  if (meta == slice.end() || !meta->is_object()) return Malformed("metadata is missing");
  auto name = OptionalString(*meta, "name", "metadata");
  if (!name.ok()) return name.status();
  if (name->empty()) return Malformed("metadata.name is missing");
  out.name = *name;
  auto rv = OptionalString(*meta, "resourceVersion", "metadata");
  if (!rv.ok()) return rv.status();
  out.resource_version = *rv;

  auto type = OptionalString(slice, "addressType", "slice");
  if (!type.ok()) return type.status();
  if (*type != "IPv4" && *type != "IPv6" && *type != "FQDN") {
    return Malformed(absl::StrCat("addressType \"", *type, "\" is not IPv4, IPv6 or FQDN"));
  }
  int grpc_port = 0, http_port = 0;
  auto ports = slice.find("ports");
  if (ports != slice.end() && !ports->is_null()) {
    if (!ports->is_array()) return Malformed("ports is not a list");
    for (const json& p : *ports) {
      if (!p.is_object()) return Malformed("a port is not an object");
      auto pname = OptionalString(p, "name", "port");
      if (!pname.ok()) return pname.status();
      auto number = p.find("port");
      if (number == p.end() || number->is_null()) continue;  // "all ports": not ours to use
      if (!number->is_number_integer() || number->get<int64_t>() < 1 ||
          number->get<int64_t>() > 65535) {
        return Malformed(absl::StrCat("port \"", *pname, "\" is not a number in [1, 65535]"));
      }
      if (*pname == names.grpc) grpc_port = number->get<int>();
      if (*pname == names.http) http_port = number->get<int>();
    }
  }
  auto endpoints = slice.find("endpoints");
  if (endpoints != slice.end() && !endpoints->is_null() && !endpoints->is_array()) {
    return Malformed("endpoints is not a list");
  }
  if (grpc_port == 0 || http_port == 0) {
    out.skipped = absl::StrCat("slice ", out.name, " has no ports named \"", names.grpc,
                               "\" and \"", names.http, "\"");
  }
  if (endpoints == slice.end() || endpoints->is_null()) return out;
  for (const json& e : *endpoints) {
    if (!e.is_object()) return Malformed("an endpoint is not an object");
    auto addresses = e.find("addresses");
    if (addresses == e.end() || !addresses->is_array()) {
      return Malformed("an endpoint has no addresses list");
    }
    bool ready = true, serving = true, terminating = false;
    auto conditions = e.find("conditions");
    if (conditions != e.end() && !conditions->is_null()) {
      if (!conditions->is_object()) return Malformed("conditions is not an object");
      auto r = OptionalBool(*conditions, "ready", true);
      if (!r.ok()) return r.status();
      auto s = OptionalBool(*conditions, "serving", *r);
      if (!s.ok()) return s.status();
      auto t = OptionalBool(*conditions, "terminating", false);
      if (!t.ok()) return t.status();
      ready = *r;
      serving = *s;
      terminating = *t;
    }
    EndpointState state;
    if (ready && !terminating) {
      state = EndpointState::kReady;
    } else if (serving && terminating) {
      state = EndpointState::kDraining;
    } else {
      continue;  // starting, failing or gone: no traffic
    }
    for (const json& a : *addresses) {
      if (!a.is_string() || a.get<std::string>().empty()) {
        return Malformed("an address is not a non-empty string");
      }
      if (!out.skipped.empty()) continue;
      Endpoint ep;
      ep.host = a.get<std::string>();
      ep.grpc_port = grpc_port;
      ep.http_port = http_port;
      ep.state = state;
      out.endpoints.push_back(std::move(ep));
    }
  }
  return out;
}

// Parses `text` into a JSON document; nlohmann's exceptions stop here.
absl::StatusOr<json> ParseJson(absl::string_view text) {
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError("malformed JSON from the API server");
  return doc;
}

// Runs `fn` and turns anything nlohmann throws (wrong types deep inside) into an error.
template <typename Fn>
auto Guarded(Fn fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return Malformed(e.what());
  }
}

}  // namespace

absl::StatusOr<SliceEndpoints> ParseEndpointSlice(absl::string_view text,
                                                  const SlicePorts& ports) {
  auto doc = ParseJson(text);
  if (!doc.ok()) return doc.status();
  return Guarded([&]() -> absl::StatusOr<SliceEndpoints> { return FromJson(*doc, ports); });
}

absl::StatusOr<SliceList> ParseEndpointSliceList(absl::string_view text,
                                                 const SlicePorts& ports) {
  auto doc = ParseJson(text);
  if (!doc.ok()) return doc.status();
  return Guarded([&]() -> absl::StatusOr<SliceList> {
    if (!doc->is_object()) return Malformed("the list is not an object");
    SliceList out;
    auto meta = doc->find("metadata");
    if (meta == doc->end() || !meta->is_object()) return Malformed("the list has no metadata");
    auto rv = OptionalString(*meta, "resourceVersion", "metadata");
    if (!rv.ok()) return rv.status();
    if (rv->empty()) return Malformed("the list has no metadata.resourceVersion");
    out.resource_version = *rv;
    auto items = doc->find("items");
    if (items == doc->end() || items->is_null()) return out;
    if (!items->is_array()) return Malformed("items is not a list");
    for (const json& item : *items) {
      auto slice = FromJson(item, ports);
      if (!slice.ok()) return slice.status();
      out.slices.push_back(std::move(*slice));
    }
    return out;
  });
}

absl::StatusOr<WatchEvent> ParseWatchEvent(absl::string_view text, const SlicePorts& ports) {
  auto doc = ParseJson(text);
  if (!doc.ok()) return doc.status();
  return Guarded([&]() -> absl::StatusOr<WatchEvent> {
    if (!doc->is_object()) return Malformed("the watch event is not an object");
    auto type = OptionalString(*doc, "type", "event");
    if (!type.ok()) return type.status();
    auto object = doc->find("object");
    if (object == doc->end() || !object->is_object()) {
      return Malformed(absl::StrCat("the ", *type, " event has no object"));
    }
    WatchEvent event;
    if (*type == "ERROR") {
      event.type = WatchEvent::Type::kError;
      auto code = object->find("code");
      event.error_code = code != object->end() && code->is_number_integer() ? code->get<int>() : 0;
      auto message = OptionalString(*object, "message", "status");
      event.error_message = message.ok() ? *message : "";
      return event;
    }
    if (*type == "BOOKMARK") {
      event.type = WatchEvent::Type::kBookmark;
      auto meta = object->find("metadata");
      if (meta == object->end() || !meta->is_object()) return Malformed("bookmark has no metadata");
      auto rv = OptionalString(*meta, "resourceVersion", "metadata");
      if (!rv.ok()) return rv.status();
      if (rv->empty()) return Malformed("bookmark has no resourceVersion");
      event.slice.resource_version = *rv;
      return event;
    }
    if (*type == "ADDED") {
      event.type = WatchEvent::Type::kAdded;
    } else if (*type == "MODIFIED") {
      event.type = WatchEvent::Type::kModified;
    } else if (*type == "DELETED") {
      event.type = WatchEvent::Type::kDeleted;
    } else {
      return Malformed(absl::StrCat("unknown watch event type \"", *type, "\""));
    }
    auto slice = FromJson(*object, ports);
    if (!slice.ok()) return slice.status();
    event.slice = std::move(*slice);
    return event;
  });
}

EndpointList MergeSlices(const std::map<std::string, SliceEndpoints>& slices) {
  std::map<std::string, Endpoint> by_key;
  for (const auto& [name, slice] : slices) {
    for (const Endpoint& e : slice.endpoints) {
      auto [it, inserted] = by_key.emplace(e.Key(), e);
      if (!inserted && e.state == EndpointState::kReady) it->second.state = EndpointState::kReady;
    }
  }
  EndpointList out;
  for (auto& [key, e] : by_key) out.push_back(std::move(e));
  return out;
}

}  // namespace inferd::balancer
