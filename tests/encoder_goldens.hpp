#pragma once
// Encoder goldens as the scripts in tools/goldens write them: input_ids.npy / token_type_ids.npy
// (B, T) padded, lengths.npy (B), last_hidden_state.npy (tokens, H) of the real tokens only,
// cls.npy and pooler_output.npy (B, H), and mean_pooled.npy (B, H) where the script made one.
#include <bitfit/model/batch.hpp>

#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <vector>

namespace bitfit::test {

struct encoder_goldens {
  xt::xarray<int> ids, types, lengths;
  xt::xarray<float> hidden, pooler, cls, mean;  // mean: empty when the script made none

  /// Inputs from `in`, outputs from `out` (the same folder unless one set of inputs has the
  /// outputs of several references).
  explicit encoder_goldens(const std::filesystem::path& in, const std::filesystem::path& out = {})
      : ids(xt::load_npy<int>((in / "input_ids.npy").string())),
        types(xt::load_npy<int>((in / "token_type_ids.npy").string())),
        lengths(xt::load_npy<int>((in / "lengths.npy").string())) {
    const auto d = out.empty() ? in : out;
    hidden = xt::load_npy<float>((d / "last_hidden_state.npy").string());
    pooler = xt::load_npy<float>((d / "pooler_output.npy").string());
    cls = xt::load_npy<float>((d / "cls.npy").string());
    if (std::filesystem::exists(d / "mean_pooled.npy")) mean = xt::load_npy<float>((d / "mean_pooled.npy").string());
  }
  std::size_t size() const { return lengths.size(); }

  /// Inputs [first, last) as one packed batch.
  token_batch batch(std::size_t first, std::size_t last) const {
    token_batch b;
    for (std::size_t i = first; i < last; ++i) {
      const auto n = std::size_t(lengths(i));
      std::vector<std::int32_t> input_ids(n), type_ids(n);
      for (std::size_t t = 0; t < n; ++t) input_ids[t] = ids(i, t), type_ids[t] = types(i, t);
      b.add(input_ids, type_ids);
    }
    return b;
  }
  token_batch batch() const { return batch(0, size()); }
};

inline double max_abs_diff(const float* a, const float* b, std::size_t n) {
  double m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

}  // namespace bitfit::test
