#pragma once
/// @file param_subset.hpp
/// The paper's random-subset baselines (original run_glue.py fine-tune types `rand_uniform` and
/// `rand_row_col`): train as many parameters as BitFit does, but chosen at random among all
/// encoder parameters. Their backward (weight_subset_mask, mask.hpp) computes the input
/// gradients as every policy does, the cheap gradients (biases, gains, embedding rows) densely,
/// and each weight matrix's gradient only at the subset's entries (linear_weight_backward_subset):
/// no dense dW GEMM. The trainer gathers the subset's gradient entries into a span of their own:
/// clipping and AdamW read those alone, and the optimizer's moments are the subset's size.

#include <bitfit/model/params.hpp>
#include <bitfit/ops/dropout.hpp>

#include <cstdint>
#include <vector>

namespace bitfit {

namespace detail {
/// Uniform integer in [0, n) from the counter-based generator.
inline std::uint64_t uniform_index(std::uint64_t seed, std::uint64_t counter, std::uint64_t n) {
  return mix64(seed ^ mix64(counter)) % n;
}
}  // namespace detail

/// `budget` distinct entries of the flat parameter buffer, uniformly at random (keep = 1).
inline std::vector<unsigned char> random_uniform_subset(const param_layout& layout, std::size_t budget,
                                                        std::uint64_t seed) {
  std::vector<unsigned char> keep(layout.total_size, 0);
  budget = std::min(budget, layout.total_size);
  std::size_t chosen = 0;
  for (std::uint64_t c = 0; chosen < budget; ++c) {
    auto& k = keep[detail::uniform_index(seed, c, layout.total_size)];
    if (!k) k = 1, ++chosen;
  }
  return keep;
}

/// Whole rows or whole columns of the 2-D weight matrices (embedding tables excluded), chosen at
/// random until at least `budget` entries are selected.
inline std::vector<unsigned char> random_row_col_subset(const param_layout& layout, std::size_t budget,
                                                        std::uint64_t seed) {
  std::vector<const param_entry*> mats;
  for (const auto& e : layout.entries)
    if (!e.is_bias && e.shape.size() == 2 && !e.name.starts_with("embeddings.")) mats.push_back(&e);
  std::vector<unsigned char> keep(layout.total_size, 0);
  std::size_t chosen = 0;
  for (std::uint64_t c = 0; chosen < budget && !mats.empty(); c += 3) {
    const param_entry& e = *mats[detail::uniform_index(seed, c, mats.size())];
    const auto rows = std::size_t(e.shape[0]), cols = std::size_t(e.shape[1]);
    const bool row = detail::uniform_index(seed, c + 1, 2) == 0;
    const std::size_t which = detail::uniform_index(seed, c + 2, row ? rows : cols);
    for (std::size_t i = 0; i < (row ? cols : rows); ++i) {
      auto& k = keep[e.offset + (row ? which * cols + i : i * cols + which)];
      if (!k) k = 1, ++chosen;
    }
  }
  return keep;
}

}  // namespace bitfit
