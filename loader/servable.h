// What the loader loads: one model version, opaque to the loader. The serving layer supplies the
// concrete type (a planned model with its signature) through ModelManager's LoadFn.
#ifndef INFERD_LOADER_SERVABLE_H_
#define INFERD_LOADER_SERVABLE_H_

#include <cstdint>
#include <memory>
#include <string>

namespace inferd::loader {

// Thread-safe for concurrent use by requests; destroyed on the manager's thread once no handle
// refers to it.
class Servable {
 public:
  virtual ~Servable() = default;
};

// Keeps one version alive while held. Hold it for one request or one batch, not longer: an
// unloaded version is destroyed only after its last handle is gone.
struct ServableHandle {
  std::string name;
  int64_t version = 0;
  std::shared_ptr<const Servable> servable;

  template <typename T>
  const T& get() const {
    return static_cast<const T&>(*servable);
  }
};

}  // namespace inferd::loader

#endif  // INFERD_LOADER_SERVABLE_H_
