// Transpose by a permutation (default: reverse), any element type.
#include <cstring>
#include <numeric>

#include "common/status_macros.h"
#include "models/cpu/kernel_util.h"
#include "models/cpu/kernels.h"

namespace inferd::models::cpu {
namespace {

template <typename T>
void TransposeLoop(const T* x, T* y, const Shape& in, const std::vector<int>& perm, int64_t n) {
  const int rank = static_cast<int>(in.size());
  std::vector<int64_t> in_strides(rank, 1);
  for (int d = rank - 2; d >= 0; --d) in_strides[d] = in_strides[d + 1] * in[d + 1];
  std::vector<int64_t> out_dims(rank), src_stride(rank);
  for (int d = 0; d < rank; ++d) {
    out_dims[d] = in[perm[d]];
    src_stride[d] = in_strides[perm[d]];
  }
  std::vector<int64_t> idx(rank, 0);
  int64_t src = 0;
  const int64_t inner = out_dims[rank - 1];
  const int64_t inner_stride = src_stride[rank - 1];
  for (int64_t o = 0; o < n; o += inner) {
    for (int64_t j = 0; j < inner; ++j) y[o + j] = x[src + j * inner_stride];
    for (int d = rank - 2; d >= 0; --d) {
      src += src_stride[d];
      if (++idx[d] < out_dims[d]) break;
      src -= src_stride[d] * out_dims[d];
      idx[d] = 0;
    }
  }
}

class TransposeKernel : public Kernel {
 public:
  explicit TransposeKernel(std::vector<int64_t> perm) : perm_(std::move(perm)) {}

  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* x, RequireInput(ctx, 0, "data"));
    const int rank = x->rank();
    std::vector<int> perm(rank);
    if (perm_.empty()) {
      for (int d = 0; d < rank; ++d) perm[d] = rank - 1 - d;
    } else {
      if (static_cast<int>(perm_.size()) != rank) {
        return absl::InvalidArgumentError(absl::StrCat("Transpose perm has ", perm_.size(),
                                                       " entries for an input of rank ", rank));
      }
      std::vector<bool> seen(rank, false);
      for (int d = 0; d < rank; ++d) {
        if (perm_[d] < 0 || perm_[d] >= rank || seen[perm_[d]]) {
          return absl::InvalidArgumentError("Transpose perm is not a permutation");
        }
        seen[perm_[d]] = true;
        perm[d] = static_cast<int>(perm_[d]);
      }
    }
    Shape out(rank);
    for (int d = 0; d < rank; ++d) out[d] = x->dim(perm[d]);
    ASSIGN_OR_RETURN(Tensor * y, ctx.Allocate(0, x->dtype(), out));
    if (x->num_elements() == 0) return absl::OkStatus();
    if (rank == 0) {
      std::memcpy(y->raw_data(), x->raw_data(), x->byte_size());
      return absl::OkStatus();
    }
    switch (DTypeSize(x->dtype())) {
      case 1:
        TransposeLoop(x->data<uint8_t>(), y->data<uint8_t>(), x->shape(), perm, y->num_elements());
        break;
      case 2:
        TransposeLoop(x->data<uint16_t>(), y->data<uint16_t>(), x->shape(), perm,
                      y->num_elements());
        break;
      case 4:
        TransposeLoop(x->data<uint32_t>(), y->data<uint32_t>(), x->shape(), perm,
                      y->num_elements());
        break;
      case 8:
        TransposeLoop(x->data<uint64_t>(), y->data<uint64_t>(), x->shape(), perm,
                      y->num_elements());
        break;
      default:
        return UnsupportedType("Transpose", x->dtype());
    }
    return absl::OkStatus();
  }

 private:
  std::vector<int64_t> perm_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateTranspose(const KernelInfo& info) {
  ASSIGN_OR_RETURN(std::vector<int64_t> perm, info.attrs().GetInts("perm", {}));
  return std::unique_ptr<Kernel>(new TransposeKernel(std::move(perm)));
}

}  // namespace inferd::models::cpu
